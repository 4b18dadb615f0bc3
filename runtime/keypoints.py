"""Keypoint conversion to Human3.6M-17 and the 2D/3D normalisations of the VideoPose3D lifter.

Everything here is vectorised numpy over any leading axes (persons, frames): arrays are ``(..., K, C)``.
References: ``docs/spec/lifter.md`` §5.2 (conversion), §5.4 (``norm_pose_2d``), §5.6 (screen normalisation of the
``VideoPoseLifting`` codec) and §5.8 (demo post-processing); quirks in ``docs/spec/demo_flow.md`` §11.
"""
from __future__ import annotations

import logging
from typing import Dict, Sequence, Tuple, Union

import numpy as np

from .errors import InputError

logger = logging.getLogger(__name__)

H36M_NUM_KEYPOINTS = 17

#: Human3.6M ``stats_info`` of ``configs/_base_/datasets/h36m.py``: the mean detector-box centre and max-side in
#: H36M pixels. ``norm_pose_2d`` maps every person's box onto this mean box (lifter.md §5.4).
H36M_BBOX_CENTER: Tuple[float, float] = (528.0, 427.0)
H36M_BBOX_SCALE: float = 400.0
#: Size of the (about square) Human3.6M frames in which the stats above live; the corrected codec normalises
#: canonicalised poses with it (demo_flow.md §11 Q2, lifter.md §5.9).
H36M_FRAME_SIZE: Tuple[int, int] = (1000, 1000)

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
_ALIASES: Dict[str, str] = {
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
    key = _ALIASES.get(key.replace("_", ""), _ALIASES.get(key, key))
    if key not in SOURCE_NUM_KEYPOINTS:
        raise InputError(
            f"unsupported 2D keypoint dataset {name!r}: supported are {', '.join(SUPPORTED_SOURCES)}"
        )
    return key


def convert_keypoint_definition(
    keypoints: np.ndarray, source: str, target: str = "h36m"
) -> np.ndarray:
    """Convert ``(..., K, C)`` keypoints (or per-keypoint values such as scores with ``C = 1``) to H36M-17.

    Reproduces mmpose's ``convert_keypoint_definition`` (lifter.md §5.2) element for element: same formulas,
    same evaluation order, arithmetic in the input dtype. Derived joints are means of their sources, so applied
    to scores (``scores[..., None]``) a derived joint gets the mean score, as in the mmpose visualiser.

    Differences from mmpose, on purpose:
    - any leading shape is accepted (mmpose needs exactly ``(N, K, C)``);
    - ``coco_wholebody`` uses its first 17 (COCO body) joints with the COCO rule; mmpose passes all 133 through
      unconverted, which breaks every 17-joint lifter (demo_flow.md §11 Q19);
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


def norm_pose_2d(
    keypoints: np.ndarray,
    bboxes: np.ndarray,
    bbox_center: Sequence[float] = H36M_BBOX_CENTER,
    bbox_scale: float = H36M_BBOX_SCALE,
    *,
    min_box_size: float = 0.0,
) -> np.ndarray:
    """Map each person's keypoints from its own box onto the dataset's mean box (lifter.md §5.4).

    ``keypoints`` ``(..., K, >=2)`` pixels, ``bboxes`` ``(..., 4)`` xyxy (the detector box the pose came from).
    ``kp' = (kp - box_centre) / max(box_w, box_h) * bbox_scale + bbox_center``; returns ``(..., K, 2)`` float32.

    The arithmetic follows mmpose under numpy 1.x promotion: the box sums and sides are float32, the halving and
    everything after it float64, rounded to float32 once at the end (bit-identical to the reference fixtures).
    ``min_box_size > 0`` clamps degenerate boxes (corrected mode); with the default 0 a zero-size box gives
    inf/NaN exactly like mmpose.
    """
    kp = np.asarray(keypoints)
    bb = np.asarray(bboxes)
    if kp.ndim < 2 or kp.shape[-1] < 2:
        raise InputError(f"keypoints must have shape (..., K, 2+), got {kp.shape}")
    if bb.shape[-1] != 4 or bb.shape[:-1] != kp.shape[:-2]:
        raise InputError(f"bboxes must have shape {kp.shape[:-2] + (4,)} (xyxy per person), got {bb.shape}")
    bb32 = bb.astype(np.float32, copy=False)
    x1, y1, x2, y2 = (bb32[..., i] for i in range(4))
    center = np.stack([(x1 + x2).astype(np.float64) / 2, (y1 + y2).astype(np.float64) / 2], axis=-1)
    scale = np.maximum(x2 - x1, y2 - y1).astype(np.float64)
    if min_box_size > 0:
        scale = np.maximum(scale, min_box_size)
    stats_c = np.asarray(bbox_center, dtype=np.float32).astype(np.float64)
    stats_s = np.float64(np.float32(bbox_scale))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (kp[..., :2].astype(np.float64) - center[..., None, :]) / scale[..., None, None] * stats_s + stats_c
    return out.astype(np.float32)


def normalize_screen_coordinates(keypoints: np.ndarray, width: float, height: float) -> np.ndarray:
    """The ``VideoPoseLifting`` codec's input normalisation (lifter.md §5.6), exactly, in float32.

    ``(kp - [w/2, h/2]) / (w/2)``: [0, w] maps to [-1, 1] and the aspect ratio is kept (the same scale for x
    and y). ``width``/``height`` are what the codec receives as ``camera_param`` ``w``/``h``; which values to pass
    (mmpose's swapped frame size, the real one, or the H36M frame) is decided by the caller (see
    :func:`pose3d_rt.lifters.streaming.codec_frame_size`).
    """
    if not (np.isfinite(width) and width > 0 and np.isfinite(height) and height > 0):
        raise InputError(f"codec frame size must be positive, got w={width}, h={height}")
    kp = np.asarray(keypoints, dtype=np.float32)
    center = np.array([0.5 * width, 0.5 * height], dtype=np.float32)
    scale = np.array(0.5 * width, dtype=np.float32)
    return (kp[..., :2] - center) / scale


def denormalize_screen_coordinates(normalized: np.ndarray, width: float, height: float) -> np.ndarray:
    """Inverse of :func:`normalize_screen_coordinates` (pixels from codec units)."""
    n = np.asarray(normalized, dtype=np.float32)
    return n * np.float32(0.5 * width) + np.array([0.5 * width, 0.5 * height], dtype=np.float32)


def postprocess_3d(
    keypoints_3d: np.ndarray,
    *,
    rebase: bool = True,
    floor: Union[np.ndarray, float] | None = None,
) -> np.ndarray:
    """Camera-frame lifter output ``(..., 17, 3)`` -> the demo's display frame (lifter.md §5.8).

    1. axes ``(x, y, z) -> (x, z, y)``; 2. negate the new X and Z: ``(X, Y, Z) = (-x, z, -y)`` (Z up);
    3. rebase the height:
       - ``floor is None`` and ``rebase``: ``Z -= min_j Z`` per person and frame (mmpose parity; the lowest joint
         sits at 0 in every frame, which makes jumps invisible, demo_flow.md §11 Q17);
       - ``floor`` given (a scalar or an array broadcastable to ``(...,)``, in the output Z frame): ``Z -= floor``.
         The corrected mode passes a per-track running floor (the lowest Z seen so far on that track), the causal
         form of VideoPose3D's single global minimum;
       - ``rebase=False`` and no floor: no rebase (``--disable-rebase-keypoint``).
    Returns a new float32 array; the input is not modified.
    """
    kp = np.asarray(keypoints_3d)
    if kp.ndim < 2 or kp.shape[-1] != 3:
        raise InputError(f"3D keypoints must have shape (..., K, 3), got {kp.shape}")
    out = kp[..., [0, 2, 1]].astype(np.float32)
    out[..., 0] = -out[..., 0]
    out[..., 2] = -out[..., 2]
    if floor is not None:
        out[..., 2] -= np.asarray(floor, dtype=np.float32)[..., None]
    elif rebase:
        out[..., 2] -= np.min(out[..., 2], axis=-1, keepdims=True)
    return out


def lowest_z(keypoints_3d_display: np.ndarray) -> np.ndarray:
    """Per-person minimum of the display-frame Z over the joints, ``(..., K, 3) -> (...)``."""
    return np.min(np.asarray(keypoints_3d_display)[..., 2], axis=-1)


__all__ = [
    "H36M_NUM_KEYPOINTS",
    "H36M_BBOX_CENTER",
    "H36M_BBOX_SCALE",
    "H36M_FRAME_SIZE",
    "SUPPORTED_SOURCES",
    "SOURCE_NUM_KEYPOINTS",
    "canonical_dataset_name",
    "convert_keypoint_definition",
    "convert_keypoint_scores",
    "norm_pose_2d",
    "normalize_screen_coordinates",
    "denormalize_screen_coordinates",
    "postprocess_3d",
    "lowest_z",
]
