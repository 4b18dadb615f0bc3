"""From the fields of OpenMMLab configs (:class:`~pose3d_rt.mmconfig.summary.ModelConfig`) to pipeline options.

The ``demo`` command reads the mmpose demo's three configs; :func:`pipeline_options` turns what they say into
keyword arguments of :class:`~pose3d_rt.pipeline.Pose3DPipeline`, and :func:`model_mismatches` lists where a config
and the loaded model disagree (the model is what runs; the caller logs the messages as warnings).

Both take ``configs = {"detector": ModelConfig | None, "pose2d": ..., "lifter": ...}`` (a missing key is None).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from .summary import ModelConfig

#: ``ModelConfig`` field of the detector config -> ``Pose3DPipeline`` option.
_DETECTOR_OPTIONS = (
    ("score_thr", "det_score_thr"),
    ("nms_iou_threshold", "det_nms_iou_thr"),
    ("nms_pre", "det_nms_pre"),
    ("max_per_img", "det_max_per_img"),
)


def pipeline_options(configs: Dict[str, Optional[ModelConfig]], flip_test_flag: Optional[bool]) -> Dict[str, Any]:
    """``Pose3DPipeline`` options taken from the configs.

    ``flip_test_flag`` is the user's ``--flip-test``/``--no-flip-test`` (None when not given); the user's flag wins
    over the pose config's ``flip_test``, so that option is only set here when the flag is None.
    """
    out: Dict[str, Any] = {}
    det, pose, lift = configs.get("detector"), configs.get("pose2d"), configs.get("lifter")
    if det is not None:
        for src, dst in _DETECTOR_OPTIONS:
            value = getattr(det, src)
            if value is not None:
                out[dst] = value
    if pose is not None and pose.flip_test is not None and flip_test_flag is None:
        out["flip_test"] = bool(pose.flip_test)
    if lift is not None and lift.causal is not None:
        out["causal"] = bool(lift.causal)
    return out


def _detector_mismatch(det: Optional[ModelConfig], pipe: Any) -> Optional[str]:
    if det is None or det.input_size is None:
        return None
    hw = tuple(pipe.detector.input_hw)
    if (hw[1], hw[0]) == tuple(det.input_size):
        return None
    return (f"detector config {det.source} says input size {'x'.join(map(str, det.input_size))} "
            f"but the model takes {hw[1]}x{hw[0]}; using the model's")


def _pose_mismatch(pose: Optional[ModelConfig], pipe: Any) -> Optional[str]:
    if pose is None or pose.input_size is None:
        return None
    size = getattr(pipe.pose2d, "input_size", None)
    if size is None or tuple(size) == tuple(pose.input_size):
        return None
    return (f"pose config {pose.source} says input size {tuple(pose.input_size)} "
            f"but the model takes {tuple(size)}; using the model's")


def _lifter_mismatch(lift: Optional[ModelConfig], pipe: Any) -> Optional[str]:
    if lift is None:
        return None
    spec = pipe.lifter_spec
    if spec is None:
        return None
    rf = int(spec.receptive_field)
    want = lift.seq_len if lift.seq_len and lift.seq_len > 1 else lift.receptive_field
    if want is None or rf == int(want):
        return None
    return (f"lifter config {lift.source} says {int(want)} frames but the checkpoint's receptive field is {rf}; "
            f"using {rf}")


def model_mismatches(configs: Dict[str, Optional[ModelConfig]], pipe: Any) -> List[str]:
    """Where a config and the model loaded by ``pipe`` (a ``Pose3DPipeline``) disagree, one message each.

    Checked: the detector's and the pose model's input size, and the lifter's ``seq_len`` (else the receptive field
    of its ``kernel_sizes``) against the checkpoint's receptive field. The model wins; the caller logs these.
    """
    found = (
        _detector_mismatch(configs.get("detector"), pipe),
        _pose_mismatch(configs.get("pose2d"), pipe),
        _lifter_mismatch(configs.get("lifter"), pipe),
    )
    return [msg for msg in found if msg is not None]


__all__ = ["pipeline_options", "model_mismatches"]
