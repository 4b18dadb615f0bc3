"""The RTMDet person detector stage: ``Detector(engine)(frame) -> Detections``, torch-free.

:mod:`pose3d_rt.rtmdet.preprocess` letterboxes the frames into one batch, the engine runs it and
:mod:`pose3d_rt.rtmdet.decode` turns whichever of the three output layouts the engine has (``raw_levels``,
``boxes_scores``, ``dets_labels``; detected here from the output names and shapes) into :class:`Detections`
in frame pixels, as mmdet 3.x does (docs/MMPOSE_BEHAVIOUR.md, RTMDet).

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
``dynamic_hw``         ``true``: exported to take any H x W (``pose3d-rt export --dynamic-hw``); ``input_size``
                       is then the nominal size the frame is resized into
=====================  =====================================================================================

The numeric defaults are those of the two RTMDet person configs (docs/MMPOSE_BEHAVIOUR.md, RTMDet); files that
carry no metadata (mmdeploy exports) get them (docs/MMPOSE_BEHAVIOUR.md, ONNX metadata).

Letterbox (``Detector(..., letterbox=...)``, :data:`LETTERBOXES`): ``"square"`` pads the keep-ratio resize into
``input_size`` to the full square (mmdet; mmpose mode). ``"rect"`` pads it only to the next multiple of the largest
stride (640x360 -> 640x384 for 16:9 video: ~40% less network work); it needs an engine whose input H and W are
dynamic. ``None`` (auto) is rect when the engine's H and W are dynamic, else square. The resize, and so the
frame-pixel geometry, is the same either way; the network sees less padding, so scores and boxes move slightly.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..engines.base import describe_io, format_shape, static_dim
from ..errors import InputError, ModelError
from ..frames import check_frame
from ..metadata import meta_bool, meta_floats
from .decode import (
    DEFAULT_STRIDES,
    Detections,
    PostprocessConfig,
    decode_boxes_scores,
    decode_dets_labels,
    decode_raw_levels,
    level_shapes,
)
from .preprocess import (
    DEFAULT_INPUT_SIZE,
    DEFAULT_MEAN,
    DEFAULT_STD,
    Frames,
    Letterbox,
    PreprocessConfig,
    preprocess,
)

__all__ = ["OUTPUT_FORMATS", "LETTERBOXES", "DetectorConfig", "parse_detector_metadata", "Detector"]

log = logging.getLogger(__name__)

OUTPUT_FORMATS = ("raw_levels", "boxes_scores", "dets_labels")
#: ``Detector(letterbox=...)``: pad to the square ``input_size`` (mmdet), or to a multiple of the largest stride
LETTERBOXES = ("rect", "square")


@dataclass(frozen=True)
class DetectorConfig:
    """Everything the metadata says: preprocessing, post-processing and the declared output layout (if any)."""

    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    output_format: str | None = None


def _floats(meta: Mapping[str, str], key: str, n: int | None, source: str) -> Tuple[float, ...] | None:
    return meta_floats(meta, key, n, source, allowed_lengths=(1, n) if key == "pad_value" and n else None)


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
    in_graph = meta_bool(meta, "normalize_in_graph", source) or False
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


def _detect_output_format(outputs: Sequence[Any]) -> Tuple[str, Dict[str, Any]] | None:
    """Which output layout the engine has, and the names of its parts; None if it is none of the three."""
    by_name = {str(o.name).lower(): o for o in outputs}
    ranks = [len(o.shape) for o in outputs]

    def last(o: Any) -> int | None:
        return static_dim(o.shape[-1]) if len(o.shape) else None

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
        if any(static_dim(spec[n].shape[1]) not in (4, None) for n in reg):
            return None
        return "raw_levels", {"cls": cls, "reg": reg}
    return None


class Detector:
    """RTMDet on an engine: ``Detector(engine)(frame) -> Detections`` (or a list of frames -> a list).

    ``engine`` is a :class:`pose3d_rt.engines.Engine` or any object with ``run``, ``inputs``, ``outputs``,
    ``metadata`` and ``path``. Preprocessing and post-processing settings come from the engine metadata
    (module docstring), then the keyword overrides. Raises :class:`ModelError` at construction if the
    engine does not look like a detector.

    ``letterbox``: ``"rect"``, ``"square"`` or None (auto: rect when the engine's input H and W are dynamic);
    see the module docstring. The choice made is :attr:`letterbox`.
    """

    def __init__(self, engine: Any, *, score_thr: float | None = None, nms_iou_thr: float | None = None,
                 nms_pre: int | None = None, max_per_img: int | None = None,
                 drop_outside_image: bool = False, letterbox: Optional[str] = None) -> None:
        self.engine = engine
        self.path = str(getattr(engine, "path", "<engine>"))
        inputs = list(getattr(engine, "inputs", ()))
        outputs = list(getattr(engine, "outputs", ()))
        expected = ("expected an RTMDet detector: 1 image input (N, 3, H, W) and outputs dets (N, num, 5) + "
                    "labels (N, num), or boxes (N, A, 4) + scores (N, A, C), or 6 per-level maps "
                    "(3 cls (N, C, H, W) + 3 bbox (N, 4, H, W))")
        found = f"found {describe_io(engine)}"
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or static_dim(inputs[0].shape[1]) not in (3, None):
            raise ModelError(f"{self.path}: {expected}; {found}")
        detected = _detect_output_format(outputs)
        if detected is None:
            raise ModelError(f"{self.path}: {expected}; {found}")
        self.output_format, self._names = detected
        spec = inputs[0]
        self.input_name = spec.name
        h, w = static_dim(spec.shape[2]), static_dim(spec.shape[3])
        cfg = parse_detector_metadata(getattr(engine, "metadata", None) or {},
                                      (h, w) if h and w else None, self.path)
        if cfg.output_format is not None and cfg.output_format != self.output_format:
            raise ModelError(
                f"{self.path}: metadata output_format={cfg.output_format!r} but the outputs look like "
                f"{self.output_format!r}; {found}"
            )
        overrides = {k: v for k, v in dict(score_thr=score_thr, nms_iou_thr=nms_iou_thr, nms_pre=nms_pre,
                                             max_per_img=max_per_img).items() if v is not None}
        self.postprocess_cfg = replace(cfg.postprocess, drop_outside_image=drop_outside_image, **overrides)
        #: "rect" or "square": the letterbox in use
        self.letterbox = self._choose_letterbox(letterbox, dynamic=h is None and w is None)
        multiple = max(self.postprocess_cfg.strides) if self.letterbox == "rect" else None
        self.preprocess_cfg = replace(cfg.preprocess, pad_to_multiple=multiple)
        self.max_batch = static_dim(spec.shape[0]) or None  # None: any batch size

    def _choose_letterbox(self, letterbox: Optional[str], dynamic: bool) -> str:
        if letterbox is not None and letterbox not in LETTERBOXES:
            raise InputError(f"letterbox: expected one of {', '.join(LETTERBOXES)} or None (auto), got {letterbox!r}")
        if letterbox == "rect" and not dynamic:
            raise ModelError(
                f"{self.path}: the rect letterbox needs a detector whose input H and W are dynamic, found input "
                f"{format_shape(self.engine.inputs[0].shape)}; export it with `pose3d-rt export --dynamic-hw`, "
                f"or use the square letterbox"
            )
        choice = letterbox or ("rect" if dynamic else "square")
        log.debug("%s: %s letterbox", self.path, choice)
        return choice

    @property
    def input_hw(self) -> Tuple[int, int]:
        """The nominal network input (H, W): the square letterbox's input, which the rect one resizes into."""
        return self.preprocess_cfg.input_hw

    def __call__(self, frames: Frames) -> Union[Detections, List[Detections]]:
        """Detect on one BGR uint8 frame (-> Detections) or a list of frames (-> list, one batched call
        per ``max_batch`` frames when the engine's batch axis is static)."""
        single = isinstance(frames, np.ndarray)
        frame_list = [check_frame(frames)] if single else list(frames)
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
        input_hw = lbs[0].input_hw  # the shape of this engine call (the rect letterbox's varies with the frame)
        if self.output_format == "dets_labels":
            return decode_dets_labels(self._get(out, self._names["dets"]), self._get(out, self._names["labels"]),
                                      lbs, score_thr=cfg.score_thr, drop_outside_image=cfg.drop_outside_image)
        if self.output_format == "boxes_scores":
            boxes = self._get(out, self._names["boxes"]).astype(np.float32, copy=False)
            scores = self._get(out, self._names["scores"]).astype(np.float32, copy=False)
            sizes = [h * w for h, w in level_shapes(input_hw, cfg.strides)]
            if boxes.ndim != 3 or boxes.shape[1] != sum(sizes):
                raise ModelError(
                    f"{self.path}: boxes output has shape {boxes.shape}, expected (N, {sum(sizes)}, 4) for "
                    f"input {input_hw} and strides {tuple(cfg.strides)}"
                )
            return decode_boxes_scores(boxes, scores, lbs, cfg, level_sizes=sizes)
        cls = [self._get(out, n) for n in self._names["cls"]]
        reg = [self._get(out, n) for n in self._names["reg"]]
        # order the levels by decreasing map size (= increasing stride); check against the input size
        order = sorted(range(3), key=lambda i: -cls[i].shape[-2] * cls[i].shape[-1])
        cls = [cls[i] for i in order]
        reg_order = sorted(range(3), key=lambda i: -reg[i].shape[-2] * reg[i].shape[-1])
        reg = [reg[i] for i in reg_order]
        expected = level_shapes(input_hw, cfg.strides)
        got = [tuple(c.shape[-2:]) for c in cls]
        if got != [tuple(e) for e in expected] or [tuple(r.shape[-2:]) for r in reg] != got:
            raise ModelError(
                f"{self.path}: per-level maps of sizes {got} do not match input {input_hw} with strides "
                f"{tuple(cfg.strides)} (expected {expected})"
            )
        return decode_raw_levels(cls, reg, lbs, cfg)
