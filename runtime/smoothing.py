"""Temporal smoothing of tracked poses: the One-Euro filter (Casiez, Roussel, Vogel, CHI 2012), per track and joint.

One filter bank holds the state of every track seen in the previous frame as arrays (filtered value and filtered
speed, one row per track), so a frame is filtered in a few vectorized numpy operations over persons and joints:

- ``dt`` is the time between this frame and the previous one, from the frames' timestamps (the video's own
  presentation times, :attr:`pose3d_rt.results.FrameResult.timestamp`), not an assumed frame rate;
- speed ``dx = (x - x_prev_filtered) / dt``, low-passed with cut-off ``d_cutoff`` (Hz);
- cut-off per joint ``f = min_cutoff + beta * |dx_filtered| / size`` (Hz): ``|dx|`` is the joint's speed (norm over
  its 2 or 3 coordinates), ``size`` the person's size (largest extent of its keypoints: pixels in 2D, metres in
  3D), so ``beta`` is per body size per second and one value suits 2D and 3D alike;
- ``x_filtered = a * x + (1 - a) * x_prev_filtered`` with ``a = 1 / (1 + 1 / (2 pi f dt))``.

A track that is missing from a frame (or not lifted, for 3D) loses its state: when it comes back it starts a fresh
filter (its first value passes unchanged). State is therefore bounded by the persons of one frame. A timestamp
that does not increase restarts every track.

>>> smoother = PoseSmoother(min_cutoff=1.0, beta=0.5)
>>> for res in pipe.stream("video.mp4"):     # what Pose3DPipeline(smooth=True) does
...     res = smoother(res)
"""
from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .errors import InputError
from .results import FrameResult

log = logging.getLogger(__name__)

DEFAULT_MIN_CUTOFF = 1.0  # Hz: the cut-off when the joint is still (lower = smoother, more lag when slow)
DEFAULT_BETA = 1.0  # per (body size / s): how fast the cut-off rises with speed (higher = less lag when fast)
DEFAULT_D_CUTOFF = 1.0  # Hz: the cut-off of the speed estimate (Casiez et al.'s default)


@dataclass(frozen=True)
class SmoothingParams:
    """The One-Euro parameters (see the module doc)."""

    min_cutoff: float = DEFAULT_MIN_CUTOFF
    beta: float = DEFAULT_BETA
    d_cutoff: float = DEFAULT_D_CUTOFF

    def validate(self) -> None:
        for name in ("min_cutoff", "d_cutoff"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"smooth_{name} must be > 0 (Hz), got {value}")
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise InputError(f"smooth_beta must be >= 0, got {self.beta}")


def _alpha(cutoff, dt: float):
    """The exponential smoothing factor of a first-order low-pass with cut-off ``cutoff`` Hz sampled every ``dt`` s."""
    return 1.0 / (1.0 + 1.0 / (2.0 * np.pi * cutoff * dt))


class OneEuroFilter:
    """One-Euro filters for every (track, joint, coordinate) of a stream of poses.

    ``filter(track_ids, x, t)``: ``x`` (n, J, D) of the n persons of one frame, ``track_ids`` (n,) their ids, ``t``
    the frame's time in seconds. A person with a negative or repeated id, or with a non-finite value, passes
    unchanged and keeps no state.
    """

    def __init__(self, params: SmoothingParams = SmoothingParams()) -> None:
        params.validate()
        self.params = params
        self.reset()

    def reset(self) -> None:
        self._ids = np.zeros(0, np.int64)  # ascending
        self._x: Optional[np.ndarray] = None  # (m, J, D) filtered values of the tracks in _ids
        self._dx: Optional[np.ndarray] = None  # (m, J, D) filtered speeds
        self._t: Optional[float] = None

    @property
    def num_tracks(self) -> int:
        """Tracks with a filter state (those filtered in the last frame)."""
        return int(self._ids.size)

    def _previous(self, ids: np.ndarray, dt: float) -> np.ndarray:
        """Row in the state of each of ``ids`` (-1: no state, or no usable ``dt``)."""
        rows = np.full(ids.shape, -1, np.int64)
        if self._x is None or self._ids.size == 0 or not (math.isfinite(dt) and dt > 0):
            return rows
        pos = np.minimum(np.searchsorted(self._ids, ids), self._ids.size - 1)
        hit = self._ids[pos] == ids
        rows[hit] = pos[hit]
        return rows

    def filter(self, track_ids: np.ndarray, x: np.ndarray, t: float) -> np.ndarray:
        ids = np.asarray(track_ids, np.int64).reshape(-1)
        x = np.asarray(x, np.float64)
        n = ids.size
        if x.ndim != 3 or x.shape[0] != n:
            raise InputError(f"x must be (n, J, D) for {n} track ids, got {x.shape}")
        uniq, counts = np.unique(ids, return_counts=True)
        valid = (ids >= 0) & np.isfinite(x).all(axis=(1, 2)) & ~np.isin(ids, uniq[counts > 1])
        dt = float(t) - self._t if self._t is not None else math.nan
        if self._t is not None and not dt > 0:
            log.debug("smoothing: time went from %s to %s; every track restarts", self._t, t)
        rows = self._previous(ids, dt) if n else np.zeros(0, np.int64)
        rows[~valid] = -1
        out, dx = x.copy(), np.zeros_like(x)
        has = rows >= 0
        if has.any():
            p = self.params
            xp, dp = self._x[rows[has]], self._dx[rows[has]]
            xs = x[has]
            ad = _alpha(p.d_cutoff, dt)
            dx[has] = ad * (xs - xp) / dt + (1.0 - ad) * dp
            size = np.ptp(xs, axis=1).max(axis=-1)  # (m,) largest extent of each person
            speed = np.linalg.norm(dx[has], axis=-1) / np.maximum(size, 1e-9)[:, None]  # (m, J)
            a = _alpha(p.min_cutoff + p.beta * speed, dt)[..., None]
            out[has] = a * xs + (1.0 - a) * xp
        order = np.argsort(ids[valid], kind="stable")
        self._ids = ids[valid][order]
        self._x, self._dx = out[valid][order], dx[valid][order]
        self._t = float(t)
        return out


class PoseSmoother:
    """One-Euro smoothing of a stream of :class:`~pose3d_rt.results.FrameResult` s: the 2D keypoints and the 3D
    joints, each with its own filter bank, per track id. Results must come in frame order; each gets new arrays
    (the input result is not modified).

    The time of a result is its ``timestamp`` (seconds); a result without one uses ``frame_index / fps``.
    """

    def __init__(self, params: SmoothingParams = SmoothingParams(), fps: Optional[float] = None) -> None:
        self.params = params
        self.fps = fps
        self.f2d = OneEuroFilter(params)
        self.f3d = OneEuroFilter(params)

    def reset(self) -> None:
        self.f2d.reset()
        self.f3d.reset()

    def _time(self, res: FrameResult) -> float:
        if res.timestamp is not None:
            return float(res.timestamp)
        if not self.fps:
            raise InputError("smoothing needs frame timestamps (FrameResult.timestamp) or the source's fps")
        return res.frame_index / float(self.fps)

    def __call__(self, res: FrameResult) -> FrameResult:
        t = self._time(res)
        k2 = self.f2d.filter(res.track_ids, res.keypoints_2d, t).astype(np.float32)
        k3 = None
        if res.keypoints_3d is not None:
            k3 = self.f3d.filter(res.track_ids, res.keypoints_3d, t).astype(np.float32)
        return dataclasses.replace(res, keypoints_2d=k2, keypoints_3d=k3)


__all__ = ["OneEuroFilter", "PoseSmoother", "SmoothingParams", "DEFAULT_MIN_CUTOFF", "DEFAULT_BETA",
           "DEFAULT_D_CUTOFF"]
