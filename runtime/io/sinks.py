"""Output sinks: the predictions JSON (mmpose demo schema), written as a stream that is valid after every frame.

:class:`PredictionWriter` keeps the file a complete JSON document at every frame boundary: each record is written
followed by the closing brackets, and the next record overwrites those brackets. An interrupted run (Ctrl-C, a
crash, a broken input) therefore leaves a valid JSON of the frames done. The file is first written under a temporary
name next to the target and renamed into place on the first flush, so a stale file is never half-overwritten.
"""
from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np

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


class PredictionWriter:
    """Stream ``{"meta_info": ..., "instance_info": [...]}`` to ``path``.

    ``flat=True`` writes the image layout (``instance_info`` is a flat list of instances, as the demo does for
    images); otherwise one ``{"frame_id", "instances"}`` record per frame.
    """

    _CLOSE = "\n\t]\n}\n"

    def __init__(self, path: Union[str, Path], meta_info: Dict[str, Any], flat: bool = False) -> None:
        self.path = Path(path)
        self.flat = flat
        self._tmp = self.path.with_name(f".{self.path.name}.part")
        self._fh = open(self._tmp, "w+", encoding="utf-8")
        head = _dumps({"meta_info": to_jsonable(meta_info)})
        # turn '{ "meta_info": {...}\n}' into '{ "meta_info": {...},\n\t"instance_info": ['
        self._fh.write(head[: head.rstrip().rfind("}")].rstrip() + ',\n\t"instance_info": [')
        self._count = 0
        self._end = self._fh.tell()
        self._fh.write(self._CLOSE)
        self._fh.flush()
        os.replace(self._tmp, self.path)
        self._closed = False

    @property
    def count(self) -> int:
        return self._count

    def _append(self, item: Any) -> None:
        text = _dumps(to_jsonable(item)).replace("\n", "\n\t\t")
        self._fh.seek(self._end)
        self._fh.write(("," if self._count else "") + "\n\t\t" + text)
        self._end = self._fh.tell()
        self._fh.write(self._CLOSE)
        self._fh.truncate()
        self._fh.flush()
        self._count += 1

    def write_frame(self, frame_id: int, instances: List[Dict[str, Any]]) -> None:
        if self.flat:
            for inst in instances:
                self._append(inst)
        else:
            self._append({"frame_id": int(frame_id), "instances": instances})

    def close(self) -> None:
        if not self._closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._closed = True
            log.info("wrote %d records to %s", self._count, self.path)

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def instances_to_json(keypoints_3d: np.ndarray, scores_3d: Optional[np.ndarray] = None,
                      extra: Optional[List[Dict[str, Any]]] = None) -> List[Dict[str, Any]]:
    """Per-instance dicts ``{"keypoints": (17x3), "keypoint_scores": (17)}`` (+ optional extra fields each)."""
    kp = np.asarray(keypoints_3d, dtype=np.float32)
    sc = np.ones(kp.shape[:2], np.float32) if scores_3d is None else np.asarray(scores_3d, np.float32)
    out = []
    for i in range(kp.shape[0]):
        d: Dict[str, Any] = {"keypoints": kp[i].astype(np.float64).tolist(),
                             "keypoint_scores": sc[i].astype(np.float64).tolist()}
        if extra is not None:
            d.update(extra[i])
        out.append(d)
    return out


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
