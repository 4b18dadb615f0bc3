"""RTMDet person detector stage, torch-free: letterbox preprocessing, host-side decoding, NMS.

Reproduces mmdet 3.x inference (``rtmdet.md`` §9-§11) on the host, for three kinds of engine outputs:

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

Engine metadata keys (string values, all optional; ``Detector`` reads them, explicit arguments win):

=====================  =====================================================================================
key                    meaning (default)
=====================  =====================================================================================
``family``             must be ``rtmdet`` when present
``input_size``         network input ``"H,W"`` or ``"S"`` (static ONNX input shape, else 640)
``mean`` / ``std``     3 comma-separated floats in the network's channel order (mmdet BGR values)
``channel_order``      ``bgr`` or ``rgb``: order of the network input planes (``bgr``)
``pad_value``          letterbox fill, 1 or 3 comma-separated values, in the frame's BGR order (114)
``normalize_in_graph`` ``1``/``true``: mean/std are folded into the graph, feed float pixels (``0``)
``strides``            ``"8,16,32"``
``score_thr``          0.05
``nms_iou_thr``        0.6
``nms_pre``            1000 (per level; ``<= 0`` = no limit)
``max_per_img``        100 (``<= 0`` = no limit)
``min_bbox_size``      0
``output_format``      ``raw_levels`` | ``boxes_scores`` | ``dets_labels`` (detected from the outputs)
=====================  =====================================================================================

The numeric defaults are those of the two RTMDet person configs (``rtmdet.md`` §11); files that carry no
metadata (mmdeploy exports) get them.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Mapping, Sequence, Tuple, Union

import cv2
import numpy as np
from scipy.special import expit

from ..boxes import batched_nms, clip_boxes, valid_box_mask
from ..engines.errors import ModelError
from ..errors import InputError
from ..metadata import meta_bool, meta_floats

logger = logging.getLogger(__name__)

__all__ = [
    "Detections",
    "Letterbox",
    "PreprocessConfig",
    "PostprocessConfig",
    "DetectorConfig",
    "OUTPUT_FORMATS",
    "check_frame",
    "letterbox",
    "preprocess",
    "level_shapes",
    "make_priors",
    "distance2bbox",
    "flatten_raw_levels",
    "decode_boxes_scores",
    "decode_raw_levels",
    "decode_dets_labels",
    "filter_detections",
    "parse_detector_metadata",
    "Detector",
]

OUTPUT_FORMATS = ("raw_levels", "boxes_scores", "dets_labels")
DEFAULT_MEAN = (103.53, 116.28, 123.675)  # BGR, mmdet DetDataPreprocessor
DEFAULT_STD = (57.375, 57.12, 58.395)
DEFAULT_INPUT_SIZE = 640
DEFAULT_STRIDES = (8, 16, 32)

Frames = Union[np.ndarray, Sequence[np.ndarray]]


# --------------------------------------------------------------------------------------------------------
# data containers


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
class Letterbox:
    """Geometry of one keep-ratio resize + bottom/right pad.

    ``scale_factor = (new_w / w, new_h / h)`` (mmcv: from the integer resized size, two factors).
    """

    orig_hw: Tuple[int, int]
    resized_hw: Tuple[int, int]
    input_hw: Tuple[int, int]
    scale_factor: Tuple[float, float]


@dataclass(frozen=True)
class PreprocessConfig:
    """Network input geometry and normalisation. ``mean``/``std`` are in the network's channel order."""

    input_hw: Tuple[int, int] = (DEFAULT_INPUT_SIZE, DEFAULT_INPUT_SIZE)
    mean: Tuple[float, float, float] = DEFAULT_MEAN
    std: Tuple[float, float, float] = DEFAULT_STD
    pad_value: Tuple[int, int, int] = (114, 114, 114)  # in the frame's (BGR) order
    channel_order: str = "bgr"
    normalize: bool = True

    def __post_init__(self) -> None:
        h, w = (int(v) for v in self.input_hw)
        if h <= 0 or w <= 0:
            raise ValueError(f"input_hw: expected two positive ints, got {self.input_hw}")
        if self.channel_order not in ("bgr", "rgb"):
            raise ValueError(f"channel_order: expected 'bgr' or 'rgb', got {self.channel_order!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or any(float(s) == 0.0 for s in self.std):
            raise ValueError(f"mean/std: expected 3 values each, std non-zero; got {self.mean}, {self.std}")
        pad = tuple(self.pad_value) if np.ndim(self.pad_value) else (self.pad_value,)
        pad = pad * 3 if len(pad) == 1 else pad
        if len(pad) != 3:
            raise ValueError(f"pad_value: expected 1 or 3 values, got {self.pad_value}")
        object.__setattr__(self, "input_hw", (h, w))
        object.__setattr__(self, "pad_value", tuple(int(v) for v in pad))


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


@dataclass(frozen=True)
class DetectorConfig:
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    output_format: str | None = None


# --------------------------------------------------------------------------------------------------------
# preprocessing


def check_frame(frame: Any, name: str = "frame") -> np.ndarray:
    """Return ``frame`` if it is a non-empty uint8 ``(H, W, 3)`` ndarray, else raise :class:`InputError`."""
    if not isinstance(frame, np.ndarray):
        raise InputError(f"{name}: expected a uint8 numpy array of shape (H, W, 3) (BGR), got {type(frame).__name__}")
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] == 0 or frame.shape[1] == 0:
        raise InputError(
            f"{name}: expected a uint8 array of shape (H, W, 3) (BGR) with H, W > 0, "
            f"got dtype {frame.dtype} and shape {frame.shape}"
        )
    return frame


def letterbox(frame: np.ndarray, input_hw: Tuple[int, int], pad_value: Union[int, Sequence[int]] = 114
              ) -> Tuple[np.ndarray, Letterbox]:
    """Keep-ratio resize into ``input_hw`` and pad bottom/right (mmcv ``Resize(keep_ratio)`` + ``Pad``).

    ``f = min(H / h, W / w)`` (for a square input this is mmcv's ``S / max(h, w)``, up-scaling included),
    new size ``int(x * f + 0.5)``, ``cv2.resize(..., INTER_LINEAR)``. Returns the uint8 ``(H, W, 3)`` canvas.
    """
    frame = np.ascontiguousarray(check_frame(frame))  # cv2 wants C order (views, flips, crops)
    H, W = int(input_hw[0]), int(input_hw[1])
    h, w = frame.shape[:2]
    f = min(H / h, W / w)
    new_w = min(int(w * f + 0.5), W)
    new_h = min(int(h * f + 0.5), H)
    new_w, new_h = max(new_w, 1), max(new_h, 1)
    resized = frame if (new_w, new_h) == (w, h) else cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad = [int(v) for v in np.broadcast_to(np.asarray(pad_value, dtype=np.uint8), (3,))]
    canvas = cv2.copyMakeBorder(resized, 0, H - new_h, 0, W - new_w, cv2.BORDER_CONSTANT, value=pad)
    return canvas, Letterbox((h, w), (new_h, new_w), (H, W), (new_w / w, new_h / h))


def preprocess(frames: Frames, cfg: PreprocessConfig = PreprocessConfig()) -> Tuple[np.ndarray, List[Letterbox]]:
    """Letterbox and normalise one frame or a sequence of frames (BGR uint8 ``(H, W, 3)``).

    Returns the float32 network input ``(N, 3, H, W)`` and one :class:`Letterbox` per frame.
    Normalisation: ``(x.astype(float32) - mean) / std`` per channel after padding (mmdet's order), in the
    network's channel order (BGR unless ``channel_order='rgb'``).
    """
    frame_list = [frames] if isinstance(frames, np.ndarray) and frames.ndim == 3 else frames
    if isinstance(frame_list, np.ndarray):
        raise InputError(
            f"frames: expected one uint8 (H, W, 3) array or a list of them, got an array of shape {frame_list.shape}"
        )
    frame_list = list(frame_list)
    H, W = cfg.input_hw
    # (x - mean) / std depends only on the uint8 value and the channel: a 256-entry float32 table per channel
    # (cv2.LUT) gives bit-identical values to the float formula and writes the planes straight into NCHW.
    levels = np.arange(256, dtype=np.float32)
    if cfg.normalize:
        lut = (levels[None, :] - np.asarray(cfg.mean, np.float32)[:, None]) / np.asarray(cfg.std, np.float32)[:, None]
    else:
        lut = np.stack([levels] * 3)
    luts = [np.ascontiguousarray(lut[k].reshape(1, 256)) for k in range(3)]
    src = (0, 1, 2) if cfg.channel_order == "bgr" else (2, 1, 0)
    x = np.empty((len(frame_list), 3, H, W), dtype=np.float32)
    boxes = []
    for i, fr in enumerate(frame_list):
        check_frame(fr, f"frames[{i}]")
        canvas, lb = letterbox(fr, cfg.input_hw, cfg.pad_value)
        planes = cv2.split(canvas)
        for k in range(3):
            x[i, k] = cv2.LUT(planes[src[k]], luts[k])
        boxes.append(lb)
    return x, boxes


# --------------------------------------------------------------------------------------------------------
# priors and decoding


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


# --------------------------------------------------------------------------------------------------------
# metadata and the engine wrapper


def _floats(meta: Mapping[str, str], key: str, n: int | None, source: str) -> Tuple[float, ...] | None:
    return meta_floats(meta, key, n, source, allowed_lengths=(1, n) if key == "pad_value" and n else None)


_bool = meta_bool


def parse_detector_metadata(metadata: Mapping[str, str], static_input_hw: Tuple[int, int] | None = None,
                            source: str = "<model>") -> DetectorConfig:
    """Engine metadata (keys in the module docstring) -> :class:`DetectorConfig`, defaults filled in.

    ``static_input_hw`` is the engine's static input (H, W), if any; it must agree with ``input_size``.
    Raises :class:`ModelError` (naming ``source``) for a malformed value or a non-RTMDet ``family``.
    """
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    family = meta.get("family", "").strip().lower()
    if family and family != "rtmdet":
        raise ModelError(f"{source}: metadata family={meta['family']!r}, expected 'rtmdet' for a detector")
    size = _floats(meta, "input_size", None, source)
    if size is not None:
        if len(size) not in (1, 2) or any(v <= 0 or v != int(v) for v in size):
            raise ModelError(f"{source}: metadata input_size={meta['input_size']!r}: expected 'H,W' or 'S'")
        input_hw = (int(size[0]), int(size[-1]))
        if static_input_hw is not None and tuple(static_input_hw) != input_hw:
            raise ModelError(
                f"{source}: metadata input_size={meta['input_size']!r} disagrees with the static input shape "
                f"(H, W) = {tuple(static_input_hw)}"
            )
    else:
        input_hw = tuple(static_input_hw) if static_input_hw is not None else (DEFAULT_INPUT_SIZE,) * 2
    order = meta.get("channel_order", "bgr").strip().lower() or "bgr"
    if order not in ("bgr", "rgb"):
        raise ModelError(f"{source}: metadata channel_order={meta['channel_order']!r}: expected 'bgr' or 'rgb'")
    mean = _floats(meta, "mean", 3, source)
    std = _floats(meta, "std", 3, source)
    if mean is None:
        mean = DEFAULT_MEAN if order == "bgr" else DEFAULT_MEAN[::-1]
    if std is None:
        std = DEFAULT_STD if order == "bgr" else DEFAULT_STD[::-1]
    if any(v == 0 for v in std):
        raise ModelError(f"{source}: metadata std={meta['std']!r} contains 0")
    pad = _floats(meta, "pad_value", 3, source) or (114.0,)
    in_graph = _bool(meta, "normalize_in_graph", source) or False
    strides = _floats(meta, "strides", None, source)
    strides = tuple(int(s) for s in strides) if strides else DEFAULT_STRIDES
    fmt = meta.get("output_format", "").strip().lower() or None
    if fmt is not None and fmt not in OUTPUT_FORMATS:
        raise ModelError(f"{source}: metadata output_format={meta['output_format']!r}: expected one of {OUTPUT_FORMATS}")

    def num(key: str, default: float, kind=float):
        v = _floats(meta, key, 1, source)
        return kind(v[0]) if v else default

    try:
        pre = PreprocessConfig(input_hw=input_hw, mean=tuple(mean), std=tuple(std),
                               pad_value=tuple(int(v) for v in pad), channel_order=order, normalize=not in_graph)
    except ValueError as e:
        raise ModelError(f"{source}: bad preprocessing metadata: {e}") from None
    post = PostprocessConfig(
        score_thr=num("score_thr", 0.05), nms_iou_thr=num("nms_iou_thr", 0.6), nms_pre=num("nms_pre", 1000, int),
        max_per_img=num("max_per_img", 100, int), min_bbox_size=num("min_bbox_size", 0.0), strides=strides,
    )
    return DetectorConfig(pre, post, fmt)


def _static(dim: Any) -> int | None:
    return int(dim) if isinstance(dim, (int, np.integer)) and dim > 0 else None


def _describe(specs: Sequence[Any]) -> str:
    parts = []
    for s in specs:
        if hasattr(s, "describe"):
            parts.append(s.describe())
        else:
            parts.append(f"{getattr(s, 'name', '?')}{list(getattr(s, 'shape', ()))}")
    return ", ".join(parts) or "none"


def _detect_output_format(outputs: Sequence[Any]) -> Tuple[str, Dict[str, Any]] | None:
    """Which output layout the engine has, and the names of its parts; None if it is none of the three."""
    by_name = {str(o.name).lower(): o for o in outputs}
    ranks = [len(o.shape) for o in outputs]

    def last(o: Any) -> int | None:
        return _static(o.shape[-1]) if len(o.shape) else None

    if len(outputs) == 2:
        if "dets" in by_name and "labels" in by_name:
            d, lab = by_name["dets"], by_name["labels"]
            if len(d.shape) == 3 and last(d) in (5, None) and len(lab.shape) == 2:
                return "dets_labels", {"dets": d.name, "labels": lab.name}
            return None
        if "boxes" in by_name and "scores" in by_name:
            b, s = by_name["boxes"], by_name["scores"]
            if len(b.shape) == 3 and last(b) in (4, None) and len(s.shape) == 3:
                return "boxes_scores", {"boxes": b.name, "scores": s.name}
            return None
        r3 = [o for o in outputs if len(o.shape) == 3]
        r2 = [o for o in outputs if len(o.shape) == 2]
        if len(r3) == 1 and len(r2) == 1 and last(r3[0]) == 5:
            return "dets_labels", {"dets": r3[0].name, "labels": r2[0].name}
        if len(r3) == 2 and last(r3[0]) == 4:
            return "boxes_scores", {"boxes": r3[0].name, "scores": r3[1].name}
        return None
    if len(outputs) == 6 and all(r == 4 for r in ranks):
        names = [str(o.name) for o in outputs]
        cls = [n for n in names if "cls" in n.lower()]
        reg = [n for n in names if ("bbox" in n.lower() or "reg" in n.lower()) and n not in cls]
        if len(cls) != 3 or len(reg) != 3:
            cls, reg = names[:3], names[3:]  # mmdet's head forward returns (cls_scores, bbox_preds)
        spec = {o.name: o for o in outputs}
        if any(_static(spec[n].shape[1]) not in (4, None) for n in reg):
            return None
        return "raw_levels", {"cls": cls, "reg": reg}
    return None


class Detector:
    """RTMDet on an engine: ``Detector(engine)(frame) -> Detections`` (or a list of frames -> a list).

    ``engine`` is a :class:`pose3d_rt.engines.Engine` or any object with ``run``, ``inputs``, ``outputs``,
    ``metadata`` and ``path``. Preprocessing and post-processing settings come from the engine metadata
    (module docstring), then the keyword overrides. Raises :class:`ModelError` at construction if the
    engine does not look like a detector.
    """

    def __init__(self, engine: Any, *, score_thr: float | None = None, nms_iou_thr: float | None = None,
                 nms_pre: int | None = None, max_per_img: int | None = None,
                 drop_outside_image: bool = False) -> None:
        self.engine = engine
        self.path = str(getattr(engine, "path", "<engine>"))
        inputs = list(getattr(engine, "inputs", ()))
        outputs = list(getattr(engine, "outputs", ()))
        expected = ("expected an RTMDet detector: 1 image input (N, 3, H, W) and outputs dets (N, num, 5) + "
                    "labels (N, num), or boxes (N, A, 4) + scores (N, A, C), or 6 per-level maps "
                    "(3 cls (N, C, H, W) + 3 bbox (N, 4, H, W))")
        found = f"found inputs [{_describe(inputs)}], outputs [{_describe(outputs)}]"
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or _static(inputs[0].shape[1]) not in (3, None):
            raise ModelError(f"{self.path}: {expected}; {found}")
        detected = _detect_output_format(outputs)
        if detected is None:
            raise ModelError(f"{self.path}: {expected}; {found}")
        self.output_format, self._names = detected
        spec = inputs[0]
        self.input_name = spec.name
        h, w = _static(spec.shape[2]), _static(spec.shape[3])
        cfg = parse_detector_metadata(getattr(engine, "metadata", None) or {},
                                      (h, w) if h and w else None, self.path)
        if cfg.output_format is not None and cfg.output_format != self.output_format:
            raise ModelError(
                f"{self.path}: metadata output_format={cfg.output_format!r} but the outputs look like "
                f"{self.output_format!r}; {found}"
            )
        overrides = {k: v for k, v in dict(score_thr=score_thr, nms_iou_thr=nms_iou_thr, nms_pre=nms_pre,
                                             max_per_img=max_per_img).items() if v is not None}
        self.preprocess_cfg = cfg.preprocess
        self.postprocess_cfg = replace(cfg.postprocess, drop_outside_image=drop_outside_image, **overrides)
        self.max_batch = _static(spec.shape[0])

    @property
    def input_hw(self) -> Tuple[int, int]:
        return self.preprocess_cfg.input_hw

    def __call__(self, frames: Frames) -> Union[Detections, List[Detections]]:
        """Detect on one BGR uint8 frame (-> Detections) or a list of frames (-> list, one batched call
        per ``max_batch`` frames when the engine's batch axis is static)."""
        single = isinstance(frames, np.ndarray)
        if single and frames.ndim != 3:
            check_frame(frames)
        frame_list = [frames] if single else list(frames)
        if not frame_list:
            return []
        batch, lbs = preprocess(frame_list, self.preprocess_cfg)
        step = self.max_batch or len(frame_list)
        results: List[Detections] = []
        for start in range(0, len(frame_list), step):
            out = self.engine.run({self.input_name: batch[start:start + step]})
            results.extend(self._decode(out, lbs[start:start + step]))
        return results[0] if single else results

    def _get(self, out: Mapping[str, np.ndarray], name: str) -> np.ndarray:
        if name not in out:
            raise ModelError(f"{self.path}: engine returned outputs {sorted(out)} without {name!r}")
        return np.asarray(out[name])

    def _decode(self, out: Mapping[str, np.ndarray], lbs: Sequence[Letterbox]) -> List[Detections]:
        cfg = self.postprocess_cfg
        if self.output_format == "dets_labels":
            return decode_dets_labels(self._get(out, self._names["dets"]), self._get(out, self._names["labels"]),
                                      lbs, score_thr=cfg.score_thr, drop_outside_image=cfg.drop_outside_image)
        if self.output_format == "boxes_scores":
            boxes = self._get(out, self._names["boxes"]).astype(np.float32, copy=False)
            scores = self._get(out, self._names["scores"]).astype(np.float32, copy=False)
            sizes = [h * w for h, w in level_shapes(self.input_hw, cfg.strides)]
            if boxes.ndim != 3 or boxes.shape[1] != sum(sizes):
                raise ModelError(
                    f"{self.path}: boxes output has shape {boxes.shape}, expected (N, {sum(sizes)}, 4) for "
                    f"input {self.input_hw} and strides {tuple(cfg.strides)}"
                )
            return decode_boxes_scores(boxes, scores, lbs, cfg, level_sizes=sizes)
        cls = [self._get(out, n) for n in self._names["cls"]]
        reg = [self._get(out, n) for n in self._names["reg"]]
        # order the levels by decreasing map size (= increasing stride); check against the input size
        order = sorted(range(3), key=lambda i: -cls[i].shape[-2] * cls[i].shape[-1])
        cls = [cls[i] for i in order]
        reg_order = sorted(range(3), key=lambda i: -reg[i].shape[-2] * reg[i].shape[-1])
        reg = [reg[i] for i in reg_order]
        expected = level_shapes(self.input_hw, cfg.strides)
        got = [tuple(c.shape[-2:]) for c in cls]
        if got != [tuple(e) for e in expected] or [tuple(r.shape[-2:]) for r in reg] != got:
            raise ModelError(
                f"{self.path}: per-level maps of sizes {got} do not match input {self.input_hw} with strides "
                f"{tuple(cfg.strides)} (expected {expected})"
            )
        return decode_raw_levels(cls, reg, lbs, cfg)
