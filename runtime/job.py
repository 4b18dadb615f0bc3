"""The ``pose3d-rt run`` job: a source in, a visualization and a predictions JSON out, written as a stream.

Outputs under ``output_root`` (the mmpose demo's naming):
- the visualization: ``<output_root>/<input file name>`` (a video for video inputs, ``.mp4`` for cameras and
  streams, an image for images); never the input file itself;
- with ``save_predictions``: ``<output_root>/results_<input stem>.json`` in the demo's schema (in default mode each
  instance also carries ``track_id``, ``bbox``, ``bbox_score``, ``keypoints_2d`` and ``keypoint_scores_2d``, and
  ``frame_id`` is 0-based; in mmpose mode ``frame_id`` is 1-based as the demo writes it);
- with ``save_npz``: ``<output_root>/results_<input stem>.npz`` (flat arrays, one row per person-frame).

Interrupting (Ctrl-C, a crash, a broken input) leaves a valid JSON and a playable video of the frames done.
"""
from __future__ import annotations

import logging
import math
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import cv2
import numpy as np

from .errors import InputError
from .io.sinks import PredictionWriter, instances_to_json
from .io.sources import FrameSource, VideoInfo, open_source
from .results import FrameResult

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    frames: int
    persons: int
    seconds: float
    video_path: Optional[Path]
    json_path: Optional[Path]
    npz_path: Optional[Path]
    interrupted: bool = False
    error: Optional[str] = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def output_paths(info: VideoInfo, spec: str, output_root: Path) -> Dict[str, Path]:
    """Where the visualization, JSON and npz go for this source (never the input file itself)."""
    if info.kind in ("webcam", "stream"):
        vis_name = f"{info.name}.mp4"
    elif info.kind == "folder":
        vis_name = f"{info.name}.mp4"
    else:
        vis_name = Path(spec.split("?")[0]).name
    if info.kind == "video" and Path(vis_name).suffix.lower() not in (".mp4", ".avi", ".mov", ".mkv", ".m4v"):
        vis_name = Path(vis_name).stem + ".mp4"
    vis = output_root / vis_name
    src = Path(spec)
    if src.exists() and vis.exists() and vis.resolve() == src.resolve():
        raise InputError(
            f"--output-root {output_root}: the visualization would overwrite the input {spec}; choose another folder"
        )
    return {"vis": vis, "json": output_root / f"results_{info.name}.json",
            "npz": output_root / f"results_{info.name}.npz"}


def check_show_supported() -> None:
    """``--show`` needs an OpenCV build with a GUI backend and, on Linux, a display: say so before any work."""
    m = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    if m and m.group(1).upper() == "NONE":
        raise InputError("--show: this OpenCV build has no GUI (opencv-python-headless); to display, replace it "
                         "with opencv-python (pip uninstall opencv-python-headless && pip install opencv-python), "
                         "or write the visualization with --output-root")
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise InputError("--show: no display (neither DISPLAY nor WAYLAND_DISPLAY is set); use --output-root")


def write_image_atomic(path: Path, image: np.ndarray) -> None:
    """Encode to a temporary file beside ``path`` and rename it: never a half-written image."""
    tmp = path.with_name(f".{path.stem}.part{path.suffix}")
    try:
        ok = cv2.imwrite(str(tmp), image)
    except cv2.error:
        ok = False
    if not ok:
        tmp.unlink(missing_ok=True)
        raise InputError(f"{path}: cannot write the image (unsupported extension or unwritable folder)")
    os.replace(tmp, path)


def check_output_root(output_root: Path) -> None:
    try:
        output_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--output-root {output_root}: cannot create the folder ({exc.strerror})") from None
    if not output_root.is_dir():
        raise InputError(f"--output-root {output_root}: not a folder")
    if not os.access(output_root, os.W_OK | os.X_OK):
        raise InputError(f"--output-root {output_root}: not writable")


def default_instances(res: FrameResult) -> List[Dict[str, Any]]:
    extra = []
    for i in range(len(res)):
        extra.append({
            "track_id": int(res.track_ids[i]),
            "bbox": res.boxes[i].astype(np.float64).tolist(),
            "bbox_score": float(res.scores[i]),
            "keypoints_2d": res.keypoints_2d[i].astype(np.float64).tolist(),
            "keypoint_scores_2d": res.scores_2d[i].astype(np.float64).tolist(),
        })
    k3 = res.keypoints_3d if res.keypoints_3d is not None else np.full((len(res), 17, 3), np.nan, np.float32)
    return instances_to_json(k3, None, extra)


class NpzSpill:
    """``--save-npz``: flat per-person rows streamed to raw files beside the output (so memory does not grow with
    the video), packed into ``results_<name>.npz`` at the end (also after an interruption), atomically."""

    FIELDS = {"frame_index": np.int64, "track_id": np.int64, "bbox": np.float32, "bbox_score": np.float32,
              "keypoints_2d": np.float32, "keypoint_scores_2d": np.float32, "keypoints_3d": np.float32}

    def __init__(self, path: Path) -> None:
        self.path = path
        self.dir = path.with_name(f".{path.name}.parts")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.rows = 0
        self.row_shapes: Dict[str, tuple] = {}
        self.files = {k: open(self.dir / f"{k}.bin", "wb") for k in self.FIELDS}

    def add(self, res: FrameResult) -> None:
        n = len(res)
        k3 = res.keypoints_3d if res.keypoints_3d is not None else np.full((n, 17, 3), np.nan, np.float32)
        arrays = {"frame_index": np.full(n, res.frame_index), "track_id": res.track_ids, "bbox": res.boxes,
                  "bbox_score": res.scores, "keypoints_2d": res.keypoints_2d,
                  "keypoint_scores_2d": res.scores_2d, "keypoints_3d": k3}
        for key, arr in arrays.items():
            arr = np.ascontiguousarray(arr, self.FIELDS[key])
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
        tmp = self.path.with_name(f".{self.path.name}.part.npz")
        try:
            np.savez_compressed(tmp, **arrays)
            os.replace(tmp, self.path)
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


def run(pipeline_factory, input_spec: str, *, output_root: Optional[str] = None, save_predictions: bool = False,
        save_npz: bool = False, show: bool = False, visualizer=None, progress: bool = True,
        show_interval: float = 0.0) -> RunSummary:
    """Probe ``input_spec`` first, then build the pipeline (``pipeline_factory()``), stream, write outputs.

    ``show_interval``: seconds each shown frame is held (the demo's ``--show-interval``; 0 = as fast as possible).
    """
    if show:
        check_show_supported()
    src: FrameSource = open_source(input_spec)  # fails before any model is loaded
    info = src.info
    root = Path(output_root) if output_root else None
    paths: Dict[str, Path] = {}
    if root is not None:
        check_output_root(root)
        paths = output_paths(info, input_spec, root)
    elif save_predictions or save_npz:
        src.close()
        raise InputError("--save-predictions/--save-npz need --output-root")
    if root is None and not show:
        src.close()
        raise InputError("nothing to do: give --output-root (to save) and/or --show")
    try:
        pipeline = pipeline_factory()
    except BaseException:
        src.close()
        raise
    mode = getattr(pipeline, "mode", "default")
    writer = None
    if save_predictions:
        from .io.sinks import h36m_meta_info

        writer = PredictionWriter(paths["json"], h36m_meta_info(), flat=info.is_image)
    npz = NpzSpill(paths["npz"]) if save_npz else None
    video = VideoSink(paths["vis"], info.fps) if (root is not None and not info.is_image) else None
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=info.total_frames, unit="frame", desc=info.name, disable=None)
    frames = persons = 0
    canvas: Optional[np.ndarray] = None
    t0 = time.perf_counter()
    interrupted = False
    try:
        for res in pipeline.stream(src, keep_frames=visualizer is not None):
            frames += 1
            persons += len(res)
            if writer is not None:
                if mode == "mmpose":
                    insts = instances_to_json(res.keypoints_3d if res.keypoints_3d is not None
                                              else np.zeros((len(res), 17, 3), np.float32))
                    frame_id = 0 if info.is_image else res.frame_index + 1
                else:
                    insts = default_instances(res)
                    frame_id = res.frame_index
                writer.write_frame(frame_id, insts)
            if npz is not None:
                npz.add(res)
            if visualizer is not None and (root is not None or show):
                frame = res.frame
                if frame is not None:
                    canvas = visualizer.render(frame, res, out=canvas)  # one buffer for the whole stream
                    if video is not None:
                        video.write(canvas)
                    elif root is not None and info.is_image:
                        write_image_atomic(paths["vis"], canvas)
                    if show:
                        cv2.imshow("pose3d-rt", canvas)
                        if cv2.waitKey(max(1, math.ceil(show_interval * 1000))) & 0xFF in (27, ord("q")):
                            break
            if bar is not None:
                bar.update(1)
                dt = time.perf_counter() - t0
                bar.set_postfix(fps=f"{frames / dt:.1f}" if dt > 0 else "-", persons=len(res))
    except KeyboardInterrupt:
        interrupted = True
        log.warning("interrupted after %d frames; outputs so far are kept", frames)
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
        if video is not None:
            video.close()
        if npz is not None:
            npz.save()
        src.close()
        if show:
            cv2.destroyAllWindows()
    dt = time.perf_counter() - t0
    return RunSummary(frames, persons, dt, paths.get("vis"), paths.get("json") if writer else None,
                      paths.get("npz") if npz else None, interrupted, src.error)
