"""The mmlab field summary: the facts pose3d-rt uses from one OpenMMLab config, as a flat :class:`ModelConfig`.

:func:`summarize` picks the fields of one role (``detector``, ``pose2d`` or ``lifter``) from the plain dict that
:func:`~pose3d_rt.mmconfig.loader.load_config` returns, and :func:`load_optional` does both, returning None (with a
WARNING) when the config file is not on disk, so the caller falls back to the checkpoint's own metadata.
"""
from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from ..errors import InputError
from ..hub.roles import Role
from .loader import PathLike, check_py, load_config

logger = logging.getLogger(__name__)

ROLES = tuple(role.value for role in Role)  # ("detector", "pose2d", "lifter")


@dataclass
class ModelConfig:
    """The config facts pose3d-rt uses, for one model. Every field but ``role`` is None when the config is silent.

    Sizes are ``(width, height)``. Field groups: common; detector; pose2d; lifter (see :func:`summarize` for the
    exact config keys each field comes from).
    """

    role: str
    source: Optional[str] = None
    # common
    model_type: Optional[str] = None
    backbone_type: Optional[str] = None
    mean: Optional[Tuple[float, ...]] = None
    std: Optional[Tuple[float, ...]] = None
    bgr_to_rgb: Optional[bool] = None
    input_size: Optional[Tuple[int, int]] = None
    num_keypoints: Optional[int] = None
    dataset: Optional[str] = None
    dataset_type: Optional[str] = None
    flip_test: Optional[bool] = None
    codec_type: Optional[str] = None
    # detector
    keep_ratio: Optional[bool] = None
    pad_size: Optional[Tuple[int, int]] = None
    pad_value: Optional[float] = None
    num_classes: Optional[int] = None
    classes: Optional[Tuple[str, ...]] = None
    score_thr: Optional[float] = None
    nms_type: Optional[str] = None
    nms_iou_threshold: Optional[float] = None
    max_per_img: Optional[int] = None
    nms_pre: Optional[int] = None
    min_bbox_size: Optional[float] = None
    # pose2d
    simcc_split_ratio: Optional[float] = None
    heatmap_size: Optional[Tuple[int, int]] = None
    bbox_padding: Optional[float] = None
    # lifter
    seq_len: Optional[int] = None
    seq_step: Optional[int] = None
    causal: Optional[bool] = None
    backbone_causal: Optional[bool] = None
    pad_video_seq: Optional[bool] = None
    keypoint_2d_src: Optional[str] = None
    kernel_sizes: Optional[Tuple[int, ...]] = None
    receptive_field: Optional[int] = None
    num_blocks: Optional[int] = None
    in_channels: Optional[int] = None
    stem_channels: Optional[int] = None
    use_stride_conv: Optional[bool] = None
    zero_center: Optional[bool] = None
    root_index: Optional[int] = None
    remove_root: Optional[bool] = None
    reshape_keypoints: Optional[bool] = None
    concat_vis: Optional[bool] = None
    normalize_camera: Optional[bool] = None
    rootrel: Optional[bool] = None

    def known(self) -> Dict[str, Any]:
        """The fields that are set (not None), as a dict."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def __str__(self) -> str:
        items = ", ".join(f"{k}={v!r}" for k, v in self.known().items())
        return f"ModelConfig({items})"


def _get(cfg: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(cfg, dict):
            cfg = cfg.get(key)
        elif isinstance(cfg, (list, tuple)) and isinstance(key, int) and -len(cfg) <= key < len(cfg):
            cfg = cfg[key]
        else:
            return None
    return cfg


def _first(*values: Any) -> Any:
    for v in values:
        if v is not None:
            return v
    return None


def _dict(value: Any) -> Dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _as_bool(value: Any) -> Optional[bool]:
    return value if isinstance(value, bool) else None


def _as_int(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _as_float(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _as_str(value: Any) -> Optional[str]:
    return value if isinstance(value, str) else None


def _as_floats(value: Any) -> Optional[Tuple[float, ...]]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (float(value),)
    if isinstance(value, (list, tuple)) and value and all(_as_float(v) is not None for v in value):
        return tuple(float(v) for v in value)
    return None


def _as_ints(value: Any) -> Optional[Tuple[int, ...]]:
    if isinstance(value, (list, tuple)) and value and all(_as_int(v) is not None for v in value):
        return tuple(_as_int(v) for v in value)  # type: ignore[misc]
    return None


def _as_wh(value: Any) -> Optional[Tuple[int, int]]:
    """``(w, h)`` from an int (square) or a 2-sequence."""
    n = _as_int(value)
    if n is not None:
        return (n, n)
    seq = _as_ints(value)
    if seq is not None and len(seq) == 2:
        return (seq[0], seq[1])
    return None


_DATASET_NAMES = {
    "coco": "coco", "human36m": "h36m", "h36m": "h36m", "cocowholebody": "coco_wholebody", "halpe": "halpe",
    "aic": "aic", "crowdpose": "crowdpose", "mpii": "mpii", "ochuman": "ochuman", "posetrack18": "posetrack18",
    "jhmdb": "jhmdb", "ubody2d": "ubody2d", "ubody3d": "ubody3d",
}


def dataset_name(value: Optional[str]) -> Optional[str]:
    """Short dataset name from a dataset class (``'CocoDataset'`` → ``'coco'``, ``'Human36mDataset'`` → ``'h36m'``)
    or a metainfo file (``'configs/_base_/datasets/coco.py'`` → ``'coco'``). None for None/empty."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.lower().endswith(".py") or "/" in text or "\\" in text:
        return Path(text.replace("\\", "/")).stem or None
    text = text.rsplit(".", 1)[-1]  # 'mmpose.CocoDataset'
    if text.endswith("Dataset") and len(text) > len("Dataset"):
        text = text[: -len("Dataset")]
    key = text.lower().replace("_", "").replace("-", "")
    if key in _DATASET_NAMES:
        return _DATASET_NAMES[key]
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text).lower()


def _datasets(cfg: Dict[str, Any], order: Sequence[str]) -> Iterator[Dict[str, Any]]:
    for split in order:
        ds = _get(cfg, f"{split}_dataloader", "dataset")
        if isinstance(ds, dict):
            yield ds


def _dataset_of(cfg: Dict[str, Any]) -> Tuple[Optional[str], Optional[str]]:
    """(short name, class name) of the training dataset, as mmpose's ``dataset_meta_from_config`` picks it."""
    name = cls = None
    for ds in _datasets(cfg, ("train", "val", "test")):
        from_file = _as_str(_get(ds, "metainfo", "from_file"))
        ds_type = _as_str(ds.get("type"))
        cls = cls or ds_type
        if from_file:
            name = dataset_name(from_file)
        elif ds_type and ds_type.rsplit(".", 1)[-1] not in ("CombinedDataset", "RepeatDataset", "ConcatDataset"):
            name = dataset_name(ds_type)
        if name:
            break
    cls = cls or _as_str(cfg.get("dataset_type"))
    if name is None:
        name = dataset_name(_as_str(cfg.get("dataset_type")))
    return name, cls


def _pipeline_steps(steps: Any) -> Iterator[Dict[str, Any]]:
    """The transforms of a pipeline, depth-first (into ``transforms`` of wrappers such as TestTimeAug)."""
    if isinstance(steps, dict):
        yield steps
        yield from _pipeline_steps(steps.get("transforms"))
    elif isinstance(steps, (list, tuple)):
        for s in steps:
            yield from _pipeline_steps(s)


def _test_pipeline(cfg: Dict[str, Any]) -> List[Dict[str, Any]]:
    for ds in _datasets(cfg, ("test", "val")):
        for cand in (ds.get("pipeline"), _get(ds, "dataset", "pipeline")):
            if isinstance(cand, (list, tuple)) and cand:
                return list(_pipeline_steps(cand))
    for key in ("test_pipeline", "val_pipeline"):
        if isinstance(cfg.get(key), (list, tuple)) and cfg[key]:
            return list(_pipeline_steps(cfg[key]))
    cand = _get(cfg, "data", "test", "pipeline")  # mmdet/mmpose 0.x
    return list(_pipeline_steps(cand)) if isinstance(cand, (list, tuple)) else []


def _step_type(step: Dict[str, Any]) -> str:
    t = step.get("type")
    return t.rsplit(".", 1)[-1] if isinstance(t, str) else ""


def _common(cfg: Dict[str, Any], out: ModelConfig) -> None:
    model = _dict(cfg.get("model"))
    out.model_type = _as_str(model.get("type"))
    out.backbone_type = _as_str(_get(model, "backbone", "type"))
    pre = _dict(model.get("data_preprocessor"))
    norm = _dict(cfg.get("img_norm_cfg"))  # mmdet/mmpose 0.x
    out.mean = _as_floats(_first(pre.get("mean"), norm.get("mean")))
    out.std = _as_floats(_first(pre.get("std"), norm.get("std")))
    out.bgr_to_rgb = _as_bool(_first(pre.get("bgr_to_rgb"), norm.get("to_rgb")))
    out.flip_test = _as_bool(_get(model, "test_cfg", "flip_test"))
    out.dataset, out.dataset_type = _dataset_of(cfg)


def _summarize_detector(cfg: Dict[str, Any], out: ModelConfig) -> None:
    model = _dict(cfg.get("model"))
    test_cfg = _dict(model.get("test_cfg"))
    if isinstance(test_cfg.get("rcnn"), dict):  # two-stage detectors
        test_cfg = {**_dict(test_cfg.get("rpn")), **test_cfg["rcnn"]}
    out.score_thr = _as_float(test_cfg.get("score_thr"))
    nms = test_cfg.get("nms")
    if isinstance(nms, dict):
        out.nms_type = _as_str(nms.get("type"))
        out.nms_iou_threshold = _as_float(_first(nms.get("iou_threshold"), nms.get("iou_thr")))
    out.max_per_img = _as_int(test_cfg.get("max_per_img"))
    out.nms_pre = _as_int(test_cfg.get("nms_pre"))
    out.min_bbox_size = _as_float(test_cfg.get("min_bbox_size"))
    out.num_classes = _as_int(_first(_get(model, "bbox_head", "num_classes"),
                                     _get(model, "roi_head", "bbox_head", "num_classes")))
    for ds in _datasets(cfg, ("test", "val", "train")):
        classes = _get(ds, "metainfo", "classes")
        if isinstance(classes, (list, tuple)) and all(isinstance(c, str) for c in classes):
            out.classes = tuple(classes)
            break
    if out.classes is None and isinstance(cfg.get("classes"), (list, tuple)):
        if all(isinstance(c, str) for c in cfg["classes"]):
            out.classes = tuple(cfg["classes"])

    steps = _test_pipeline(cfg)
    for step in steps:
        kind = _step_type(step)
        if out.input_size is None and "Resize" in kind:
            size = _as_wh(_first(step.get("scale"), step.get("img_scale")))
            if size is not None:
                out.input_size = size
                out.keep_ratio = _as_bool(step.get("keep_ratio"))
        elif out.input_size is None and kind == "MultiScaleFlipAug":
            out.input_size = _as_wh(_first(step.get("img_scale"), step.get("scale")))
        elif kind == "Pad" and out.pad_size is None:
            out.pad_size = _as_wh(step.get("size"))
            pad_val = step.get("pad_val")
            if isinstance(pad_val, dict):
                pad_val = pad_val.get("img")
            vals = _as_floats(pad_val)
            if vals and len(set(vals)) == 1:
                out.pad_value = vals[0]
    if out.input_size is None:
        out.input_size = _as_wh(cfg.get("img_scale"))


def _summarize_pose2d(cfg: Dict[str, Any], out: ModelConfig) -> None:
    model = _dict(cfg.get("model"))
    head = _dict(model.get("head"))
    codec = _dict(head.get("decoder")) or _dict(cfg.get("codec"))
    out.codec_type = _as_str(codec.get("type"))
    steps = _test_pipeline(cfg)
    affine = next((s for s in steps if _step_type(s) in ("TopdownAffine", "TopDownAffine")), {})
    out.input_size = _as_wh(_first(codec.get("input_size"), head.get("input_size"), affine.get("input_size"),
                                    _get(cfg, "data_cfg", "image_size")))
    out.heatmap_size = _as_wh(_first(codec.get("heatmap_size"), _get(cfg, "data_cfg", "heatmap_size")))
    out.simcc_split_ratio = _as_float(_first(codec.get("simcc_split_ratio"), head.get("simcc_split_ratio")))
    out.num_keypoints = _as_int(_first(head.get("out_channels"), head.get("num_joints"), codec.get("num_keypoints")))
    center = next((s for s in steps if _step_type(s) == "GetBBoxCenterScale"), None)
    if center is not None:
        out.bbox_padding = _as_float(center.get("padding", 1.25))


def _summarize_lifter(cfg: Dict[str, Any], out: ModelConfig) -> None:
    model = _dict(cfg.get("model"))
    backbone = _dict(model.get("backbone"))
    head = _dict(model.get("head"))
    codec = _dict(head.get("decoder")) or _dict(cfg.get("codec")) or _dict(cfg.get("val_codec"))
    out.codec_type = _as_str(codec.get("type"))
    out.num_keypoints = _as_int(_first(codec.get("num_keypoints"), head.get("num_joints")))
    for name in ("zero_center", "remove_root", "reshape_keypoints", "concat_vis", "normalize_camera", "rootrel"):
        setattr(out, name, _as_bool(codec.get(name)))
    out.root_index = _as_int(codec.get("root_index"))

    out.kernel_sizes = _as_ints(backbone.get("kernel_sizes"))
    if out.kernel_sizes is not None:
        out.receptive_field = math.prod(out.kernel_sizes)
    out.num_blocks = _as_int(backbone.get("num_blocks"))
    out.in_channels = _as_int(backbone.get("in_channels"))
    out.stem_channels = _as_int(backbone.get("stem_channels"))
    out.use_stride_conv = _as_bool(backbone.get("use_stride_conv"))
    out.backbone_causal = _as_bool(backbone.get("causal"))

    # The demo and the Inferencer window the 2D history with the *test* dataset's settings.
    datasets = list(_datasets(cfg, ("test", "val", "train")))

    def from_datasets(key: str) -> Any:
        return _first(*(ds.get(key) for ds in datasets))

    out.seq_len = _as_int(_first(from_datasets("seq_len"), backbone.get("seq_len")))
    out.seq_step = _as_int(from_datasets("seq_step"))
    out.causal = _as_bool(_first(from_datasets("causal"), backbone.get("causal")))
    out.pad_video_seq = _as_bool(from_datasets("pad_video_seq"))
    out.keypoint_2d_src = _as_str(from_datasets("keypoint_2d_src"))


_SUMMARIZERS = {Role.DETECTOR: _summarize_detector, Role.POSE2D: _summarize_pose2d, Role.LIFTER: _summarize_lifter}


def summarize(cfg: Dict[str, Any], role: str, source: Optional[PathLike] = None) -> ModelConfig:
    """Pick the facts of one ``role`` (``"detector"``, ``"pose2d"`` or ``"lifter"``) from a :func:`load_config` dict.

    Common: ``model.type``, ``model.backbone.type``; ``mean``/``std``/``bgr_to_rgb`` from ``model.data_preprocessor``
    (or 0.x ``img_norm_cfg``); ``flip_test`` from ``model.test_cfg``; ``dataset`` (short name) and ``dataset_type``
    (class) from the train dataset's ``metainfo.from_file`` or ``type``, else ``dataset_type``.

    * detector: ``model.test_cfg`` (``rcnn`` for two-stage) → ``score_thr``, ``nms.iou_threshold``, ``max_per_img``,
      ``nms_pre``, ``min_bbox_size``; ``bbox_head.num_classes``; dataset ``metainfo.classes``; test pipeline
      ``Resize.scale`` (or ``img_scale``) → ``input_size``/``keep_ratio``, ``Pad`` → ``pad_size``/``pad_value``.
    * pose2d: ``model.head.decoder`` (else ``codec``) → ``codec_type``, ``input_size``, ``heatmap_size``,
      ``simcc_split_ratio``; ``head.out_channels`` → ``num_keypoints``; ``GetBBoxCenterScale.padding``.
    * lifter: ``model.backbone`` → ``kernel_sizes`` (``receptive_field`` = their product), ``num_blocks``,
      ``in_channels``, ``stem_channels``, ``use_stride_conv``, ``backbone_causal``; the codec's ``num_keypoints``,
      ``zero_center``, ``root_index``, ``remove_root``, ``reshape_keypoints``, ``concat_vis``, ``normalize_camera``,
      ``rootrel``; ``seq_len``, ``seq_step``, ``causal``, ``pad_video_seq``, ``keypoint_2d_src`` from the test
      dataset (then val, then train; ``seq_len``/``causal`` fall back to the backbone's).
    """
    if role not in _SUMMARIZERS:
        raise InputError(f"unknown model role {role!r}; expected one of {', '.join(ROLES)}")
    if not isinstance(cfg, dict):
        raise TypeError(f"summarize() needs the dict returned by load_config(), got {type(cfg).__name__}")
    out = ModelConfig(role=role, source=None if source is None else os.fspath(source))
    _common(cfg, out)
    _SUMMARIZERS[role](cfg, out)
    return out


def load_optional(path: Optional[PathLike], role: str) -> Optional[ModelConfig]:
    """:func:`summarize` of the config at ``path``, or None (with a WARNING) when no such file exists locally.

    None is also returned, silently, for ``path=None``. A file that exists but is not a ``.py`` config, or that is
    invalid, raises :class:`~pose3d_rt.errors.ConfigError`.
    """
    if role not in _SUMMARIZERS:
        raise InputError(f"unknown model role {role!r}; expected one of {', '.join(ROLES)}")
    if path is None:
        return None
    p = Path(os.fspath(path)).expanduser()
    if not p.exists():
        logger.warning("%s config %s not found locally; using the checkpoint's own metadata", role, p)
        return None
    check_py(p)
    return summarize(load_config(p), role, source=p)


__all__ = ["ModelConfig", "ROLES", "dataset_name", "load_optional", "summarize"]
