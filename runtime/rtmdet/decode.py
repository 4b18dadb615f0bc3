"""RTMDet decoding, torch-free: priors, ``ltrb`` distances -> boxes, mmdet's score filter / NMS, the demo filter.

Reproduces mmdet 3.x post-processing (docs/MMPOSE_BEHAVIOUR.md, RTMDet) on the host, for three kinds of engine
outputs:

``raw_levels``
    the head's per-level maps, 3 classification logit maps ``(N, C, Hf, Wf)`` and 3 ``ltrb`` distance maps
    ``(N, 4, Hf, Wf)`` already multiplied by the stride (and exp'ed for ``exp_on_reg`` heads);
``boxes_scores``
    our own exports: decoded, unclipped boxes in network-input pixels ``boxes (N, A, 4)`` and sigmoid
    probabilities ``scores (N, A, C)`` over all priors (levels 8/16/32 concatenated, row-major within a
    level), i.e. everything before mmdet's score filter / NMS;
``dets_labels``
    mmdeploy "end2end" files: ``dets (N, num, 5)`` (x1, y1, x2, y2, score in input pixels, NMS done in the
    graph) and ``labels (N, num)`` int32/int64, with padding rows (score <= 0 or label -1).

The first two go through the same mmdet post-processing (per level: ``score > score_thr`` strict, sort
descending, keep ``nms_pre``; clip to the padded input canvas; rescale by the per-axis letterbox factors;
drop ``w <= min_bbox_size`` or ``h <= min_bbox_size``; class-aware NMS with IoU ``> nms_iou_thr`` suppressed;
sort by score; keep ``max_per_img``). The third only drops padding rows, rescales (no clipping, as
mmdeploy) and applies ``score > score_thr``.

Sort/tie rule: candidates are ordered by decreasing score and, among equal scores, by their flattened
``(prior, class)`` index (a stable sort). mmdet uses torch's non-stable CPU sort, whose order among exact
ties is implementation-defined; without ties both orders are identical.

Degenerate boxes (NaN/inf coordinates or scores, zero or negative width/height, or, with
``drop_outside_image=True``, no overlap with the original image) never crash: they are dropped and their
number is logged once per decode call at DEBUG level. Note that mmdet keeps boxes lying entirely in the
padding below/right of the image (they are only clipped to the padded canvas), so the default
``drop_outside_image=False`` keeps them too, for parity.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import List, Sequence, Tuple, Union

import numpy as np
from scipy.special import expit

from ..boxes import batched_nms, clip_boxes, valid_box_mask
from .preprocess import Letterbox

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_STRIDES", "Detections", "PostprocessConfig", "level_shapes", "make_priors", "distance2bbox",
           "flatten_raw_levels", "decode_boxes_scores", "decode_raw_levels", "decode_dets_labels",
           "filter_detections"]

DEFAULT_STRIDES = (8, 16, 32)


@dataclass
class Detections:
    """Detections of one image, in original-image pixels, sorted by decreasing score.

    ``boxes`` (n, 4) float32 xyxy, ``scores`` (n,) float32, ``labels`` (n,) int64.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32)
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"Detections.boxes: expected shape (n, 4), got {boxes.shape}")
        n = boxes.shape[0]
        scores = np.asarray(self.scores, dtype=np.float32)
        if scores.shape != (n,):
            raise ValueError(f"Detections.scores: expected shape ({n},), got {scores.shape}")
        labels_in = np.asarray(self.labels)
        if labels_in.shape != (n,):
            raise ValueError(f"Detections.labels: expected shape ({n},), got {labels_in.shape}")
        if labels_in.size and not np.issubdtype(labels_in.dtype, np.integer):
            if not np.all(np.isfinite(labels_in)) or np.any(labels_in != np.round(labels_in)):
                raise ValueError(f"Detections.labels: expected integers, got dtype {labels_in.dtype}")
        self.boxes = boxes
        self.scores = scores
        self.labels = labels_in.astype(np.int64, copy=False)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def select(self, index: Union[np.ndarray, slice]) -> Detections:
        """A subset (boolean mask, integer indices or slice), order as given."""
        return Detections(self.boxes[index], self.scores[index], self.labels[index])


@dataclass(frozen=True)
class PostprocessConfig:
    """mmdet ``test_cfg`` (person defaults) plus host-side options."""

    score_thr: float = 0.05
    nms_iou_thr: float = 0.6
    nms_pre: int = 1000
    max_per_img: int = 100
    min_bbox_size: float = 0.0
    strides: Tuple[int, ...] = DEFAULT_STRIDES
    #: clip boxes to the padded input canvas before rescaling (mmdet ``clip_border`` with Pad's img_shape)
    clip_to_input: bool = True
    #: also drop boxes that do not overlap the original image (mmdet keeps them)
    drop_outside_image: bool = False


def level_shapes(input_hw: Tuple[int, int], strides: Sequence[int] = DEFAULT_STRIDES) -> List[Tuple[int, int]]:
    """Feature-map sizes ``(ceil(H / s), ceil(W / s))`` (stride-2, pad-1, 3x3 convs round up)."""
    return [(int(math.ceil(input_hw[0] / s)), int(math.ceil(input_hw[1] / s))) for s in strides]


def make_priors(shapes: Sequence[Tuple[int, int]], strides: Sequence[int] = DEFAULT_STRIDES) -> np.ndarray:
    """Prior points ``(x, y) = (j * s, i * s)`` (offset 0), row-major per level, levels concatenated; (A, 2) float32."""
    out = []
    for (hf, wf), s in zip(shapes, strides):
        ys, xs = np.meshgrid(np.arange(hf, dtype=np.float32) * s, np.arange(wf, dtype=np.float32) * s, indexing="ij")
        out.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
    return np.concatenate(out, axis=0) if out else np.zeros((0, 2), np.float32)


def distance2bbox(priors: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """``(px - l, py - t, px + r, py + b)`` for ``dist = (..., 4)`` ltrb distances; broadcasts over leading axes."""
    px, py = priors[..., 0], priors[..., 1]
    return np.stack([px - dist[..., 0], py - dist[..., 1], px + dist[..., 2], py + dist[..., 3]], axis=-1)


def flatten_raw_levels(cls_levels: Sequence[np.ndarray], reg_levels: Sequence[np.ndarray],
                       strides: Sequence[int] = DEFAULT_STRIDES) -> Tuple[np.ndarray, np.ndarray, List[int]]:
    """Per-level head maps -> the flattened ``boxes_scores`` form.

    ``cls_levels[l]``: ``(N, C, Hf, Wf)`` logits; ``reg_levels[l]``: ``(N, 4, Hf, Wf)`` ltrb distances in input
    pixels. Returns ``boxes (N, A, 4)`` (decoded, unclipped), ``scores (N, A, C)`` (sigmoid) and the number of
    priors per level.
    """
    if not (len(cls_levels) == len(reg_levels) == len(strides)):
        raise ValueError(
            f"expected one cls map and one reg map per stride {tuple(strides)}, "
            f"got {len(cls_levels)} cls and {len(reg_levels)} reg maps"
        )
    shapes, scores, dists = [], [], []
    for lvl, (c, r) in enumerate(zip(cls_levels, reg_levels)):
        c = np.asarray(c, dtype=np.float32)
        r = np.asarray(r, dtype=np.float32)
        if c.ndim != 4 or r.ndim != 4 or r.shape[1] != 4 or c.shape[0] != r.shape[0] or c.shape[2:] != r.shape[2:]:
            raise ValueError(
                f"level {lvl}: expected cls (N, C, H, W) and reg (N, 4, H, W) with equal N, H, W, "
                f"got {c.shape} and {r.shape}"
            )
        n = c.shape[0]
        shapes.append(c.shape[2:])
        scores.append(c.transpose(0, 2, 3, 1).reshape(n, -1, c.shape[1]))
        dists.append(r.transpose(0, 2, 3, 1).reshape(n, -1, 4))
    if len({s.shape[0] for s in scores}) > 1 or len({s.shape[2] for s in scores}) > 1:
        raise ValueError("levels disagree on the batch size or the number of classes")
    priors = make_priors(shapes, strides)
    scores_all = expit(np.concatenate(scores, axis=1))
    boxes = distance2bbox(priors[None], np.concatenate(dists, axis=1))
    return boxes.astype(np.float32, copy=False), scores_all.astype(np.float32, copy=False), [h * w for h, w in shapes]


def _stable_desc(values: np.ndarray) -> np.ndarray:
    return np.argsort(-values, kind="stable")


def _postprocess_single(boxes: np.ndarray, scores: np.ndarray, level_sizes: Sequence[int], lb: Letterbox,
                        cfg: PostprocessConfig) -> Tuple[Detections, int]:
    """mmdet ``_predict_by_feat_single`` + ``_bbox_post_process`` on one image's flattened outputs."""
    finite = np.isfinite(scores)
    n_bad = int(scores.size - finite.sum())
    thr = np.float32(cfg.score_thr)
    prior_idx, label_idx, cand_scores = [], [], []
    start = 0
    for size in level_sizes:
        s = scores[start:start + size]
        with np.errstate(invalid="ignore"):
            p, c = np.nonzero((s > thr) & finite[start:start + size])  # row-major (prior, class) order
        sc = s[p, c]
        order = _stable_desc(sc)
        if cfg.nms_pre > 0:
            order = order[:cfg.nms_pre]
        prior_idx.append(p[order] + start)
        label_idx.append(c[order])
        cand_scores.append(sc[order])
        start += size
    p = np.concatenate(prior_idx)
    labels = np.concatenate(label_idx).astype(np.int64)
    sc = np.concatenate(cand_scores).astype(np.float32, copy=False)
    b = boxes[p].astype(np.float32, copy=False)
    finite_b = np.isfinite(b).all(axis=1)
    n_bad += int(b.shape[0] - finite_b.sum())
    b, sc, labels = b[finite_b], sc[finite_b], labels[finite_b]
    if cfg.clip_to_input:
        b = clip_boxes(b, lb.input_hw)
    b = b / np.asarray(lb.scale_factor * 2, dtype=np.float32)  # (sx, sy, sx, sy)
    ok = valid_box_mask(b, sc, min_size=cfg.min_bbox_size,
                        image_shape=lb.orig_hw if cfg.drop_outside_image else None)
    n_bad += int(b.shape[0] - ok.sum())
    b, sc, labels = b[ok], sc[ok], labels[ok]
    keep = batched_nms(b, sc, labels, iou_thr=cfg.nms_iou_thr)
    if cfg.max_per_img > 0:
        keep = keep[:cfg.max_per_img]
    return Detections(b[keep], sc[keep], labels[keep]), n_bad


def _as_letterboxes(letterboxes: Union[Letterbox, Sequence[Letterbox]], n: int) -> List[Letterbox]:
    lbs = [letterboxes] if isinstance(letterboxes, Letterbox) else list(letterboxes)
    if len(lbs) != n:
        raise ValueError(f"letterboxes: expected {n} (one per image of the batch), got {len(lbs)}")
    return lbs


def _log_dropped(n_bad: int, where: str) -> None:
    if n_bad:
        logger.debug("%s: dropped %d degenerate boxes/scores (NaN/inf, empty, or outside)", where, n_bad)


def decode_boxes_scores(boxes: np.ndarray, scores: np.ndarray, letterboxes: Union[Letterbox, Sequence[Letterbox]],
                        cfg: PostprocessConfig = PostprocessConfig(),
                        level_sizes: Sequence[int] | None = None) -> List[Detections]:
    """mmdet post-processing from flattened ``boxes (N, A, 4)`` (input pixels) and ``scores (N, A, C)``
    (probabilities). ``level_sizes`` (priors per level, for the per-level ``nms_pre``) default to the
    feature-map sizes of the letterbox's input size and ``cfg.strides``. Returns one Detections per image."""
    boxes = np.asarray(boxes)
    scores = np.asarray(scores)
    if boxes.ndim == 2 and scores.ndim == 2:
        boxes, scores = boxes[None], scores[None]
    if boxes.ndim != 3 or boxes.shape[2] != 4 or scores.ndim != 3 or scores.shape[:2] != boxes.shape[:2]:
        raise ValueError(f"expected boxes (N, A, 4) and scores (N, A, C), got {boxes.shape} and {scores.shape}")
    lbs = _as_letterboxes(letterboxes, boxes.shape[0])
    out, n_bad = [], 0
    for i, lb in enumerate(lbs):
        sizes = level_sizes
        if sizes is None:
            sizes = [h * w for h, w in level_shapes(lb.input_hw, cfg.strides)]
        if sum(sizes) != boxes.shape[1]:
            raise ValueError(
                f"boxes/scores have {boxes.shape[1]} priors but levels {list(sizes)} (input {lb.input_hw}, "
                f"strides {tuple(cfg.strides)}) give {sum(sizes)}"
            )
        det, bad = _postprocess_single(boxes[i], scores[i].astype(np.float32, copy=False), sizes, lb, cfg)
        out.append(det)
        n_bad += bad
    _log_dropped(n_bad, "decode_boxes_scores")
    return out


def decode_raw_levels(cls_levels: Sequence[np.ndarray], reg_levels: Sequence[np.ndarray],
                      letterboxes: Union[Letterbox, Sequence[Letterbox]],
                      cfg: PostprocessConfig = PostprocessConfig()) -> List[Detections]:
    """mmdet post-processing from the per-level head maps (see :func:`flatten_raw_levels`)."""
    boxes, scores, sizes = flatten_raw_levels(cls_levels, reg_levels, cfg.strides)
    return decode_boxes_scores(boxes, scores, letterboxes, cfg, level_sizes=sizes)


def decode_dets_labels(dets: np.ndarray, labels: np.ndarray, letterboxes: Union[Letterbox, Sequence[Letterbox]],
                       score_thr: float = 0.05, drop_outside_image: bool = False) -> List[Detections]:
    """mmdeploy end2end outputs -> Detections (mmdeploy's ``End2EndModel`` post-processing).

    Drops padding rows (score <= 0 or label < 0), divides x by ``sx`` and y by ``sy`` (no clipping),
    drops degenerate rows, keeps ``score > score_thr`` and sorts by score (stable, so the graph's order is
    kept among ties).
    """
    dets = np.asarray(dets)
    labels = np.asarray(labels)
    if dets.ndim == 2 and labels.ndim == 1:
        dets, labels = dets[None], labels[None]
    if dets.ndim != 3 or dets.shape[2] != 5 or labels.ndim != 2 or labels.shape != dets.shape[:2]:
        raise ValueError(f"expected dets (N, num, 5) and labels (N, num), got {dets.shape} and {labels.shape}")
    lbs = _as_letterboxes(letterboxes, dets.shape[0])
    out, n_bad = [], 0
    for i, lb in enumerate(lbs):
        d = dets[i].astype(np.float32, copy=False)
        lab = labels[i]
        s = d[:, 4]
        with np.errstate(invalid="ignore"):
            real = ~((s <= 0) | (lab < 0))  # NaN scores count as real rows, dropped as degenerate below
        d, s, lab = d[real], s[real], lab[real]
        b = d[:, :4] / np.asarray(lb.scale_factor * 2, dtype=np.float32)
        ok = valid_box_mask(b, s, image_shape=lb.orig_hw if drop_outside_image else None)
        n_bad += int(b.shape[0] - ok.sum())
        with np.errstate(invalid="ignore"):
            ok &= s > np.float32(score_thr)
        b, s, lab = b[ok], s[ok], lab[ok]
        order = _stable_desc(s)
        out.append(Detections(b[order], s[order], lab[order].astype(np.int64)))
    _log_dropped(n_bad, "decode_dets_labels")
    return out


def filter_detections(dets: Detections, cat_id: int = 0, bbox_thr: float = 0.3) -> Detections:
    """The demo's filter: keep ``label == cat_id`` and ``score > bbox_thr`` (strict), order kept."""
    keep = (dets.labels == cat_id) & (dets.scores > np.float32(bbox_thr))
    return dets.select(keep)
