"""Axis-aligned box utilities (xyxy, float32): IoU, clipping, validity, class-aware greedy NMS.

Conventions (those of mmcv/mmdet, ``offset = 0``):

* a box is ``(x1, y1, x2, y2)``; its area is ``(x2 - x1) * (y2 - y1)`` (no ``+1``);
* IoU of two boxes is ``inter / (area_a + area_b - inter)`` computed in float32, exactly in that operation
  order (as mmcv's CPU ``nms`` kernel does), so threshold decisions match mmcv bit for bit;
* NMS suppresses a box whose IoU with an already kept box of the **same label** is ``> iou_thr`` (strict).

Tie rule (documented because the reference sorts with a non-stable ``torch.sort``): candidates are
visited in order of **decreasing score, and among equal scores increasing input index** (a stable
descending sort). When no two scores are equal, this is exactly mmcv's order; among exact ties the
reference order is implementation-defined (torch's CPU sort is not stable), ours is deterministic.

A box is *degenerate* when any coordinate or its score is NaN/inf, when its width or height is ``<= 0``
(or ``<= min_size``), or, if an image shape is given, when it has no positive-area overlap with the image.
Degenerate boxes never take part in NMS: they are dropped and their number is logged (one DEBUG line per
call).

The **+1-pixel variant** (``offset=1``, mmpose's ``evaluation.functional.nms`` that the Inferencer applies to the
detector's boxes, docs/spec/inferencer.md §3): areas are ``(x2 - x1 + 1) * (y2 - y1 + 1)`` and overlaps
``max(0, xx2 - xx1 + 1) * max(0, yy2 - yy1 + 1)``, in float32 in mmpose's operation order; a box is kept iff its
overlap with every kept box is ``<= thr`` (the same strict suppression rule). A box is degenerate there only when
non-finite or when ``x2 - x1 + 1 <= 0`` (``y`` likewise). ``ties="last"`` visits equal scores from the highest input
index down, as ``scores.argsort()[::-1]`` (numpy's sort is stable for the few boxes a frame has).
"""
from __future__ import annotations

import logging
from typing import Iterator, Sequence, Tuple

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "as_boxes",
    "box_area",
    "box_iou",
    "clip_boxes",
    "valid_box_mask",
    "batched_nms",
    "nms",
    "whole_image_box",
    "boxes_from_keypoints",
]


def as_boxes(boxes: np.ndarray, name: str = "boxes") -> np.ndarray:
    """``boxes`` as a float32 ``(n, 4)`` array (a copy only when needed); ValueError for another shape."""
    arr = np.asarray(boxes, dtype=np.float32)
    if arr.ndim == 1 and arr.size == 0:
        arr = arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name}: expected an (n, 4) xyxy array, got shape {arr.shape}")
    return arr


def box_area(boxes: np.ndarray) -> np.ndarray:
    """``(x2 - x1) * (y2 - y1)`` per box, float32 (negative for inverted boxes; callers filter those)."""
    b = as_boxes(boxes)
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU ``(len(a), len(b))``, float32, same arithmetic as :func:`batched_nms`.

    Pairs whose union is 0 (two empty boxes) give NaN.
    """
    a = as_boxes(a, "a")
    b = as_boxes(b, "b")
    return _pairwise_iou(a, box_area(a), b, box_area(b))


def clip_boxes(boxes: np.ndarray, shape_hw: Tuple[float, float]) -> np.ndarray:
    """Clamp x to ``[0, W]`` and y to ``[0, H]`` (mmdet's ``clip_border`` rule, no ``-1``); returns a copy."""
    b = as_boxes(boxes).copy()
    h, w = float(shape_hw[0]), float(shape_hw[1])
    np.clip(b[:, 0::2], 0.0, w, out=b[:, 0::2])
    np.clip(b[:, 1::2], 0.0, h, out=b[:, 1::2])
    return b


def valid_box_mask(
    boxes: np.ndarray,
    scores: np.ndarray | None = None,
    min_size: float = 0.0,
    image_shape: Tuple[float, float] | None = None,
) -> np.ndarray:
    """True for boxes that are finite, wider and taller than ``min_size`` (strict, as mmdet's
    ``min_bbox_size``), with a finite score (if given) and, if ``image_shape = (H, W)`` is given,
    a positive-area overlap with ``[0, W] x [0, H]``."""
    b = as_boxes(boxes)
    ok = np.isfinite(b).all(axis=1)
    with np.errstate(invalid="ignore"):
        ok &= (b[:, 2] - b[:, 0] > min_size) & (b[:, 3] - b[:, 1] > min_size)
        if image_shape is not None:
            h, w = float(image_shape[0]), float(image_shape[1])
            ok &= (b[:, 0] < w) & (b[:, 2] > 0) & (b[:, 1] < h) & (b[:, 3] > 0)
    if scores is not None:
        s = np.asarray(scores)
        if s.shape != (len(b),):
            raise ValueError(f"scores: expected shape ({len(b)},), got {s.shape}")
        ok &= np.isfinite(s)
    return ok


def _pairwise_iou(a: np.ndarray, area_a: np.ndarray, b: np.ndarray, area_b: np.ndarray) -> np.ndarray:
    """IoU matrix, float32, mmcv's operation order (offset 0): ``inter / (area_a + area_b - inter)``."""
    xx1 = np.maximum(a[:, None, 0], b[None, :, 0])
    yy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    xx2 = np.minimum(a[:, None, 2], b[None, :, 2])
    yy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.maximum(np.float32(0), xx2 - xx1) * np.maximum(np.float32(0), yy2 - yy1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / (area_a[:, None] + area_b[None, :] - inter)


_CHUNK_PAIRS = 1 << 21  # candidate pairs evaluated per vectorised chunk (bounds temporary memory)


def _overlap_pairs(b: np.ndarray, iou_thr: np.float32, offset: int = 0) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """All pairs ``(i, j)``, ``i < j``, that may have IoU > ``iou_thr``, in chunks (as two index arrays).

    With ``iou_thr >= 0`` only pairs whose x-intervals overlap can qualify; they are enumerated with a sweep
    over the boxes sorted by x1 (for each box, the later boxes whose x1 lies before its x2 + ``offset``), so
    sparse scenes cost O(n log n + pairs) instead of O(n^2). With a negative threshold every pair qualifies.
    """
    n = b.shape[0]
    if iou_thr >= 0:
        xs = np.argsort(b[:, 0], kind="stable")
        x1s = b[xs, 0]
        end = np.searchsorted(x1s, b[xs, 2] + np.float32(offset), side="left")
    else:
        xs = np.arange(n)
        end = np.full(n, n)
    start = np.arange(1, n + 1)
    cnt = np.maximum(end - start, 0)
    csum = np.cumsum(cnt)
    p0 = 0
    while p0 < n:
        base = csum[p0 - 1] if p0 else 0
        p1 = int(np.searchsorted(csum, base + _CHUNK_PAIRS, side="right"))
        p1 = min(max(p1, p0 + 1), n)
        c = cnt[p0:p1]
        total = int(c.sum())
        if total:
            pi = np.repeat(np.arange(p0, p1), c)
            offs = np.arange(total) - np.repeat(np.cumsum(c) - c, c)
            pj = np.repeat(start[p0:p1], c) + offs
            yield xs[pi], xs[pj]
        p0 = p1


def _visiting_order(scores: np.ndarray, ties: str) -> np.ndarray:
    """Decreasing score; equal scores by increasing (``"first"``) or decreasing (``"last"``) input index."""
    if ties == "first":
        return np.argsort(-scores, kind="stable")
    return np.argsort(scores, kind="stable")[::-1]


def _greedy_nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_thr: np.float32, offset: int = 0,
                ties: str = "first") -> np.ndarray:
    """Greedy class-aware NMS on valid float32 boxes; returns the kept indices in visiting order.

    The "suppresses" relation (IoU > thr, same label, later in the visiting order) is computed for all
    candidate pairs in vectorised chunks and stored sparsely; the sequential greedy pass then only visits
    boxes that overlap some later box, so isolated boxes cost nothing. ``offset`` 1: the +1-pixel convention.
    """
    order = _visiting_order(scores, ties)
    b = boxes[order]
    lab = labels[order]
    one = np.float32(offset)  # adding 0.0 is exact: offset 0 gives mmcv's areas bit for bit
    areas = (b[:, 2] - b[:, 0] + one) * (b[:, 3] - b[:, 1] + one)
    rows_parts, cols_parts = [], []
    for i, j in _overlap_pairs(b, iou_thr, offset):
        same = lab[i] == lab[j]
        i, j = i[same], j[same]
        xx1 = np.maximum(b[i, 0], b[j, 0])
        yy1 = np.maximum(b[i, 1], b[j, 1])
        xx2 = np.minimum(b[i, 2], b[j, 2])
        yy2 = np.minimum(b[i, 3], b[j, 3])
        inter = np.maximum(np.float32(0), xx2 - xx1 + one) * np.maximum(np.float32(0), yy2 - yy1 + one)
        iou = inter / (areas[i] + areas[j] - inter)
        hit = iou > iou_thr
        i, j = i[hit], j[hit]
        rows_parts.append(np.minimum(i, j))
        cols_parts.append(np.maximum(i, j))
    suppressed = np.zeros(b.shape[0], dtype=bool)
    if rows_parts:
        rows = np.concatenate(rows_parts)
        cols = np.concatenate(cols_parts)
        srt = np.argsort(rows, kind="stable")
        rows, cols = rows[srt], cols[srt]
        heads, starts = np.unique(rows, return_index=True)
        ends = np.append(starts[1:], rows.size)
        for h, s0, s1 in zip(heads.tolist(), starts.tolist(), ends.tolist()):
            if not suppressed[h]:
                suppressed[cols[s0:s1]] = True
    return order[~suppressed]


def batched_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray | None = None,
    iou_thr: float = 0.5,
    max_num: int = -1,
    image_shape: Tuple[float, float] | None = None,
    *,
    offset: int = 0,
    ties: str = "first",
) -> np.ndarray:
    """Class-aware greedy NMS (mmcv ``batched_nms`` semantics, computed per class instead of with mmcv's
    coordinate-offset trick, which is the same except for float rounding of the shifted coordinates).

    Args:
        boxes: ``(n, 4)`` xyxy.
        scores: ``(n,)``.
        labels: ``(n,)`` integer class ids; ``None`` = one class.
        iou_thr: a box is suppressed when its IoU with a kept box of the same label is ``> iou_thr``.
        max_num: keep at most this many (``<= 0``: all).
        image_shape: ``(H, W)``; when given, boxes with no overlap with the image are dropped as degenerate.
        offset: 0 (mmcv, default) or 1 (the +1-pixel areas of mmpose's ``nms``, see the module doc).
        ties: among equal scores, visit the lower (``"first"``, default) or higher (``"last"``) index first.

    Returns:
        int64 indices into the inputs of the kept boxes, by decreasing score (ties: as ``ties`` says).
        Degenerate boxes (see module doc) are never kept; their number is logged at DEBUG level.
    """
    b = as_boxes(boxes)
    s = np.asarray(scores, dtype=np.float32).reshape(-1)
    if s.shape[0] != b.shape[0]:
        raise ValueError(f"scores: expected {b.shape[0]} values, got {s.shape[0]}")
    if labels is None:
        lab = np.zeros(b.shape[0], dtype=np.int64)
    else:
        lab = np.asarray(labels).reshape(-1).astype(np.int64, copy=False)
        if lab.shape[0] != b.shape[0]:
            raise ValueError(f"labels: expected {b.shape[0]} values, got {lab.shape[0]}")
    if offset not in (0, 1):
        raise ValueError(f"offset must be 0 or 1, got {offset!r}")
    if ties not in ("first", "last"):
        raise ValueError(f"ties must be 'first' or 'last', got {ties!r}")
    valid = valid_box_mask(b, s, min_size=-float(offset), image_shape=image_shape)
    n_bad = int(b.shape[0] - valid.sum())
    if n_bad:
        logger.debug("nms: dropped %d degenerate boxes (non-finite, empty or outside the image)", n_bad)
    idx = np.flatnonzero(valid)
    if idx.size == 0:
        return np.zeros(0, dtype=np.int64)
    keep = idx[_greedy_nms(b[idx], s[idx], lab[idx], np.float32(iou_thr), offset, ties)]
    if max_num > 0:
        keep = keep[:max_num]
    return keep


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thr: float = 0.5, max_num: int = -1, *, offset: int = 0,
        ties: str = "first") -> np.ndarray:
    """Single-class greedy NMS; see :func:`batched_nms`. ``nms(b, s, 0.3, offset=1, ties="last")`` is mmpose's
    ``evaluation.functional.nms(dets, 0.3)`` (the Inferencer's box NMS)."""
    return batched_nms(boxes, scores, None, iou_thr=iou_thr, max_num=max_num, offset=offset, ties=ties)


def whole_image_box(width: int, height: int) -> np.ndarray:
    """The box of the whole image, ``[[0, 0, width, height]]`` (1, 4) float32: the person mmpose's
    ``inference_topdown`` estimates when it is given no box (docs/MMPOSE_BEHAVIOUR.md, Q7)."""
    return np.array([[0, 0, width, height]], np.float32)


def boxes_from_keypoints(keypoints: np.ndarray, scores: np.ndarray, kpt_thr: float, padding: float,
                         size_wh: Sequence[float]) -> Tuple[np.ndarray, np.ndarray]:
    """Boxes of persons from their 2D keypoints: the extent of the visible keypoints (score ``>= kpt_thr``),
    scaled by ``padding`` about its centre and clipped to the image ``size_wh`` (width, height).

    ``keypoints`` (n, K, 2), ``scores`` (n, K). Returns the (m, 4) float32 boxes of the persons with at least two
    visible keypoints and a box of positive area, and the (n,) bool mask of those persons.
    """
    kp = np.asarray(keypoints, np.float32)
    vis = np.asarray(scores) >= kpt_thr
    big = np.float32(1e9)
    x0 = np.where(vis, kp[..., 0], big).min(1)
    y0 = np.where(vis, kp[..., 1], big).min(1)
    x1 = np.where(vis, kp[..., 0], -big).max(1)
    y1 = np.where(vis, kp[..., 1], -big).max(1)
    ok = vis.sum(1) >= 2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    hw, hh = (x1 - x0) / 2 * padding, (y1 - y0) / 2 * padding
    w, h = size_wh
    boxes = np.stack([np.clip(cx - hw, 0, w), np.clip(cy - hh, 0, h), np.clip(cx + hw, 0, w), np.clip(cy + hh, 0, h)],
                     1)
    ok &= (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[ok].astype(np.float32), ok
