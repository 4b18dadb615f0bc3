"""Frames held while their results wait for the lifter's delay (``Pose3DPipeline.stream(keep_frames=True)``,
and :class:`FrameStore` for ``pose3d-rt run``, which holds them beside the pipeline so that the JPEG encoding is done
on the reader thread and the decoding on the writer thread).

A frame is held raw, or JPEG-encoded (quality 95) when the whole delay queue of raw frames would exceed
:data:`FRAME_QUEUE_BYTES`, so memory stays bounded for long delays and large frames.
"""
from __future__ import annotations

import threading
from typing import Dict, Optional

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


class FrameStore:
    """Frames by frame index, from decoding until their result is drawn; thread-safe (one thread puts, another
    pops). :meth:`put` holds a frame as :class:`HeldFrame` does (JPEG-encoded when ``encode``) in the putting
    thread; :meth:`pop` decodes it in the popping thread. ``peak``: the most frames held at once."""

    def __init__(self, encode: bool) -> None:
        self.encode = bool(encode)
        self._held: Dict[int, HeldFrame] = {}
        self._lock = threading.Lock()
        self.peak = 0

    def put(self, index: int, frame: np.ndarray) -> None:
        held = HeldFrame(frame, self.encode)
        with self._lock:
            self._held[int(index)] = held
            self.peak = max(self.peak, len(self._held))

    def pop(self, index: int) -> Optional[np.ndarray]:
        """The frame ``index`` (decoded), no longer held; None if it is not held."""
        with self._lock:
            held = self._held.pop(int(index), None)
        return None if held is None else held.get()

    def clear(self) -> None:
        with self._lock:
            self._held.clear()

    def __len__(self) -> int:
        return len(self._held)


__all__ = ["FRAME_QUEUE_BYTES", "FrameStore", "HeldFrame", "hold", "release", "must_encode"]
