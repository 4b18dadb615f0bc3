"""Tracking: give each person a stable id across frames.

Two trackers behind one interface (:func:`make_tracker`), chosen by the pipeline's mode:

- :class:`GreedyTracker` (``mode="mmpose"``) is mmpose's ``inference_tracking.py`` as the 3D demo uses it
  (docs/MMPOSE_BEHAVIOUR.md, Q16): every current instance, in detector order, takes the best remaining instance of
  the *previous frame only* (IoU of the boxes, or OKS of the COCO keypoints with box areas), first maximum wins,
  a match needs similarity > threshold (strict); unmatched instances get ``next_id`` if at least 3 keypoints have
  a non-zero y (the demo's rule, Q8), else -1; instances with id -1 stay candidates for the next frame.
- :class:`HungarianTracker` (``mode="default"``) fixes Q16: tracks live for ``max_age`` frames without a match
  (a person missed for a few frames keeps the id), all current instances are matched to all live tracks at once
  by optimal assignment (``scipy.optimize.linear_sum_assignment``) on the IoU or OKS similarity matrix, against
  each track's last observation; ids are 0, 1, 2, ... and never reused; tracks that age out are reported once in
  ``TrackResult.ended_track_ids`` so the lifter can finalise them.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
from scipy.optimize import linear_sum_assignment

from .errors import InputError
from .keypoint_sets import COCO17

log = logging.getLogger(__name__)

METRICS = ("iou", "oks")
_EPS = np.spacing(1)  # mmpose's eps in oks_iou


@dataclass
class TrackResult:
    """``track_ids`` (n,) int64 for the frame's instances, in input order; ``ended_track_ids`` tracks that ended."""

    track_ids: np.ndarray
    ended_track_ids: np.ndarray

    def __post_init__(self) -> None:
        self.track_ids = np.asarray(self.track_ids, np.int64).reshape(-1)
        self.ended_track_ids = np.asarray(self.ended_track_ids, np.int64).reshape(-1)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (n, 4) with every box of ``b`` (m, 4), xyxy, no +1; union 0 -> 1e-5 (mmpose)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.maximum(iw, 0) * np.maximum(ih, 0)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    union = np.where(union == 0, 1e-5, union)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / union
    return np.nan_to_num(iou, nan=0.0, posinf=0.0, neginf=0.0)


def oks_matrix(kp_a: np.ndarray, kp_b: np.ndarray, area_a: np.ndarray, area_b: np.ndarray, sigmas: np.ndarray,
               vis_a: Optional[np.ndarray] = None, vis_b: Optional[np.ndarray] = None) -> np.ndarray:
    """OKS of every pose of ``kp_a`` (n, K, 2) with every pose of ``kp_b`` (m, K, 2), mmpose's ``oks_iou``:
    ``mean_k exp(-d^2 / (2 sigma)^2 / ((area_a + area_b) / 2 + eps) / 2)``. With visibility masks (n, K), (m, K)
    the mean is over keypoints visible in both (0 when none is)."""
    kp_a = np.asarray(kp_a, np.float32)
    kp_b = np.asarray(kp_b, np.float32)
    var = (np.asarray(sigmas, np.float64) * 2) ** 2
    d2 = ((kp_a[:, None, :, 0] - kp_b[None, :, :, 0]) ** 2 + (kp_a[:, None, :, 1] - kp_b[None, :, :, 1]) ** 2)
    s = (np.asarray(area_a, np.float64)[:, None] + np.asarray(area_b, np.float64)[None, :]) / 2 + _EPS
    e = d2 / var / s[..., None] / 2
    g = np.exp(-e)
    if vis_a is None and vis_b is None:
        return g.mean(-1)
    va = np.ones(kp_a.shape[:2], bool) if vis_a is None else np.asarray(vis_a, bool)
    vb = np.ones(kp_b.shape[:2], bool) if vis_b is None else np.asarray(vis_b, bool)
    both = va[:, None, :] & vb[None, :, :]
    cnt = both.sum(-1)
    return np.where(cnt > 0, (g * both).sum(-1) / np.maximum(cnt, 1), 0.0)


def _areas(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _check(boxes, keypoints, scores, metric: str):
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    n = b.shape[0]
    kp = None if keypoints is None else np.asarray(keypoints, np.float32)
    sc = None if scores is None else np.asarray(scores, np.float32)
    if kp is not None and (kp.ndim != 3 or kp.shape[0] != n or kp.shape[2] < 2):
        raise InputError(f"tracker: keypoints must be ({n}, K, 2), got {kp.shape}")
    if sc is not None and kp is not None and sc.shape != kp.shape[:2]:
        raise InputError(f"tracker: scores must be {kp.shape[:2]}, got {sc.shape}")
    if metric == "oks" and kp is None:
        raise InputError("tracker: OKS tracking needs keypoints")
    return b, (None if kp is None else kp[..., :2]), sc


class GreedyTracker:
    """mmpose's one-frame greedy tracker (parity mode). See the module docstring."""

    def __init__(self, metric: str = "iou", threshold: float = 0.3, sigmas: Optional[np.ndarray] = None) -> None:
        if metric not in METRICS:
            raise InputError(f"tracking metric must be one of {METRICS}, got {metric!r}")
        self.metric = metric
        self.threshold = float(threshold)
        self.sigmas = np.asarray(COCO17.sigmas if sigmas is None else sigmas, np.float64)
        self.reset()

    def reset(self) -> None:
        self.next_id = 0
        self._prev: Optional[tuple] = None  # boxes, keypoints, scores, ids of the previous frame

    def update(self, boxes, keypoints=None, scores=None, frame_index: Optional[int] = None) -> TrackResult:
        b, kp, sc = _check(boxes, keypoints, scores, self.metric)
        n = b.shape[0]
        ids = np.full(n, -1, np.int64)
        if self._prev is not None and n and self._prev[0].shape[0]:
            pb, pkp, _, pids = self._prev
            if self.metric == "iou":
                sim = iou_matrix(b, pb)
            else:
                if kp.shape[1] != self.sigmas.shape[0]:
                    raise InputError(f"OKS tracking needs {self.sigmas.shape[0]} keypoints (COCO), got {kp.shape[1]}")
                sim = oks_matrix(kp, pkp, _areas(b), _areas(pb), self.sigmas)
            remaining = list(range(pb.shape[0]))
            for i in range(n):  # detector order; each previous instance can be taken once
                if not remaining:
                    break
                row = sim[i, remaining]
                if self.metric == "iou":
                    # max_iou starts at -1 and is updated on strictly greater values: first maximum
                    j = int(np.argmax(row))
                else:
                    j = int(np.argmax(row))
                if row[j] > self.threshold:
                    ids[i] = pids[remaining[j]]
                    del remaining[j]
        for i in np.flatnonzero(ids == -1):
            ok = kp is None or np.count_nonzero(kp[i, :, 1]) >= 3  # the demo's "at least 3 keypoints" rule (Q8)
            if ok:
                ids[i] = self.next_id
                self.next_id += 1
        self._prev = (b, kp, sc, ids.copy())
        return TrackResult(ids, np.zeros(0, np.int64))


class HungarianTracker:
    """Tracks with a time-to-live and optimal assignment (default mode). See the module docstring.

    ``kpt_thr``: keypoints with a score below it are ignored by OKS (both sides must be visible).
    """

    def __init__(self, metric: str = "iou", threshold: float = 0.3, max_age: int = 30, kpt_thr: float = 0.3,
                 sigmas: Optional[np.ndarray] = None) -> None:
        if metric not in METRICS:
            raise InputError(f"tracking metric must be one of {METRICS}, got {metric!r}")
        if max_age < 0:
            raise InputError(f"max_age must be >= 0, got {max_age}")
        self.metric = metric
        self.threshold = float(threshold)
        self.max_age = int(max_age)
        self.kpt_thr = float(kpt_thr)
        self.sigmas = np.asarray(COCO17.sigmas if sigmas is None else sigmas, np.float64)
        self.reset()

    def reset(self) -> None:
        self.next_id = 0
        self._ids = np.zeros(0, np.int64)
        self._boxes = np.zeros((0, 4), np.float32)
        self._kp: Optional[np.ndarray] = None
        self._vis: Optional[np.ndarray] = None
        self._age = np.zeros(0, np.int64)

    @property
    def live_track_ids(self) -> np.ndarray:
        return self._ids.copy()

    def _similarity(self, b, kp, sc) -> np.ndarray:
        if self.metric == "iou":
            return iou_matrix(b, self._boxes)
        if kp.shape[1] != self.sigmas.shape[0]:
            raise InputError(f"OKS tracking needs {self.sigmas.shape[0]} keypoints (COCO), got {kp.shape[1]}")
        vis = None if sc is None else sc >= self.kpt_thr
        return oks_matrix(kp, self._kp, _areas(b), _areas(self._boxes), self.sigmas, vis, self._vis)

    def update(self, boxes, keypoints=None, scores=None, frame_index: Optional[int] = None) -> TrackResult:
        b, kp, sc = _check(boxes, keypoints, scores, self.metric)
        n, m = b.shape[0], self._ids.shape[0]
        ids = np.full(n, -1, np.int64)
        matched_tracks = np.zeros(m, bool)
        finite = np.isfinite(b).all(1)
        if kp is not None:
            finite &= np.isfinite(kp).all((1, 2))
        if n and m:
            sim = self._similarity(b, kp, sc)
            sim[~finite] = 0.0
            rows, cols = linear_sum_assignment(-sim)
            ok = sim[rows, cols] > self.threshold
            ids[rows[ok]] = self._ids[cols[ok]]
            matched_tracks[cols[ok]] = True
        new = ids < 0
        ids[new] = self.next_id + np.arange(int(new.sum()))
        self.next_id += int(new.sum())
        # age unmatched tracks, drop the expired ones
        age = self._age + 1
        age[matched_tracks] = 0
        keep = age <= self.max_age
        ended = self._ids[~keep]
        old = keep & ~matched_tracks  # unmatched, still alive: keep their last observation
        upd_ids = np.concatenate([self._ids[old], ids])
        upd_boxes = np.concatenate([self._boxes[old], b])
        upd_age = np.concatenate([age[old], np.zeros(n, np.int64)])
        if kp is not None:
            k = kp.shape[1]
            prev_kp = self._kp[old] if self._kp is not None else np.zeros((0, k, 2), np.float32)
            vis = np.ones(kp.shape[:2], bool) if sc is None else sc >= self.kpt_thr
            prev_vis = self._vis[old] if self._vis is not None else np.zeros((0, k), bool)
            self._kp = np.concatenate([prev_kp, kp])
            self._vis = np.concatenate([prev_vis, vis])
        order = np.argsort(upd_ids, kind="stable")
        self._ids, self._boxes, self._age = upd_ids[order], upd_boxes[order], upd_age[order]
        if self._kp is not None:
            self._kp, self._vis = self._kp[order], self._vis[order]
        if ended.size:
            log.debug("tracker: %d track(s) ended: %s", ended.size, ended.tolist())
        return TrackResult(ids, np.sort(ended))

    def finish(self) -> np.ndarray:
        """End of stream: every live track ends."""
        ended = np.sort(self._ids)
        self.reset()
        return ended


def make_tracker(mode: str = "default", metric: str = "iou", threshold: float = 0.3, max_age: int = 30,
                 kpt_thr: float = 0.3):
    """The tracker of a pipeline mode: ``"mmpose"`` -> :class:`GreedyTracker`, ``"default"`` -> Hungarian."""
    if mode == "mmpose":
        return GreedyTracker(metric, threshold)
    if mode == "default":
        return HungarianTracker(metric, threshold, max_age=max_age, kpt_thr=kpt_thr)
    raise InputError(f"tracker mode must be 'default' or 'mmpose', got {mode!r}")


__all__: List[str] = ["TrackResult", "GreedyTracker", "HungarianTracker", "make_tracker", "iou_matrix",
                      "oks_matrix", "METRICS"]
