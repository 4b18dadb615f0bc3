"""Keypoint sets: their metadata (names, skeleton, colours, flip permutation, OKS sigmas) as plain data, and the
conversion of the 2D keypoint sets a pose model may output to the lifter's Human3.6M-17 joints.

Metadata
--------
Mirrors what mmpose's ``parse_pose_metainfo`` (``mmpose/datasets/datasets/utils.py``) derives from
``configs/_base_/datasets/coco.py`` and ``configs/_base_/datasets/h36m.py`` (mmpose 1.3.2); the values were checked
against the parsed ``dataset_meta`` stored in the reference checkpoints and the demo's prediction JSON
(``tests/fixtures/weights/rtmpose_*.meta.json``, ``tests/fixtures/e2e/*/results_*.json``).

Colour order
------------
mmpose's config files define colours as ``[r, g, b]`` triplets: its visualiser (``PoseLocalVisualizer``, built on
mmengine's ``Visualizer``) draws onto an **RGB** image, so ``[255, 128, 0]`` is orange (right side), ``[0, 255, 0]``
green (left side) and ``[51, 153, 255]`` light blue (centre line). ``parse_pose_metainfo``'s docstring calls the
arrays BGR, but that is not how they are used. Here ``keypoint_colors`` / ``link_colors`` are **BGR** tuples (the
order OpenCV drawing functions take, i.e. mmpose's triplets reversed) and ``keypoint_colors_rgb`` /
``link_colors_rgb`` give mmpose's triplets unchanged.

Conversion to Human3.6M-17
--------------------------
:func:`convert_keypoint_definition` reproduces mmpose's ``convert_keypoint_definition`` for the sources in
:data:`SOURCE_NUM_KEYPOINTS` (COCO-17, PoseTrack18, COCO-WholeBody body joints, AIC, CrowdPose); dataset names and
mmpose's aliases are resolved by :func:`canonical_dataset_name` (docs/MMPOSE_BEHAVIOUR.md, VideoPose3D).
Vectorised numpy over any leading axes (persons, frames): arrays are ``(..., K, C)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from .errors import InputError

Color = Tuple[int, int, int]

_GREEN: Color = (0, 255, 0)  # mmpose RGB triplets
_ORANGE: Color = (255, 128, 0)
_BLUE: Color = (51, 153, 255)


def _bgr(rgb: Sequence[int]) -> Color:
    r, g, b = (int(c) for c in rgb)
    return (b, g, r)


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class BBoxStats:
    """A dataset's mean person box (mmpose ``stats_info``), used by the lifter's ``norm_pose_2d``.

    mmpose stores both as float32 arrays: ``bbox_center`` (2,) and ``bbox_scale`` () (a 0-d array).
    """

    bbox_center: Tuple[float, float]
    bbox_scale: float

    @property
    def center_array(self) -> np.ndarray:
        return np.asarray(self.bbox_center, np.float32)

    @property
    def scale_array(self) -> np.ndarray:
        return np.asarray(self.bbox_scale, np.float32)


@dataclass(frozen=True)
class KeypointDataset:
    """Metadata of one keypoint set.

    - ``keypoint_names``: K names in model output order.
    - ``skeleton``: links as ``(start, end)`` keypoint indices, in mmpose's ``skeleton_info`` order.
    - ``keypoint_colors`` (K) / ``link_colors`` (L): BGR tuples (see the module docstring).
    - ``swap``: per keypoint, the name of its mirror keypoint or ``""`` (mmpose ``keypoint_info[*]['swap']``).
    - ``sigmas``: COCO OKS sigmas (float32, shape (K,)) or ``None`` when the dataset defines none.
    - ``joint_weights``: mmpose ``dataset_keypoint_weights`` (float32, (K,)).
    - ``upper_body_ids`` / ``lower_body_ids``: from each keypoint's ``type``.
    - ``stats_info``: the mean-box statistics, or ``None``.

    Derived: ``flip_indices`` (an involution mapping each keypoint to its mirror), ``flip_pairs`` (mmpose's list,
    which holds **both** orders of every pair: ``(flip_indices[i], i)`` for every swapped ``i`` in index order) and
    ``symmetric_pairs`` (each pair once, ``(left, right)``, smaller index first).
    """

    name: str
    keypoint_names: Tuple[str, ...]
    skeleton: Tuple[Tuple[int, int], ...]
    keypoint_colors: Tuple[Color, ...]
    link_colors: Tuple[Color, ...]
    swap: Tuple[str, ...]
    upper_body_ids: Tuple[int, ...]
    lower_body_ids: Tuple[int, ...]
    joint_weights: np.ndarray = field(compare=False, repr=False)
    sigmas: Optional[np.ndarray] = field(default=None, compare=False, repr=False)
    stats_info: Optional[BBoxStats] = None
    flip_indices: Tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        k = len(self.keypoint_names)
        if len(set(self.keypoint_names)) != k:
            raise ValueError(f"dataset {self.name!r}: duplicate keypoint names")
        index = {n: i for i, n in enumerate(self.keypoint_names)}
        if len(self.swap) != k or len(self.keypoint_colors) != k:
            raise ValueError(f"dataset {self.name!r}: swap/keypoint_colors need {k} entries")
        if len(self.link_colors) != len(self.skeleton):
            raise ValueError(f"dataset {self.name!r}: {len(self.skeleton)} links but {len(self.link_colors)} colours")
        for a, b in self.skeleton:
            if not (0 <= a < k and 0 <= b < k):
                raise ValueError(f"dataset {self.name!r}: skeleton link ({a}, {b}) outside 0..{k - 1}")
        unknown = [s for s in self.swap if s and s not in index]
        if unknown:
            raise ValueError(f"dataset {self.name!r}: swap names {unknown} are not keypoints")
        flip = tuple(index[s] if s else i for i, s in enumerate(self.swap))
        if any(flip[j] != i for i, j in enumerate(flip)):
            raise ValueError(f"dataset {self.name!r}: swap table is not symmetric")
        object.__setattr__(self, "flip_indices", flip)
        w = _readonly(np.asarray(self.joint_weights, np.float32).reshape(-1).copy())
        if w.shape != (k,):
            raise ValueError(f"dataset {self.name!r}: joint_weights need shape ({k},), got {w.shape}")
        object.__setattr__(self, "joint_weights", w)
        if self.sigmas is not None:
            s = _readonly(np.asarray(self.sigmas, np.float32).reshape(-1).copy())
            if s.shape != (k,):
                raise ValueError(f"dataset {self.name!r}: sigmas need shape ({k},), got {s.shape}")
            object.__setattr__(self, "sigmas", s)

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)

    @property
    def num_links(self) -> int:
        return len(self.skeleton)

    @property
    def flip_pairs(self) -> Tuple[Tuple[int, int], ...]:
        return tuple((j, i) for i, j in enumerate(self.flip_indices) if i != j)

    @property
    def symmetric_pairs(self) -> Tuple[Tuple[int, int], ...]:
        return tuple((i, j) for i, j in enumerate(self.flip_indices) if i < j)

    @property
    def flip_index_array(self) -> np.ndarray:
        return np.asarray(self.flip_indices, np.int64)

    @property
    def keypoint_colors_rgb(self) -> Tuple[Color, ...]:
        """mmpose's colour triplets as written in its config (RGB)."""
        return tuple(_bgr(c) for c in self.keypoint_colors)

    @property
    def link_colors_rgb(self) -> Tuple[Color, ...]:
        return tuple(_bgr(c) for c in self.link_colors)

    @property
    def skeleton_array(self) -> np.ndarray:
        return np.asarray(self.skeleton, np.int64).reshape(-1, 2)

    def index(self, name: str) -> int:
        """Index of keypoint ``name``; KeyError listing the names otherwise."""
        try:
            return self.keypoint_names.index(name)
        except ValueError:
            raise KeyError(f"{self.name}: no keypoint {name!r}; known: {', '.join(self.keypoint_names)}") from None


def _make(name: str, kpts: Sequence[Tuple[str, str, str, Color]], links: Sequence[Tuple[str, str, Color]],
          joint_weights: Sequence[float], sigmas: Optional[Sequence[float]],
          stats_info: Optional[BBoxStats] = None) -> KeypointDataset:
    """Build from mmpose-style rows: keypoints ``(name, swap, type, rgb)``, links ``(start, end, rgb)``."""
    names = tuple(k[0] for k in kpts)
    idx = {n: i for i, n in enumerate(names)}
    return KeypointDataset(
        name=name,
        keypoint_names=names,
        skeleton=tuple((idx[a], idx[b]) for a, b, _ in links),
        keypoint_colors=tuple(_bgr(k[3]) for k in kpts),
        link_colors=tuple(_bgr(c) for _, _, c in links),
        swap=tuple(k[1] for k in kpts),
        upper_body_ids=tuple(i for i, k in enumerate(kpts) if k[2] == "upper"),
        lower_body_ids=tuple(i for i, k in enumerate(kpts) if k[2] == "lower"),
        joint_weights=np.asarray(joint_weights, np.float32),
        sigmas=None if sigmas is None else np.asarray(sigmas, np.float32),
        stats_info=stats_info,
    )


#: COCO-17 (``configs/_base_/datasets/coco.py``); also the keypoint set of RTMPose body7/body8 models.
COCO17 = _make(
    "coco",
    [
        ("nose", "", "upper", _BLUE),
        ("left_eye", "right_eye", "upper", _BLUE),
        ("right_eye", "left_eye", "upper", _BLUE),
        ("left_ear", "right_ear", "upper", _BLUE),
        ("right_ear", "left_ear", "upper", _BLUE),
        ("left_shoulder", "right_shoulder", "upper", _GREEN),
        ("right_shoulder", "left_shoulder", "upper", _ORANGE),
        ("left_elbow", "right_elbow", "upper", _GREEN),
        ("right_elbow", "left_elbow", "upper", _ORANGE),
        ("left_wrist", "right_wrist", "upper", _GREEN),
        ("right_wrist", "left_wrist", "upper", _ORANGE),
        ("left_hip", "right_hip", "lower", _GREEN),
        ("right_hip", "left_hip", "lower", _ORANGE),
        ("left_knee", "right_knee", "lower", _GREEN),
        ("right_knee", "left_knee", "lower", _ORANGE),
        ("left_ankle", "right_ankle", "lower", _GREEN),
        ("right_ankle", "left_ankle", "lower", _ORANGE),
    ],
    [
        ("left_ankle", "left_knee", _GREEN),
        ("left_knee", "left_hip", _GREEN),
        ("right_ankle", "right_knee", _ORANGE),
        ("right_knee", "right_hip", _ORANGE),
        ("left_hip", "right_hip", _BLUE),
        ("left_shoulder", "left_hip", _BLUE),
        ("right_shoulder", "right_hip", _BLUE),
        ("left_shoulder", "right_shoulder", _BLUE),
        ("left_shoulder", "left_elbow", _GREEN),
        ("right_shoulder", "right_elbow", _ORANGE),
        ("left_elbow", "left_wrist", _GREEN),
        ("right_elbow", "right_wrist", _ORANGE),
        ("left_eye", "right_eye", _BLUE),
        ("nose", "left_eye", _BLUE),
        ("nose", "right_eye", _BLUE),
        ("left_eye", "left_ear", _BLUE),
        ("right_eye", "right_ear", _BLUE),
        ("left_ear", "left_shoulder", _BLUE),
        ("right_ear", "right_shoulder", _BLUE),
    ],
    joint_weights=[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.2, 1.2, 1.5, 1.5, 1.0, 1.0, 1.2, 1.2, 1.5, 1.5],
    sigmas=[0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107,
            0.087, 0.087, 0.089, 0.089],
)

#: Human3.6M-17 (``configs/_base_/datasets/h36m.py``, mmpose 1.x). mmpose defines no OKS sigmas for it
#: (``sigmas=[]``, parsed to an empty array), so ``sigmas`` is ``None``. ``stats_info`` is the mean detector box
#: used by the lifter's ``norm_pose_2d`` (docs/MMPOSE_BEHAVIOUR.md, VideoPose3D).
H36M17 = _make(
    "h36m",
    [
        ("root", "", "lower", _BLUE),
        ("right_hip", "left_hip", "lower", _ORANGE),
        ("right_knee", "left_knee", "lower", _ORANGE),
        ("right_foot", "left_foot", "lower", _ORANGE),
        ("left_hip", "right_hip", "lower", _GREEN),
        ("left_knee", "right_knee", "lower", _GREEN),
        ("left_foot", "right_foot", "lower", _GREEN),
        ("spine", "", "upper", _BLUE),
        ("thorax", "", "upper", _BLUE),
        ("neck_base", "", "upper", _BLUE),
        ("head", "", "upper", _BLUE),
        ("left_shoulder", "right_shoulder", "upper", _GREEN),
        ("left_elbow", "right_elbow", "upper", _GREEN),
        ("left_wrist", "right_wrist", "upper", _GREEN),
        ("right_shoulder", "left_shoulder", "upper", _ORANGE),
        ("right_elbow", "left_elbow", "upper", _ORANGE),
        ("right_wrist", "left_wrist", "upper", _ORANGE),
    ],
    [
        ("root", "left_hip", _GREEN),
        ("left_hip", "left_knee", _GREEN),
        ("left_knee", "left_foot", _GREEN),
        ("root", "right_hip", _ORANGE),
        ("right_hip", "right_knee", _ORANGE),
        ("right_knee", "right_foot", _ORANGE),
        ("root", "spine", _BLUE),
        ("spine", "thorax", _BLUE),
        ("thorax", "neck_base", _BLUE),
        ("neck_base", "head", _BLUE),
        ("thorax", "left_shoulder", _GREEN),
        ("left_shoulder", "left_elbow", _GREEN),
        ("left_elbow", "left_wrist", _GREEN),
        ("thorax", "right_shoulder", _ORANGE),
        ("right_shoulder", "right_elbow", _ORANGE),
        ("right_elbow", "right_wrist", _ORANGE),
    ],
    joint_weights=[1.0] * 17,
    sigmas=None,
    stats_info=BBoxStats(bbox_center=(528.0, 427.0), bbox_scale=400.0),
)

DATASETS: Dict[str, KeypointDataset] = {"coco": COCO17, "h36m": H36M17}

# aliases accepted by get_dataset (the metadata tables); the conversion has its own, _SOURCE_ALIASES, below
_TABLE_ALIASES: Dict[str, str] = {
    "coco17": "coco", "cocodataset": "coco", "body7": "coco", "body8": "coco",
    "h36m17": "h36m", "human36m": "h36m", "human36mdataset": "h36m",
}


def get_dataset(name: str) -> KeypointDataset:
    """The :class:`KeypointDataset` called ``name`` (case-insensitive; ``"coco"``, ``"h36m"`` and a few aliases
    such as ``"body8"``, ``"human36m"``). Raises KeyError listing the known names otherwise."""
    if isinstance(name, KeypointDataset):
        return name
    key = str(name).strip().lower().replace("-", "").replace("_", "")
    key = _TABLE_ALIASES.get(key, key)
    if key not in DATASETS:
        raise KeyError(f"unknown keypoint dataset {name!r}; known: {', '.join(sorted(DATASETS))} "
                       f"(aliases: {', '.join(sorted(_TABLE_ALIASES))})")
    return DATASETS[key]


# ---------------------------------------------------------------------------------------------------------------
# conversion of 2D keypoint sets to the lifter's Human3.6M-17
# ---------------------------------------------------------------------------------------------------------------

H36M_NUM_KEYPOINTS = 17

#: Source datasets accepted by :func:`convert_keypoint_definition` and the number of keypoints each must have
#: (``coco_wholebody`` needs at least the 17 body joints; only those are used).
SOURCE_NUM_KEYPOINTS: Dict[str, int] = {
    "h36m": 17,
    "coco": 17,
    "posetrack18": 17,
    "coco_wholebody": 133,
    "aic": 14,
    "crowdpose": 14,
}
SUPPORTED_SOURCES: Tuple[str, ...] = tuple(SOURCE_NUM_KEYPOINTS)

# mmpose 1.x metainfo names and the 0.x / early-1.x dataset class names of the same keypoint sets.
_SOURCE_ALIASES: Dict[str, str] = {
    "human36m": "h36m",
    "human36mdataset": "h36m",
    "h3wb": "h36m",
    "cocodataset": "coco",
    "body8": "coco",  # RTMPose body7/body8 models are trained and evaluated with COCO-17 metadata
    "body7": "coco",
    "posetrack18dataset": "posetrack18",
    "posetrack18videodataset": "posetrack18",
    "cocowholebody": "coco_wholebody",
    "cocowholebodydataset": "coco_wholebody",
    "aicdataset": "aic",
    "crowdposedataset": "crowdpose",
}

# H36M joints that are plain copies of one source joint: (h36m indices, source indices).
_COCO_COPIES = ([1, 2, 3, 4, 5, 6, 9, 11, 12, 13, 14, 15, 16], [12, 14, 16, 11, 13, 15, 0, 5, 7, 9, 6, 8, 10])
_AIC_COPIES = ([1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16], [6, 7, 8, 9, 10, 11, 3, 4, 5, 0, 1, 2])
_CROWDPOSE_COPIES = ([1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16], [7, 9, 11, 6, 8, 10, 0, 2, 4, 1, 3, 5])


def canonical_dataset_name(name: str) -> str:
    """Lower-cased metainfo name (``'coco'``, ``'h36m'``, ...) for a dataset name or known alias.

    Raises :class:`InputError` listing the supported names if ``name`` is not one of them.
    """
    if not isinstance(name, str):
        raise InputError(f"keypoint dataset name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    key = _SOURCE_ALIASES.get(key.replace("_", ""), _SOURCE_ALIASES.get(key, key))
    if key not in SOURCE_NUM_KEYPOINTS:
        raise InputError(
            f"unsupported 2D keypoint dataset {name!r}: supported are {', '.join(SUPPORTED_SOURCES)}"
        )
    return key


def convert_keypoint_definition(
    keypoints: np.ndarray, source: str, target: str = "h36m"
) -> np.ndarray:
    """Convert ``(..., K, C)`` keypoints (or per-keypoint values such as scores with ``C = 1``) to H36M-17.

    Reproduces mmpose's ``convert_keypoint_definition`` (docs/MMPOSE_BEHAVIOUR.md, VideoPose3D) element for element: same formulas,
    same evaluation order, arithmetic in the input dtype. Derived joints are means of their sources, so applied
    to scores (``scores[..., None]``) a derived joint gets the mean score, as in the mmpose visualiser.

    Differences from mmpose, on purpose:
    - any leading shape is accepted (mmpose needs exactly ``(N, K, C)``);
    - ``coco_wholebody`` uses its first 17 (COCO body) joints with the COCO rule; mmpose passes all 133 through
      unconverted, which breaks every 17-joint lifter (docs/MMPOSE_BEHAVIOUR.md, Q19);
    - ``h36m`` input is returned as a copy, not the same array.
    """
    if target.strip().lower() not in ("h36m", "h3wb"):
        raise InputError(f"unsupported lifter keypoint dataset {target!r}: only 'h36m' is supported")
    src = canonical_dataset_name(source)
    kp = np.asarray(keypoints)
    if kp.ndim < 2:
        raise InputError(f"keypoints must have shape (..., K, C), got {kp.shape}")
    need = SOURCE_NUM_KEYPOINTS[src]
    k = kp.shape[-2]
    if (src == "coco_wholebody" and k < 17) or (src != "coco_wholebody" and k != need):
        raise InputError(
            f"{src} keypoints must have {need} joints on axis -2, got shape {kp.shape}"
        )
    if src == "h36m":
        return kp.copy()
    if src == "coco_wholebody":
        src = "coco"
        kp = kp[..., :17, :]

    out = np.zeros(kp.shape[:-2] + (H36M_NUM_KEYPOINTS, kp.shape[-1]), dtype=kp.dtype)
    if src in ("coco", "posetrack18"):
        out[..., 0, :] = (kp[..., 11, :] + kp[..., 12, :]) / 2  # pelvis: mid-hips
        out[..., 8, :] = (kp[..., 5, :] + kp[..., 6, :]) / 2  # thorax: mid-shoulders
        out[..., 7, :] = (out[..., 0, :] + out[..., 8, :]) / 2  # spine: mid pelvis-thorax
        out[..., 10, :] = (kp[..., 1, :] + kp[..., 2, :]) / 2  # head: mid-eyes (PoseTrack18: same indices)
        dst, srcs = _COCO_COPIES
    else:  # aic, crowdpose: 14 joints with neck (13) and head top (12)
        if src == "aic":
            out[..., 0, :] = (kp[..., 9, :] + kp[..., 6, :]) / 2
            out[..., 8, :] = (kp[..., 3, :] + kp[..., 0, :]) / 2
            dst, srcs = _AIC_COPIES
        else:
            out[..., 0, :] = (kp[..., 6, :] + kp[..., 7, :]) / 2
            out[..., 8, :] = (kp[..., 0, :] + kp[..., 1, :]) / 2
            dst, srcs = _CROWDPOSE_COPIES
        out[..., 7, :] = (out[..., 0, :] + out[..., 8, :]) / 2
        out[..., 9, :] = (3 * kp[..., 13, :] + kp[..., 12, :]) / 4  # neck base: 1/4 neck -> head top
        out[..., 10, :] = (5 * kp[..., 13, :] + 7 * kp[..., 12, :]) / 12  # head centre: 7/12 of the way
    out[..., dst, :] = kp[..., srcs, :]
    return out


def convert_keypoint_scores(scores: np.ndarray, source: str, target: str = "h36m") -> np.ndarray:
    """Convert ``(..., K)`` per-keypoint scores to H36M-17 (derived joints get the mean of their sources)."""
    s = np.asarray(scores)
    return convert_keypoint_definition(s[..., None], source, target)[..., 0]


__all__ = [
    "KeypointDataset",
    "BBoxStats",
    "COCO17",
    "H36M17",
    "DATASETS",
    "get_dataset",
    "H36M_NUM_KEYPOINTS",
    "SOURCE_NUM_KEYPOINTS",
    "SUPPORTED_SOURCES",
    "canonical_dataset_name",
    "convert_keypoint_definition",
    "convert_keypoint_scores",
]
