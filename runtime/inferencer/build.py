"""Building the ``pose3d-rt inferencer`` models on engines, for either mode.

- ``mode="mmpose"``: :class:`~.mmpose_mode.InferencerMMPose` over a square-letterbox RTMDet, an RTMPose with the
  config's flip test (on by default, as the RTMPose configs) and mmpose's fixed-point crop warp, and the lifter
  engine (exported for per-frame windows).
- ``mode="default"``: a :class:`~pose3d_rt.pipeline.Pose3DPipeline` with mode ``default`` and the lifter (the
  normal pipeline: real tracking; MotionBERT lifts clips with the 2D scores as its third channel). The Inferencer's
  extra box NMS is not applied (the detector's own NMS is), and one class id is kept.

Detector post-processing thresholds and the pose model's ``flip_test`` come from the configs when given as ``.py``
files (:func:`pose3d_rt.mmconfig.pipeline_options`), as in ``pose3d-rt demo``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, Optional

from ..errors import InputError, Pose3DError
from ..hub import Role, detector_export_options, lifter_export_options, resolve
from ..mmconfig import pipeline_options
from .mmpose_mode import InferencerMMPose, InferencerOptions
from .models import InferencerModels

log = logging.getLogger(__name__)

__all__ = ["EngineOptions", "build_mmpose", "build_default", "config_options"]


@dataclass
class EngineOptions:
    """Where the engines run: ``device`` (cpu, cuda[:N], tensorrt[:N], openvino[:X]), ``threads`` per model,
    ``progress`` bars for downloads."""

    device: str = "cpu"
    threads: Optional[int] = None
    progress: bool = True


def _resolve(models: InferencerModels, role: Role, arg: Any, eng: EngineOptions,
             export_options: Optional[Dict[str, Any]] = None) -> Any:
    try:
        return resolve(arg, role, device=eng.device, threads=eng.threads, export_options=export_options,
                       progress=eng.progress)
    except Pose3DError as exc:
        raise type(exc)(f"{models.flags.get(role, role.flag)}: {exc}") from None


def config_options(models: InferencerModels, flip_test: Optional[bool] = None) -> Dict[str, Any]:
    """``Pose3DPipeline`` option names -> values from the configs read (detector thresholds, pose flip test)."""
    return pipeline_options(models.configs, flip_test)


def build_mmpose(models: InferencerModels, options: InferencerOptions, eng: EngineOptions,
                 flip_test: Optional[bool] = None) -> InferencerMMPose:
    """The mmpose-mode Inferencer on engines; ``flip_test`` None = the pose config's, else on."""
    from ..rtmdet import Detector
    from ..rtmpose.estimator import PoseEstimator

    cfg = config_options(models, flip_test)
    detector = None
    if models.detector is not None:
        engine = _resolve(models, Role.DETECTOR, models.detector, eng, detector_export_options("mmpose"))
        detector = Detector(engine, score_thr=cfg.get("det_score_thr"), nms_iou_thr=cfg.get("det_nms_iou_thr"),
                            nms_pre=cfg.get("det_nms_pre"), max_per_img=cfg.get("det_max_per_img"),
                            letterbox="square")
    flip = flip_test if flip_test is not None else cfg.get("flip_test", True)
    pose2d = PoseEstimator(_resolve(models, Role.POSE2D, models.pose2d, eng), flip_test=flip,
                           warp_method="fixed_point")
    lift_cfg = models.configs.get(Role.LIFTER.value)
    if lift_cfg is not None and lift_cfg.flip_test is not None:
        options.lifter_flip_test = bool(lift_cfg.flip_test)
    if lift_cfg is not None and lift_cfg.seq_len not in (None, 1):
        log.warning("--pose3d config %s: seq_len=%s; the Inferencer parity path lifts single frames (T = 1)",
                    lift_cfg.source, lift_cfg.seq_len)
    lifter = _resolve(models, Role.LIFTER, models.lifter, eng, lifter_export_options(mode="mmpose"))
    return InferencerMMPose(detector, pose2d, lifter, options)


def build_default(models: InferencerModels, options: InferencerOptions, eng: EngineOptions, *,
                  flip_test: Optional[bool] = None, tracking_thr: float = 0.3, use_oks_tracking: bool = False,
                  online: bool = False) -> Any:
    """The default-mode pipeline (see the module docstring)."""
    from ..pipeline import Pose3DPipeline

    if models.detector is None:
        raise InputError("--det-model whole_image: default mode needs a detector (use --mode mmpose)")
    if len(options.det_cat_ids) != 1:
        raise InputError(f"--det-cat-ids {' '.join(map(str, options.det_cat_ids))}: default mode keeps one class")
    cfg = config_options(models, flip_test)
    if flip_test is not None:
        cfg["flip_test"] = flip_test
    cfg.pop("causal", None)
    return Pose3DPipeline(models.detector, models.pose2d, models.lifter, device=eng.device, mode="default",
                          threads=eng.threads, det_cat_id=int(options.det_cat_ids[0]), bbox_thr=options.bbox_thr,
                          use_oks_tracking=use_oks_tracking, tracking_thr=tracking_thr,
                          norm_pose_2d=not options.disable_norm_pose_2d,
                          rebase_keypoint=not options.disable_rebase_keypoint, online=online, **cfg)
