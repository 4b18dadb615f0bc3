"""Output sinks over the one per-person schema (:mod:`pose3d_rt.results`): the predictions JSON, the NPZ, the
visualization video and image. Every file is written atomically (:mod:`pose3d_rt.io.atomic`).

- :class:`PredictionWriter` -- the predictions JSON (mmpose demo schema), a stream that is valid after every frame:
  each record is written followed by the closing brackets, and the next record overwrites those brackets. An
  interrupted run (Ctrl-C, a crash, a broken input) therefore leaves a valid JSON of the frames done. The file is
  first written under a temporary name next to the target and renamed into place on the first flush, so a stale
  file is never half-overwritten.
- :class:`NpzSpill` -- ``--save-npz``: flat arrays, one row per person-frame, packed at the end.
- :class:`VideoSink` -- the visualization video, playable however the run ends.
- :func:`write_image` -- the visualization of an image.
"""
from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import cv2
import numpy as np

from ..errors import InputError
from ..results import FIELDS, JSON_FIELDS, NPZ_FIELDS, FrameResult
from .atomic import atomic_path, replace_file, temp_path

log = logging.getLogger(__name__)


def _ndarray_json(a: np.ndarray) -> Dict[str, Any]:
    """json_tricks' encoding of a numpy array, as the mmpose demo writes it."""
    out: Dict[str, Any] = {"__ndarray__": a.tolist(), "dtype": str(a.dtype), "shape": list(a.shape)}
    if a.ndim > 1:
        out["Corder"] = True
    return out


def to_jsonable(obj: Any) -> Any:
    """Convert numpy/tuple/int-keyed containers the way json_tricks does for the demo's ``meta_info``."""
    if isinstance(obj, np.ndarray):
        return _ndarray_json(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _dumps(obj: Any) -> str:
    return json.dumps(obj, indent="\t", allow_nan=False)


class JsonStream:
    """A JSON file that is complete after every :meth:`append`: ``head``, the appended items, ``tail``. It is
    created under a temporary name and renamed into place at once (``head + tail`` is already valid JSON); each
    append overwrites only the tail, so a crash at any point leaves a valid file of the items so far.
    ``empty_tail``: what follows ``head`` while nothing is appended (default ``tail``)."""

    def __init__(self, path: Union[str, Path], head: str, tail: str, empty_tail: Optional[str] = None) -> None:
        self.path = Path(path)
        self.count = 0
        self._tail = tail
        tmp = temp_path(self.path)
        self._fh = open(tmp, "w+", encoding="utf-8")
        try:
            self._fh.write(head)
            self._end = self._fh.tell()
            self._fh.write(tail if empty_tail is None else empty_tail)
            self._fh.flush()
            replace_file(tmp, self.path)
        except BaseException:
            self._fh.close()
            tmp.unlink(missing_ok=True)
            raise
        self.closed = False

    def append(self, text: str) -> None:
        """Add one item's ``text`` (already indented; a comma is put before every item but the first)."""
        self._fh.seek(self._end)
        self._fh.write(("," if self.count else "") + text)
        self._end = self._fh.tell()
        self._fh.write(self._tail)
        self._fh.truncate()
        self._fh.flush()
        self.count += 1

    def close(self) -> None:
        if not self.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())  # the file is already in place (renamed when opened): only flush it
            self._fh.close()
            self.closed = True


class PredictionWriter:
    """Stream ``{"meta_info": ..., "instance_info": [...]}`` to ``path``.

    ``flat=True`` writes the image layout (``instance_info`` is a flat list of instances, as the demo does for
    images); otherwise one ``{"frame_id", "instances"}`` record per frame. ``mode`` chooses the instance fields
    and frame ids of :meth:`write_result` (see :func:`json_instances`).
    """

    _CLOSE = "\n\t]\n}\n"

    def __init__(self, path: Union[str, Path], meta_info: Dict[str, Any], flat: bool = False,
                 mode: str = "default") -> None:
        if mode not in JSON_FIELDS:
            raise InputError(f"mode must be one of {tuple(JSON_FIELDS)}, got {mode!r}")
        self.path = Path(path)
        self.flat = flat
        self.mode = mode
        head = _dumps({"meta_info": to_jsonable(meta_info)})
        # turn '{ "meta_info": {...}\n}' into '{ "meta_info": {...},\n\t"instance_info": ['
        self._stream = JsonStream(self.path, head[: head.rstrip().rfind("}")].rstrip() + ',\n\t"instance_info": [',
                                  self._CLOSE)

    @property
    def count(self) -> int:
        return self._stream.count

    def _append(self, item: Any) -> None:
        self._stream.append("\n\t\t" + _dumps(to_jsonable(item)).replace("\n", "\n\t\t"))

    def write_frame(self, frame_id: int, instances: List[Dict[str, Any]]) -> None:
        if self.flat:
            for inst in instances:
                self._append(inst)
        else:
            self._append({"frame_id": int(frame_id), "instances": instances})

    def write_result(self, res: FrameResult) -> None:
        """Write one frame's result in this writer's mode (frame ids 1-based in mmpose mode, as the demo)."""
        frame_id = res.frame_index + 1 if self.mode == "mmpose" else res.frame_index
        self.write_frame(frame_id, json_instances(res, self.mode))

    def close(self) -> None:
        if not self._stream.closed:
            self._stream.close()
            log.info("wrote %d records to %s", self.count, self.path)

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def json_instances(res: FrameResult, mode: str = "default") -> List[Dict[str, Any]]:
    """The persons of ``res`` as the predictions JSON writes them (fields :data:`~pose3d_rt.results.JSON_FIELDS`).

    mmpose mode: the demo's instance ``{"keypoints": 17x3, "keypoint_scores": 17}`` (3D zeros without a lifter);
    default mode adds ``track_id``, ``bbox``, ``bbox_score``, ``keypoints_2d``, ``keypoint_scores_2d`` (3D NaN,
    written null, for a person not lifted or without a lifter).
    """
    return res.instances(JSON_FIELDS[mode], missing_3d=0.0 if mode == "mmpose" else np.nan)


def h36m_meta_info() -> Dict[str, Any]:
    """The lifter's dataset meta as the mmpose demo writes it in ``meta_info`` (mmpose's parsed ``h36m.py``)."""
    from ..keypoint_sets import H36M17

    d = H36M17
    names = list(d.keypoint_names)
    return {
        "dataset_name": "h36m",
        "num_keypoints": d.num_keypoints,
        "keypoint_id2name": {i: n for i, n in enumerate(names)},
        "keypoint_name2id": {n: i for i, n in enumerate(names)},
        "upper_body_ids": list(d.upper_body_ids),
        "lower_body_ids": list(d.lower_body_ids),
        "flip_indices": list(d.flip_indices),
        "flip_pairs": [list(p) for p in d.flip_pairs],
        "keypoint_colors": np.array(d.keypoint_colors_rgb, np.uint8),
        "num_skeleton_links": d.num_links,
        "skeleton_links": [list(p) for p in d.skeleton],
        "skeleton_link_colors": np.array(d.link_colors_rgb, np.uint8),
        "dataset_keypoint_weights": np.asarray(d.joint_weights, np.float32),
        "sigmas": np.zeros((0,), np.float32),
        "stats_info": {"bbox_center": d.stats_info.center_array, "bbox_scale": d.stats_info.scale_array},
    }


class NpzSpill:
    """``--save-npz``: flat per-person rows streamed to raw files beside the output (so memory does not grow with
    the video), packed into ``results_<name>.npz`` at the end (also after an interruption), atomically.

    Arrays: ``frame_index`` and the fields :data:`~pose3d_rt.results.NPZ_FIELDS` of the one schema (3D NaN for a
    person not lifted or without a lifter), one row per person-frame."""

    FIELDS = {"frame_index": np.int64, **{name: FIELDS[name].dtype for name in NPZ_FIELDS}}

    def __init__(self, path: Path) -> None:
        self.path = path
        self.dir = path.with_name(f".{path.name}.parts")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.rows = 0
        self.row_shapes: Dict[str, tuple] = {}
        self.files = {k: open(self.dir / f"{k}.bin", "wb") for k in self.FIELDS}

    def add(self, res: FrameResult) -> None:
        n = len(res)
        arrays = {"frame_index": np.full(n, res.frame_index, np.int64), **res.columns(NPZ_FIELDS)}
        for key, arr in arrays.items():
            if self.row_shapes.setdefault(key, arr.shape[1:]) != arr.shape[1:]:
                raise ValueError(f"--save-npz: {key} changed shape from {self.row_shapes[key]} to {arr.shape[1:]}")
            self.files[key].write(arr.tobytes())
        self.rows += n

    def save(self) -> None:
        """Pack the rows into the .npz (memory-mapped, not loaded) and remove the raw files."""
        for fh in self.files.values():
            fh.close()
        arrays = {}
        for key, dtype in self.FIELDS.items():
            shape = (self.rows,) + tuple(self.row_shapes.get(key, ()))
            f = self.dir / f"{key}.bin"
            arrays[key] = (np.memmap(f, dtype=dtype, mode="r", shape=shape) if self.rows
                           else np.zeros(shape, dtype))
        try:
            with atomic_path(self.path) as tmp:
                np.savez_compressed(tmp, **arrays)
        finally:
            del arrays
            for f in self.dir.glob("*.bin"):
                f.unlink()
            self.dir.rmdir()


class VideoSink:
    """cv2.VideoWriter that opens on the first frame (size fixed by it) and is always released."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self.fps = fps if fps and fps > 0 else 30.0
        self._writer: Optional[cv2.VideoWriter] = None
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        if self._writer is None:
            h, w = image.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self.path.suffix.lower() in (".mp4", ".m4v", ".mov") else "MJPG"))
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                raise InputError(f"{self.path}: cannot open a video writer for this file type")
            self._size = (w, h)
        if (image.shape[1], image.shape[0]) != self._size:
            image = cv2.resize(image, self._size)
        self._writer.write(image)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> VideoSink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_image(path: Path, image: np.ndarray) -> None:
    """Encode ``image`` to ``path`` (format by its suffix) atomically: never a half-written image."""
    with atomic_path(path) as tmp:
        try:
            ok = cv2.imwrite(str(tmp), image)
        except cv2.error:
            ok = False
        if not ok:
            raise InputError(f"{path}: cannot write the image (unsupported extension or unwritable folder)")


__all__ = ["PredictionWriter", "NpzSpill", "VideoSink", "write_image", "json_instances", "h36m_meta_info",
           "to_jsonable"]
