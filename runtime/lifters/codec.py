"""The VideoPose3D codec: the 2D normalisations before the network and the 3D post-processing after it.

Everything here is vectorised numpy over any leading axes (persons, frames): arrays are ``(..., K, C)``.
mmpose's ``VideoPoseLifting`` codec and ``body3d_pose_lifter_demo.py`` (docs/MMPOSE_BEHAVIOUR.md, VideoPose3D):

1. :func:`norm_pose_2d`: each person's keypoints are mapped from their detector box onto the lifter dataset's mean
   box (its ``stats_info``: :data:`H36M_BBOX_CENTER`, :data:`H36M_BBOX_SCALE`);
2. :func:`normalize_screen_coordinates`: pixels -> codec units with the frame size :func:`codec_frame_size`
   chooses (mmpose's swapped ``(H, W)``, the real ``(W, H)``, or the H36M frame; docs/MMPOSE_BEHAVIOUR.md, Q2);
3. the network (:mod:`pose3d_rt.lifters.base`);
4. :func:`postprocess_3d`: camera frame -> the demo's display frame (Z up), with the height rebase
   (docs/MMPOSE_BEHAVIOUR.md, Q17).

The conversion of 2D keypoint sets to the lifter's Human3.6M joints is in :mod:`pose3d_rt.keypoint_sets`.
"""
from __future__ import annotations

from typing import Sequence, Tuple, Union

import numpy as np

from ..errors import InputError
from ..keypoint_sets import H36M_NUM_KEYPOINTS
from .base import check_mode

#: Human3.6M ``stats_info`` of ``configs/_base_/datasets/h36m.py``: the mean detector-box centre and max-side in
#: H36M pixels. ``norm_pose_2d`` maps every person's box onto this mean box (docs/MMPOSE_BEHAVIOUR.md,
#: VideoPose3D).
H36M_BBOX_CENTER: Tuple[float, float] = (528.0, 427.0)
H36M_BBOX_SCALE: float = 400.0
#: Size of the (about square) Human3.6M frames in which the stats above live; the corrected codec normalises
#: canonicalised poses with it (docs/MMPOSE_BEHAVIOUR.md, Q2).
H36M_FRAME_SIZE: Tuple[int, int] = (1000, 1000)


def codec_frame_size(frame_wh: Tuple[float, float], *, mode: str = "default", norm_pose_2d: bool = True
                     ) -> Tuple[float, float]:
    """The ``(w, h)`` the VideoPoseLifting codec normalises with, for a frame of size ``frame_wh = (W, H)``.

    - ``mode="mmpose"``: ``(H, W)``. The demo passes ``frame.shape[:2]`` where ``(w, h)`` is expected (Q2).
    - ``mode="default"`` with ``norm_pose_2d``: the H36M frame ``(1000, 1000)``, because the canonicalised
      poses live in H36M pixel space (docs/MMPOSE_BEHAVIOUR.md, Q2 and VideoPose3D).
    - ``mode="default"`` without it: the real ``(W, H)``.
    """
    check_mode(mode)
    w, h = (float(v) for v in frame_wh)
    if not (w > 0 and h > 0):
        raise InputError(f"frame size must be (width, height) > 0, got {frame_wh}")
    if mode == "mmpose":
        return h, w
    if norm_pose_2d:
        return float(H36M_FRAME_SIZE[0]), float(H36M_FRAME_SIZE[1])
    return w, h


def norm_pose_2d(
    keypoints: np.ndarray,
    bboxes: np.ndarray,
    bbox_center: Sequence[float] = H36M_BBOX_CENTER,
    bbox_scale: float = H36M_BBOX_SCALE,
    *,
    min_box_size: float = 0.0,
) -> np.ndarray:
    """Map each person's keypoints from its own box onto the dataset's mean box (mmpose's ``norm_pose_2d``).

    ``keypoints`` ``(..., K, >=2)`` pixels, ``bboxes`` ``(..., 4)`` xyxy (the detector box the pose came from).
    ``kp' = (kp - box_centre) / max(box_w, box_h) * bbox_scale + bbox_center``; returns ``(..., K, 2)`` float32.

    The arithmetic follows mmpose under numpy 1.x promotion: the box sums and sides are float32, the halving and
    everything after it float64, rounded to float32 once at the end (bit-identical to the reference fixtures).
    ``min_box_size > 0`` clamps degenerate boxes (corrected mode); with the default 0 a zero-size box gives
    inf/NaN exactly like mmpose. docs/MMPOSE_BEHAVIOUR.md, VideoPose3D.
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
    """The ``VideoPoseLifting`` codec's input normalisation, exactly, in float32.

    ``(kp - [w/2, h/2]) / (w/2)``: [0, w] maps to [-1, 1] and the aspect ratio is kept (the same scale for x
    and y). ``width``/``height`` are what the codec receives as ``camera_param`` ``w``/``h``; which values to pass
    (mmpose's swapped frame size, the real one, or the H36M frame) is decided by the caller (see
    :func:`codec_frame_size`). docs/MMPOSE_BEHAVIOUR.md, VideoPose3D.
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
    """Camera-frame lifter output ``(..., 17, 3)`` -> the demo's display frame.

    The demo's post-processing (docs/MMPOSE_BEHAVIOUR.md, VideoPose3D):
    1. axes ``(x, y, z) -> (x, z, y)``; 2. negate the new X and Z: ``(X, Y, Z) = (-x, z, -y)`` (Z up);
    3. rebase the height:
       - ``floor is None`` and ``rebase``: ``Z -= min_j Z`` per person and frame (mmpose parity; the lowest joint
         sits at 0 in every frame, which makes jumps invisible, docs/MMPOSE_BEHAVIOUR.md, Q17);
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
    "codec_frame_size",
    "norm_pose_2d",
    "normalize_screen_coordinates",
    "denormalize_screen_coordinates",
    "postprocess_3d",
    "lowest_z",
]
