"""RTMPose (SimCC) top-down 2D pose stage: frame + person boxes -> COCO keypoints, torch-free.

``PoseEstimator(engine)(frame, boxes)`` reproduces mmpose's ``inference_topdown`` for RTMPose models
(docs/MMPOSE_BEHAVIOUR.md, RTMPose): :mod:`pose3d_rt.rtmpose.topdown` crops and normalises every box (one batch
per frame), the engine runs the batch (originals and, with ``flip_test``, their horizontal flips in the same
call), :mod:`pose3d_rt.rtmpose.simcc` merges the flip and decodes, and the crop coordinates are mapped back to
image pixels. :func:`parse_pose_engine` checks that the engine is a SimCC model and reads its configuration.

Engine metadata keys (string values, all optional; explicit constructor arguments win):

=======================  ==================================================================================
key                      meaning (default)
=======================  ==================================================================================
``family``               must be ``rtmpose`` when present
``input_size``           network input ``"H,W"`` (the static ONNX input shape)
``mean`` / ``std``       3 comma-separated floats in the network's channel order (mmpose RGB values)
``channel_order``        ``rgb`` or ``bgr``: order of the network input planes (``rgb``, as mmpose)
``normalize_in_graph``   ``1``/``true``: mean/std are folded into the graph, feed float pixels (``0``)
``simcc_split_ratio``    bins per input pixel (output last dim / input dim, else 2.0)
``dataset``              keypoint set, e.g. ``coco`` (``coco`` when the model has 17 keypoints)
=======================  ==================================================================================

mmdeploy files carry none of them and get the mmpose RTMPose values (docs/MMPOSE_BEHAVIOUR.md, ONNX
metadata).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..engines.base import describe_io, static_dim
from ..errors import InputError, ModelError
from ..frames import check_frame
from ..keypoint_sets import KeypointDataset, get_dataset
from ..metadata import meta_bool, meta_floats
from .simcc import DEFAULT_SPLIT_RATIO, decode_simcc, merge_flip
from .topdown import (
    BBOX_PADDING,
    RTMPOSE_MEAN_RGB,
    RTMPOSE_STD_RGB,
    WARP_METHODS,
    TopdownBatch,
    crop_to_image,
    preprocess,
)

logger = logging.getLogger(__name__)

Boxes = Union[np.ndarray, Sequence[Sequence[float]], None]


@dataclass
class Poses2D:
    """2D poses of one frame: ``keypoints`` (N, K, 2) float32 image pixels, ``scores`` (N, K) float32 raw SimCC
    scores (``<= 0`` marks an invalid keypoint), ``boxes`` (N, 4) float32 xyxy boxes the crops came from."""

    keypoints: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, np.float32)
        self.scores = np.asarray(self.scores, np.float32)
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        n = self.boxes.shape[0]
        if self.keypoints.ndim != 3 or self.keypoints.shape[0] != n or self.keypoints.shape[2] != 2:
            raise ValueError(f"Poses2D.keypoints must have shape ({n}, K, 2), got {self.keypoints.shape}")
        if self.scores.shape != self.keypoints.shape[:2]:
            raise ValueError(f"Poses2D.scores must have shape {self.keypoints.shape[:2]}, got {self.scores.shape}")

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @property
    def num_keypoints(self) -> int:
        return int(self.keypoints.shape[1])

    @classmethod
    def empty(cls, num_keypoints: int = 17) -> Poses2D:
        return cls(np.zeros((0, num_keypoints, 2), np.float32), np.zeros((0, num_keypoints), np.float32),
                   np.zeros((0, 4), np.float32))


@dataclass(frozen=True)
class PoseModelConfig:
    """What the runtime needs to know about a SimCC pose engine (from its metadata and tensor shapes)."""

    input_size: Tuple[int, int]  # (w, h)
    mean: Tuple[float, float, float]  # in the network's channel order
    std: Tuple[float, float, float]
    channel_order: str
    normalize: bool  # False if normalisation is folded into the graph
    split_ratio: float
    num_keypoints: Optional[int]
    dataset: Optional[KeypointDataset]
    input_name: str
    output_x: str
    output_y: str
    static_batch: Optional[int]  # the engine's fixed batch size, if any


_EXPECTED = "1 input (N, 3, H, W) and 2 outputs simcc_x (N, K, 2W), simcc_y (N, K, 2H)"


def _check_layout(engine: Any, source: str, meta: Mapping[str, str]) -> Tuple[Any, Any, Any]:
    """The input spec and the x/y output specs of a SimCC model, or :class:`ModelError` saying what it is."""
    ins = list(getattr(engine, "inputs", ()) or ())
    outs = list(getattr(engine, "outputs", ()) or ())
    found = describe_io(engine)
    family = meta.get("family", "").strip().lower()
    if family and family != "rtmpose":
        raise ModelError(f"{source}: metadata family={meta['family']!r}, expected 'rtmpose' for a 2D pose model "
                         f"({found})")
    names = [getattr(o, "name", "") for o in outs]
    if {"dets", "labels"} <= set(names) or any(n.startswith(("cls_score", "bbox_pred")) for n in names) or \
            {"boxes", "scores"} <= set(names):
        raise ModelError(f"{source}: expected a SimCC pose model with {_EXPECTED}; got a detector with outputs "
                         f"{', '.join(names)}")
    if len(ins) != 1 or len(outs) != 2:
        raise ModelError(f"{source}: expected a SimCC pose model with {_EXPECTED}; found {found}")
    ishape = tuple(ins[0].shape)
    if len(ishape) != 4 or (static_dim(ishape[1]) not in (None, 3)):
        raise ModelError(f"{source}: expected input (N, 3, H, W); found {found}")
    if "simcc_x" in names and "simcc_y" in names:
        ox, oy = outs[names.index("simcc_x")], outs[names.index("simcc_y")]
    else:
        ox, oy = outs
        logger.debug("%s: outputs not named simcc_x/simcc_y; using output order %s, %s", source, ox.name, oy.name)
    if len(tuple(ox.shape)) != 3 or len(tuple(oy.shape)) != 3:
        raise ModelError(f"{source}: expected a SimCC pose model with {_EXPECTED}; found {found}")
    if any(static_dim(d) == 0 for spec in (ins[0], ox, oy) for d in spec.shape):
        raise ModelError(f"{source}: a tensor has a zero-size dimension; found {found}")
    return ins[0], ox, oy


def _input_hw(meta: Mapping[str, str], ishape: Tuple[Any, ...], source: str, found: str) -> Tuple[int, int]:
    """The crop (H, W): the ``input_size`` metadata, which must agree with the static input shape, else that."""
    static_hw = (static_dim(ishape[2]), static_dim(ishape[3]))
    size = meta_floats(meta, "input_size", 2, source)
    if size is not None:
        if any(v <= 0 or v != int(v) for v in size):
            raise ModelError(f"{source}: metadata input_size={meta['input_size']!r}: expected 'H,W'")
        hw = (int(size[0]), int(size[1]))
        if any(s is not None and s != v for s, v in zip(static_hw, hw)):
            raise ModelError(f"{source}: metadata input_size={meta['input_size']!r} (H,W) disagrees with the "
                             f"input shape {ishape}")
        return hw
    if None in static_hw:
        raise ModelError(f"{source}: the input has a dynamic H/W and no input_size metadata; cannot tell the "
                         f"crop size ({found})")
    return static_hw[0], static_hw[1]


def _split_ratio(meta: Mapping[str, str], bins: Tuple[Optional[int], Optional[int]], hw: Tuple[int, int],
                 source: str, found: str) -> float:
    """SimCC bins per input pixel: the metadata, else the static x bins / W; both outputs must agree with it."""
    (wx, wy), (h, w) = bins, hw
    ratio_meta = meta_floats(meta, "simcc_split_ratio", 1, source)
    if ratio_meta is not None:
        ratio = ratio_meta[0]
        if ratio <= 0:
            raise ModelError(f"{source}: metadata simcc_split_ratio={meta['simcc_split_ratio']!r} must be > 0")
    elif wx is not None:
        ratio = wx / w
    else:
        ratio = DEFAULT_SPLIT_RATIO
        logger.debug("%s: SimCC output width is dynamic and no simcc_split_ratio metadata; using %s", source, ratio)
    if ratio_meta is None and wx is not None and wy is not None and wy != int(h * ratio):
        raise ModelError(
            f"{source}: SimCC outputs must have Wx = r*W x-bins and Wy = r*H y-bins; their bins per input pixel "
            f"disagree (x: {wx}/{w} = {wx / w:g}, y: {wy}/{h} = {wy / h:g}); found {found}")
    if (wx is not None and wx != int(w * ratio)) or (wy is not None and wy != int(h * ratio)):
        raise ModelError(
            f"{source}: SimCC outputs must have {int(w * ratio)} x-bins and {int(h * ratio)} y-bins for a {w}x{h} "
            f"input (split ratio {ratio:g}); found {found}")
    return float(ratio)


def _keypoint_set(dataset: Union[str, KeypointDataset, None], meta: Mapping[str, str], k: Optional[int],
                  source: str) -> Optional[KeypointDataset]:
    """The keypoint set: the argument, else the ``dataset`` metadata, else COCO for 17 (or unknown) keypoints."""
    ds: Optional[KeypointDataset]
    if dataset is not None:
        ds = get_dataset(dataset) if not isinstance(dataset, KeypointDataset) else dataset
    elif meta.get("dataset", "").strip():
        try:
            ds = get_dataset(meta["dataset"])
        except KeyError as e:
            raise ModelError(f"{source}: metadata dataset={meta['dataset']!r}: {e.args[0]}") from None
    elif k in (None, 17):
        ds = get_dataset("coco")
    else:
        ds = None
        logger.warning("%s: %d keypoints and no 'dataset' metadata; keypoint names/flip pairs unknown", source, k)
    if ds is not None and k is not None and ds.num_keypoints != k:
        raise ModelError(f"{source}: the model has {k} keypoints but dataset {ds.name!r} has {ds.num_keypoints}")
    return ds


def _normalisation(meta: Mapping[str, str], source: str) -> Tuple[str, Tuple[float, ...], Tuple[float, ...]]:
    """``(channel_order, mean, std)`` of the network input, mmpose's RGB values by default."""
    order = meta.get("channel_order", "rgb").strip().lower() or "rgb"
    if order not in ("rgb", "bgr"):
        raise ModelError(f"{source}: metadata channel_order={meta['channel_order']!r}: expected 'rgb' or 'bgr'")
    mean = meta_floats(meta, "mean", 3, source) or (RTMPOSE_MEAN_RGB if order == "rgb" else RTMPOSE_MEAN_RGB[::-1])
    std = meta_floats(meta, "std", 3, source) or (RTMPOSE_STD_RGB if order == "rgb" else RTMPOSE_STD_RGB[::-1])
    if any(v == 0 for v in std):
        raise ModelError(f"{source}: metadata std={meta.get('std')!r} contains 0")
    return order, tuple(mean), tuple(std)


def parse_pose_engine(engine: Any, dataset: Union[str, KeypointDataset, None] = None) -> PoseModelConfig:
    """Validate that ``engine`` looks like an RTMPose SimCC model and read its configuration.

    Expects one input (N, 3, H, W) and two outputs (N, K, Wx), (N, K, Wy) with ``Wx = r*W``, ``Wy = r*H``
    (named ``simcc_x``/``simcc_y``, else taken in that order). Raises :class:`ModelError` naming the file, what
    was expected and what was found.
    """
    source = str(getattr(engine, "path", "<engine>"))
    meta = {str(k): str(v) for k, v in (getattr(engine, "metadata", None) or {}).items()}
    spec_in, ox, oy = _check_layout(engine, source, meta)
    found = describe_io(engine)
    ishape = tuple(spec_in.shape)
    h, w = _input_hw(meta, ishape, source, found)
    ratio = _split_ratio(meta, (static_dim(tuple(ox.shape)[2]), static_dim(tuple(oy.shape)[2])), (h, w),
                         source, found)
    kx, ky = static_dim(tuple(ox.shape)[1]), static_dim(tuple(oy.shape)[1])
    if kx is not None and ky is not None and kx != ky:
        raise ModelError(f"{source}: simcc_x and simcc_y disagree on the number of keypoints; found {found}")
    k = kx if kx is not None else ky
    ds = _keypoint_set(dataset, meta, k, source)
    order, mean, std = _normalisation(meta, source)
    return PoseModelConfig(
        input_size=(w, h), mean=mean, std=std, channel_order=order,
        normalize=not meta_bool(meta, "normalize_in_graph", source), split_ratio=ratio,
        num_keypoints=k if k is not None else (ds.num_keypoints if ds is not None else None), dataset=ds,
        input_name=spec_in.name, output_x=ox.name, output_y=oy.name, static_batch=static_dim(ishape[0]),
    )


class PoseEstimator:
    """Top-down SimCC 2D pose estimation with one engine (``.run/.inputs/.outputs/.metadata/.path``).

    - ``flip_test``: also run the horizontally flipped crops (in the same engine call) and average (mmpose
      configs do this by default; mmdeploy/rtmlib do not).
    - ``whole_image_if_empty``: with no boxes, estimate one person on the whole image (mmpose
      ``inference_topdown``); otherwise return no poses.
    - ``max_batch``: at most this many crops per engine call (flipped copies included); a static engine batch
      size overrides it (the last call is zero-padded).
    - ``warp_method``: ``"fixed_point"`` (bit-exact with mmpose/OpenCV 4.x) or ``"opencv"`` (see
      :mod:`pose3d_rt.rtmpose.topdown`).
    - ``dataset``, ``input_size`` (w, h), ``split_ratio``: override what the engine metadata says.
    """

    def __init__(self, engine: Any, *, flip_test: bool = False, whole_image_if_empty: bool = False,
                 max_batch: int = 64, padding: float = BBOX_PADDING, warp_method: str = "fixed_point",
                 dataset: Union[str, KeypointDataset, None] = None, input_size: Optional[Tuple[int, int]] = None,
                 split_ratio: Optional[float] = None) -> None:
        for attr in ("run", "inputs", "outputs"):
            if not hasattr(engine, attr):
                raise ModelError(f"PoseEstimator needs an Engine (with .run/.inputs/.outputs), got {type(engine).__name__}")
        if int(max_batch) < 1:
            raise InputError(f"max_batch must be >= 1, got {max_batch}")
        if warp_method not in WARP_METHODS:
            raise InputError(f"warp_method must be one of {WARP_METHODS}, got {warp_method!r}")
        if not padding > 0:
            raise InputError(f"padding must be > 0, got {padding}")
        self.engine = engine
        cfg = parse_pose_engine(engine, dataset)
        if input_size is not None:
            w, h = (int(v) for v in input_size)
            if cfg.input_size != (w, h):
                raise ModelError(f"{engine.path}: input_size {(w, h)} given but the model takes {cfg.input_size} (w, h)")
        if split_ratio is not None:
            cfg = replace(cfg, split_ratio=float(split_ratio))
        if flip_test and cfg.dataset is None:
            raise ModelError(f"{engine.path}: flip_test needs the keypoint dataset (flip pairs); pass dataset=... "
                             f"or add 'dataset' metadata")
        self.config = cfg
        self.flip_test = bool(flip_test)
        self.whole_image_if_empty = bool(whole_image_if_empty)
        self.max_batch = int(max_batch) if cfg.static_batch is None else cfg.static_batch
        self.padding = float(padding)
        self.warp_method = warp_method

    # -- properties --------------------------------------------------------------------------------------------
    @property
    def input_size(self) -> Tuple[int, int]:
        """(w, h) of the crops."""
        return self.config.input_size

    @property
    def dataset(self) -> Optional[KeypointDataset]:
        return self.config.dataset

    @property
    def dataset_name(self) -> str:
        return self.config.dataset.name if self.config.dataset is not None else "unknown"

    @property
    def num_keypoints(self) -> int:
        return int(self.config.num_keypoints or 17)

    # -- stages ------------------------------------------------------------------------------------------------
    def preprocess(self, frame: np.ndarray, boxes: Boxes = None, keep_crops: bool = False) -> TopdownBatch:
        """Frame + boxes -> the batched network input and crop geometry."""
        frame = check_frame(frame)
        try:
            return preprocess(frame, boxes, self.config.input_size, self.config.mean, self.config.std,
                              channel_order=self.config.channel_order, normalize=self.config.normalize,
                              padding=self.padding, whole_image_if_empty=self.whole_image_if_empty,
                              warp_method=self.warp_method, keep_crops=keep_crops)
        except ValueError as e:
            raise InputError(str(e)) from None

    def _run(self, x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Run the engine on (M, 3, h, w) in calls of at most ``max_batch`` rows (padded for static batches)."""
        cfg = self.config
        xs, ys = [], []
        step = self.max_batch
        for s in range(0, x.shape[0], step):
            part = x[s:s + step]
            n = part.shape[0]
            if cfg.static_batch is not None and n < cfg.static_batch:
                part = np.concatenate([part, np.zeros((cfg.static_batch - n,) + part.shape[1:], part.dtype)])
            out = self.engine.run({cfg.input_name: np.ascontiguousarray(part)})
            try:
                sx, sy = np.asarray(out[cfg.output_x]), np.asarray(out[cfg.output_y])
            except KeyError:
                raise ModelError(f"{self.engine.path}: engine returned outputs {sorted(out)}; expected "
                                 f"{cfg.output_x}, {cfg.output_y}") from None
            w, h = cfg.input_size
            k = cfg.num_keypoints
            for arr, bins, name in ((sx, int(w * cfg.split_ratio), cfg.output_x), (sy, int(h * cfg.split_ratio), cfg.output_y)):
                if arr.ndim != 3 or arr.shape[0] != part.shape[0] or arr.shape[2] != bins or (k is not None and arr.shape[1] != k):
                    raise ModelError(f"{self.engine.path}: output {name} has shape {arr.shape}; expected "
                                     f"({part.shape[0]}, {k if k is not None else 'K'}, {bins})")
            xs.append(sx[:n])
            ys.append(sy[:n])
        return np.concatenate(xs), np.concatenate(ys)

    def forward(self, inputs: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Network input (N, 3, h, w) -> SimCC (N, K, Wx), (N, K, Wy) float32, flip-merged with ``flip_test``.

        With flip test, each group of persons goes to the engine together with its flipped copies (originals
        first), so one call serves up to ``max_batch // 2`` persons.
        """
        n = inputs.shape[0]
        if n == 0:
            w, h = self.config.input_size
            k, r = self.num_keypoints, self.config.split_ratio
            return np.zeros((0, k, int(w * r)), np.float32), np.zeros((0, k, int(h * r)), np.float32)
        if not self.flip_test:
            sx, sy = self._run(inputs)
            return sx.astype(np.float32, copy=False), sy.astype(np.float32, copy=False)
        per_call = max(1, self.max_batch // 2)
        mx, my = [], []
        flip_idx = self.config.dataset.flip_indices
        for s in range(0, n, per_call):
            part = inputs[s:s + per_call]
            m = part.shape[0]
            sx, sy = self._run(np.concatenate([part, part[..., ::-1]]))
            sx, sy = sx.astype(np.float32, copy=False), sy.astype(np.float32, copy=False)
            x, y = merge_flip(sx[:m], sy[:m], sx[m:], sy[m:], flip_idx)
            mx.append(x)
            my.append(y)
        return np.concatenate(mx), np.concatenate(my)

    def postprocess(self, simcc_x: np.ndarray, simcc_y: np.ndarray, batch: TopdownBatch) -> Poses2D:
        """Decode SimCC and map the keypoints from crop to image pixels."""
        kc, scores = decode_simcc(simcc_x, simcc_y, self.config.split_ratio)
        kp = crop_to_image(kc, batch.centers, batch.scales, batch.input_size)
        return Poses2D(kp, scores, batch.boxes)

    def __call__(self, frame: np.ndarray, boxes: Boxes = None) -> Poses2D:
        """``frame`` (H, W, 3) BGR uint8 and person ``boxes`` (N, 4) xyxy pixels -> :class:`Poses2D` (N persons,
        in box order). Large crowds are processed in chunks of ``max_batch`` crops."""
        batch = self.preprocess(frame, boxes)
        if len(batch) == 0:
            return Poses2D.empty(self.num_keypoints)
        sx, sy = self.forward(batch.inputs)
        return self.postprocess(sx, sy, batch)


__all__ = ["Poses2D", "PoseModelConfig", "PoseEstimator", "parse_pose_engine"]
