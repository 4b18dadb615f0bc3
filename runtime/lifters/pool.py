"""The ring-buffer pool of the default-mode :class:`~pose3d_rt.lifters.Lifter`: one slot per live track holding
its last ``window`` frames (model input, 2D pixels, scores, which frames were real observations), so memory is
bounded by the number of concurrent tracks, never by the video length."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .base import K


@dataclass
class Pool:
    """Ring-buffer pool: slot ``s`` holds one track's last ``W`` frames at positions ``frame % W``."""

    window: int
    channels: int
    capacity: int = 0
    norm: np.ndarray = field(init=False)  # (S, W, 17, C) model input
    kp2d: np.ndarray = field(init=False)  # (S, W, 17, 2) pixels
    sc2d: np.ndarray = field(init=False)  # (S, W, 17)
    observed: np.ndarray = field(init=False)  # (S, W) bool: real observation at that frame
    track: np.ndarray = field(init=False)  # (S,) track id, -1 = free
    last_real: np.ndarray = field(init=False)  # (S,) frame of the last real observation
    missing: np.ndarray = field(init=False)  # (S,) consecutive missing frames
    ended: np.ndarray = field(init=False)  # (S,) bool
    floor: np.ndarray = field(init=False)  # (S,) running lowest Z (rebase="track")

    def __post_init__(self) -> None:
        self._alloc(max(1, self.capacity))

    def _alloc(self, cap: int) -> None:
        w, c = self.window, self.channels
        old = None if not hasattr(self, "norm") else (self.norm, self.kp2d, self.sc2d, self.observed, self.track,
                                                       self.last_real, self.missing, self.ended, self.floor)
        self.norm = np.zeros((cap, w, K, c), np.float32)
        self.kp2d = np.zeros((cap, w, K, 2), np.float32)
        self.sc2d = np.zeros((cap, w, K), np.float32)
        self.observed = np.zeros((cap, w), bool)
        self.track = np.full(cap, -1, np.int64)
        self.last_real = np.zeros(cap, np.int64)
        self.missing = np.zeros(cap, np.int64)
        self.ended = np.zeros(cap, bool)
        self.floor = np.full(cap, np.inf, np.float32)
        if old is not None:
            n = old[0].shape[0]
            for dst, src in zip((self.norm, self.kp2d, self.sc2d, self.observed, self.track, self.last_real,
                                 self.missing, self.ended, self.floor), old):
                dst[:n] = src
        self.capacity = cap

    def take(self, count: int) -> np.ndarray:
        free = np.flatnonzero(self.track < 0)
        if free.size < count:
            self._alloc(max(2 * self.capacity, self.capacity + count - free.size))
            free = np.flatnonzero(self.track < 0)
        return free[:count]

    def release(self, slots: np.ndarray) -> None:
        self.track[slots] = -1
        self.observed[slots] = False
        self.ended[slots] = False
        self.missing[slots] = 0
        self.floor[slots] = np.inf


__all__ = ["Pool"]
