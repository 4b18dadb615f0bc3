"""Frames held while their results wait for the lifter's delay (``Pose3DPipeline.stream(keep_frames=True)``).

A frame is held raw, or JPEG-encoded (quality 95) when the whole delay queue of raw frames would exceed
:data:`FRAME_QUEUE_BYTES`, so memory stays bounded for long delays and large frames.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from ..results import FrameResult

FRAME_QUEUE_BYTES = 256 << 20
_KEY = "frame"  # where a held frame waits in FrameResult.extras


def must_encode(width: int, height: int, frames: int) -> bool:
    """True when ``frames`` raw BGR frames of ``width`` x ``height`` would exceed :data:`FRAME_QUEUE_BYTES`."""
    return width * height * 3 * frames > FRAME_QUEUE_BYTES


class HeldFrame:
    """A frame waiting in the delay queue, raw or JPEG-encoded (quality 95)."""

    __slots__ = ("_raw", "_jpg")

    def __init__(self, frame: np.ndarray, encode: bool) -> None:
        self._raw: Optional[np.ndarray] = None
        self._jpg: Optional[np.ndarray] = None
        if encode:
            ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
            if ok:
                self._jpg = buf
                return
        self._raw = frame

    def get(self) -> np.ndarray:
        if self._raw is not None:
            return self._raw
        return cv2.imdecode(self._jpg, cv2.IMREAD_COLOR)


def hold(res: FrameResult, frame: np.ndarray, encode: bool) -> None:
    """Keep ``frame`` with ``res`` until :func:`release` (raw, or JPEG-encoded when ``encode``)."""
    res.extras[_KEY] = HeldFrame(frame, encode)


def release(res: FrameResult) -> FrameResult:
    """Move the frame held with ``res`` (if any) to ``res.frame``, decoded; returns ``res``."""
    holder = res.extras.pop(_KEY, None)
    if holder is not None:
        res.frame = holder.get()
    return res


__all__ = ["FRAME_QUEUE_BYTES", "HeldFrame", "hold", "release", "must_encode"]
