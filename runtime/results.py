"""Result types of the pipeline, and the ONE per-person output schema that the API, the JSON and the NPZ share.

:data:`PERSON_FIELDS` names every per-person field once (name, dtype, shape per person, JSON key, meaning).
:meth:`FrameResult.columns` gives a frame's persons as arrays in that schema and :meth:`FrameResult.instances`
as JSON-ready dicts; ``to_dict``, the predictions JSON writer and the NPZ writer (:mod:`pose3d_rt.io.sinks`)
only choose which fields they write, in which order:

- :data:`DEMO_INSTANCE` -- the mmpose demo's instance: ``keypoints`` (3D) and ``keypoint_scores``;
- :data:`TRACK_FIELDS` -- what pose3d-rt adds: ``track_id``, ``bbox``, ``bbox_score``, ``keypoints_2d``,
  ``keypoint_scores_2d``;
- :data:`JSON_FIELDS` (per mode), :data:`NPZ_FIELDS` and :data:`DICT_FIELDS` -- the choice of each writer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

Dim = Union[int, str]  # a fixed size, or a symbol bound per frame: "K" 2D keypoints, "J" 3D joints


@dataclass(frozen=True)
class PersonField:
    """One per-person field of the output schema.

    ``shape`` is the shape of ONE person's value (``()`` for a scalar); a ``str`` entry is a size that is the
    same for every field using the symbol (``"K"``: keypoints of the 2D model, ``"J"``: 3D joints).
    ``attr`` is the :class:`FrameResult` attribute holding the (n, *shape) array (None: derived, see ``doc``).
    """

    name: str  # the NPZ array name, the key of FrameResult.columns()
    dtype: type
    shape: Tuple[Dim, ...]
    json_key: str  # the key in the predictions JSON and in FrameResult.to_dict()
    attr: Optional[str]
    doc: str


PERSON_FIELDS: Tuple[PersonField, ...] = (
    PersonField("track_id", np.int64, (), "track_id", "track_ids",
                "track id (-1 = untracked, mmpose mode only)"),
    PersonField("bbox", np.float32, (4,), "bbox", "boxes", "person box x1, y1, x2, y2 in pixels"),
    PersonField("bbox_score", np.float32, (), "bbox_score", "scores",
                "detector score (1.0 for a box that does not come from the detector)"),
    PersonField("keypoints_2d", np.float32, ("K", 2), "keypoints_2d", "keypoints_2d",
                "2D keypoints in pixels, in the 2D model's keypoint set (COCO-17)"),
    PersonField("keypoint_scores_2d", np.float32, ("K",), "keypoint_scores_2d", "scores_2d",
                "2D keypoint confidences"),
    PersonField("keypoints_3d", np.float32, ("J", 3), "keypoints", "keypoints_3d",
                "H36M-17 joints in metres (X right, Y forward, Z up); NaN when the person was not lifted"),
    PersonField("keypoint_scores_3d", np.float32, ("J",), "keypoint_scores", None,
                "3D joint scores: 1.0 (the lifter gives none; the mmpose demo writes ones)"),
)
FIELDS: Dict[str, PersonField] = {f.name: f for f in PERSON_FIELDS}

DEMO_INSTANCE: Tuple[str, ...] = ("keypoints_3d", "keypoint_scores_3d")
TRACK_FIELDS: Tuple[str, ...] = ("track_id", "bbox", "bbox_score", "keypoints_2d", "keypoint_scores_2d")
JSON_FIELDS: Dict[str, Tuple[str, ...]] = {"mmpose": DEMO_INSTANCE, "default": DEMO_INSTANCE + TRACK_FIELDS}
NPZ_FIELDS: Tuple[str, ...] = TRACK_FIELDS + ("keypoints_3d",)  # plus "frame_index", one row per person-frame
DICT_FIELDS: Tuple[str, ...] = TRACK_FIELDS + ("keypoints_3d",)
NUM_JOINTS_3D = 17


def _shape_text(shape: Sequence[Optional[int]]) -> str:
    return "(" + ", ".join("n" if s is None else str(s) for s in shape) + ")"


def _check(name: str, arr: np.ndarray, shape: Sequence[Optional[int]]) -> None:
    if arr.ndim != len(shape) or any(s is not None and a != s for a, s in zip(arr.shape, shape)):
        raise ValueError(f"FrameResult.{name} must have shape {_shape_text(shape)}, got {arr.shape}")


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
    - ``timestamp``: seconds from the start of the source (the video's presentation time of the frame; frame_index
      / fps when the container gives none); None when unknown.

    The same fields under their output names: :data:`PERSON_FIELDS`, :meth:`columns`, :meth:`instances`.
    """

    frame_index: int
    boxes: np.ndarray
    scores: np.ndarray
    track_ids: np.ndarray
    keypoints_2d: np.ndarray
    scores_2d: np.ndarray
    keypoints_3d: Optional[np.ndarray] = None
    image_size: tuple = (0, 0)
    timestamp: Optional[float] = None
    extras: Dict[str, Any] = field(default_factory=dict)
    frame: Optional[np.ndarray] = field(default=None, repr=False)  # the BGR frame, when asked for (keep_frames)

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, np.float32).reshape(-1)
        self.track_ids = np.asarray(self.track_ids, np.int64).reshape(-1)
        self.keypoints_2d = np.asarray(self.keypoints_2d, np.float32)
        self.scores_2d = np.asarray(self.scores_2d, np.float32)
        if self.keypoints_2d.size == 0:
            k = self.keypoints_2d.shape[1] if self.keypoints_2d.ndim == 3 else 17
            self.keypoints_2d = self.keypoints_2d.reshape(0, k, 2)
            self.scores_2d = self.scores_2d.reshape(0, k)
        if self.keypoints_3d is not None:
            self.keypoints_3d = np.asarray(self.keypoints_3d, np.float32)
            if self.keypoints_3d.size == 0:
                self.keypoints_3d = self.keypoints_3d.reshape(0, NUM_JOINTS_3D, 3)
        n = self.boxes.shape[0]
        dims: Dict[str, Optional[int]] = {"K": self.keypoints_2d.shape[1] if self.keypoints_2d.ndim == 3 else None,
                                          "J": None}
        for f in PERSON_FIELDS:
            arr = None if f.attr is None else getattr(self, f.attr)
            if arr is not None:
                _check(f.attr, arr, (n,) + tuple(dims.get(s) if isinstance(s, str) else s for s in f.shape))

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @property
    def num_persons(self) -> int:
        return len(self)

    def columns(self, names: Sequence[str] = NPZ_FIELDS, missing_3d: float = np.nan) -> Dict[str, np.ndarray]:
        """The persons as one C-contiguous array per field of :data:`PERSON_FIELDS` (``names``, in that order),
        each of the field's dtype and shape ``(n, *shape)``. Without a lifter, ``keypoints_3d`` is filled with
        ``missing_3d``."""
        n = len(self)
        out: Dict[str, np.ndarray] = {}
        for name in names:
            f = FIELDS[name]
            if name == "keypoint_scores_3d":
                arr = np.ones((n, self._joints()), f.dtype)
            elif name == "keypoints_3d" and self.keypoints_3d is None:
                arr = np.full((n, NUM_JOINTS_3D, 3), missing_3d, f.dtype)
            else:
                arr = getattr(self, f.attr)
            out[name] = np.ascontiguousarray(arr, f.dtype)
        return out

    def _joints(self) -> int:
        return NUM_JOINTS_3D if self.keypoints_3d is None else int(self.keypoints_3d.shape[1])

    def instances(self, names: Sequence[str], missing_3d: float = np.nan) -> List[Dict[str, Any]]:
        """One dict per person, ``{json_key: value}`` for the fields ``names`` in that order, values as plain
        Python (ints, floats and nested lists of floats; float32 values widened exactly to float64)."""
        values = []
        for name, arr in self.columns(names, missing_3d).items():
            plain = arr.tolist() if arr.dtype.kind in "iu" else arr.astype(np.float64).tolist()
            values.append((FIELDS[name].json_key, plain))
        return [{key: plain[i] for key, plain in values} for i in range(len(self))]

    def to_dict(self) -> Dict[str, Any]:
        """Plain Python types (JSON-serialisable): one dict per person with track id, box, 2D and 3D (the 3D
        ``keypoints`` is None for a person that was not lifted, and absent when no lifter is configured)."""
        names = TRACK_FIELDS if self.keypoints_3d is None else DICT_FIELDS
        persons = self.instances(names)
        if self.keypoints_3d is not None:
            lifted = ~np.isnan(self.keypoints_3d).any(axis=(1, 2))
            for p, ok in zip(persons, lifted):
                if not ok:
                    p["keypoints"] = None
        return {"frame_index": int(self.frame_index), "image_size": list(self.image_size), "persons": persons}


__all__ = ["FrameResult", "PersonField", "PERSON_FIELDS", "FIELDS", "DEMO_INSTANCE", "TRACK_FIELDS", "JSON_FIELDS",
           "NPZ_FIELDS", "DICT_FIELDS"]
