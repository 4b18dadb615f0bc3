"""The one frame check: every frame that enters the pipeline or a stage goes through :func:`check_frame`.

A frame is a BGR ``uint8`` numpy array of shape ``(H, W, 3)``, ``H, W >= 1``, C-contiguous. What else is
accepted, and how it is converted:

- ``(H, W)`` and ``(H, W, 1)`` gray -> BGR (the gray level copied to the three channels, as
  ``cv2.cvtColor(..., COLOR_GRAY2BGR)``);
- ``(H, W, 4)`` BGRA -> BGR (alpha dropped, as ``cv2.imread(..., IMREAD_COLOR)`` does for a PNG with alpha);
- a non-contiguous view (a crop, a flip, a channel reversal) -> a C-contiguous copy (OpenCV needs C order).

Anything else -- another dtype (a 16-bit or float image says how to convert it), another channel count, an
empty or too large image, not an array -- raises :class:`~pose3d_rt.errors.InputError` with one line naming
the frame. Degenerate but valid sizes (1x1, one row, one column, 2000x3) pass: the stages handle them.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InputError

# OpenCV's warp kernels (the crops of the 2D stage) need each side < SHRT_MAX (cv2.remap asserts it); a frame
# that large is not a camera image either.
MAX_SIDE = 32766


def _dtype_hint(dtype: np.dtype) -> str:
    if dtype == np.uint16:
        return "a 16-bit image; convert it to 8 bits first, e.g. (frame >> 8).astype(np.uint8)"
    if dtype.kind == "f":
        return ("a float image; scale it to 0..255 and convert it first, "
                "e.g. np.clip(frame * 255, 0, 255).astype(np.uint8) for values in 0..1")
    if dtype == np.bool_:
        return "a boolean mask; convert it first, e.g. frame.astype(np.uint8) * 255"
    return "convert it to 8-bit BGR first, e.g. frame.astype(np.uint8)"


def check_frame(frame: Any, name: str = "frame") -> np.ndarray:
    """``frame`` as a C-contiguous BGR ``uint8`` ``(H, W, 3)`` array (converted as the module doc says), or raise
    :class:`~pose3d_rt.errors.InputError` with one line starting with ``name``.

    A frame that already is one is returned as is (no copy)."""
    if not isinstance(frame, np.ndarray):
        raise InputError(f"{name}: expected a BGR uint8 numpy array of shape (H, W, 3), got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise InputError(f"{name}: dtype {frame.dtype} (shape {frame.shape}) is not uint8: {_dtype_hint(frame.dtype)}")
    if frame.ndim == 2:
        frame = frame[:, :, None]
    if frame.ndim != 3 or frame.shape[2] not in (1, 3, 4):
        raise InputError(f"{name}: expected shape (H, W, 3) BGR (or (H, W) / (H, W, 1) gray, (H, W, 4) BGRA), "
                         f"got {frame.shape}")
    h, w = frame.shape[:2]
    if h < 1 or w < 1:
        raise InputError(f"{name}: empty image (shape {frame.shape})")
    if max(h, w) > MAX_SIDE:
        raise InputError(f"{name}: {w}x{h} pixels is too large (at most {MAX_SIDE} per side); resize it first")
    if frame.shape[2] == 1:
        frame = np.repeat(frame, 3, axis=2)
    elif frame.shape[2] == 4:
        frame = frame[:, :, :3]
    return np.ascontiguousarray(frame)


__all__ = ["check_frame", "MAX_SIDE"]
