"""Result types of the pipeline: small dataclasses of numpy arrays that validate themselves."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import numpy as np


def _check(name: str, arr: np.ndarray, shape: tuple) -> None:
    if arr.ndim != len(shape) or any(s is not None and a != s for a, s in zip(arr.shape, shape)):
        want = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"FrameResult.{name} must have shape {want}, got {arr.shape}")


@dataclass
class FrameResult:
    """Everything known about one frame, persons in one order (ascending track id).

    - ``frame_index``: 0-based index of the frame in its source (the mmpose JSON writer adds 1 in parity mode).
    - ``boxes`` (n, 4) xyxy pixels, ``scores`` (n,) detector scores (1.0 for boxes not from the detector).
    - ``track_ids`` (n,) int64 (-1 = untracked, mmpose mode only).
    - ``keypoints_2d`` (n, K, 2) pixels and ``scores_2d`` (n, K), in the 2D model's keypoint set (COCO-17).
    - ``keypoints_3d`` (n, 17, 3) H36M joints in metres after post-processing (X right, Y forward, Z up), or NaN
      for a person that was not lifted; ``None`` when no lifter is configured.
    - ``image_size`` (width, height).
    """

    frame_index: int
    boxes: np.ndarray
    scores: np.ndarray
    track_ids: np.ndarray
    keypoints_2d: np.ndarray
    scores_2d: np.ndarray
    keypoints_3d: Optional[np.ndarray] = None
    image_size: tuple = (0, 0)
    extras: Dict[str, Any] = field(default_factory=dict)
    frame: Optional[np.ndarray] = field(default=None, repr=False)  # the BGR frame, when asked for (keep_frames)

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        n = self.boxes.shape[0]
        self.scores = np.asarray(self.scores, np.float32).reshape(-1)
        self.track_ids = np.asarray(self.track_ids, np.int64).reshape(-1)
        self.keypoints_2d = np.asarray(self.keypoints_2d, np.float32)
        self.scores_2d = np.asarray(self.scores_2d, np.float32)
        if self.keypoints_2d.size == 0:
            self.keypoints_2d = self.keypoints_2d.reshape(0, self.keypoints_2d.shape[1] if self.keypoints_2d.ndim == 3 else 17, 2)
            self.scores_2d = self.scores_2d.reshape(0, self.keypoints_2d.shape[1])
        _check("scores", self.scores, (n,))
        _check("track_ids", self.track_ids, (n,))
        _check("keypoints_2d", self.keypoints_2d, (n, None, 2))
        _check("scores_2d", self.scores_2d, (n, self.keypoints_2d.shape[1]))
        if self.keypoints_3d is not None:
            self.keypoints_3d = np.asarray(self.keypoints_3d, np.float32)
            if self.keypoints_3d.size == 0:
                self.keypoints_3d = self.keypoints_3d.reshape(0, 17, 3)
            _check("keypoints_3d", self.keypoints_3d, (n, None, 3))

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @property
    def num_persons(self) -> int:
        return len(self)

    def to_dict(self) -> Dict[str, Any]:
        """Plain Python types (JSON-serialisable): one dict per person with track id, box, 2D and 3D."""
        persons = []
        for i in range(len(self)):
            p: Dict[str, Any] = {
                "track_id": int(self.track_ids[i]),
                "bbox": self.boxes[i].astype(np.float64).tolist(),
                "bbox_score": float(self.scores[i]),
                "keypoints_2d": self.keypoints_2d[i].astype(np.float64).tolist(),
                "keypoint_scores_2d": self.scores_2d[i].astype(np.float64).tolist(),
            }
            if self.keypoints_3d is not None:
                k3 = self.keypoints_3d[i]
                p["keypoints"] = None if np.isnan(k3).any() else k3.astype(np.float64).tolist()
            persons.append(p)
        return {"frame_index": int(self.frame_index), "image_size": list(self.image_size), "persons": persons}
