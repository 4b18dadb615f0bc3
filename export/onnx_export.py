"""Official OpenMMLab checkpoints (.pth) -> ONNX, with the metadata the runtime reads.

``export_onnx(checkpoint, output)`` detects the family (RTMDet, RTMPose, VideoPose3D TCN in mmpose or original
layout) and the variant from the weights, loads them strictly into the PyTorch definitions of
``pose3d_rt.export.models``, exports with the TorchScript-based exporter (opset 17 by default), checks the graph
with ``onnx.checker`` and writes the file atomically.

Graphs:

| family | input | outputs |
|---|---|---|
| rtmdet | ``input`` (N, 3, H, W) float32, BGR, mean/std-normalised | ``boxes`` (N, A, 4) xyxy in input pixels (priors offset 0, not clipped), ``scores`` (N, A, C) sigmoid; A = all priors of strides 8/16/32 in row-major level order; NMS stays on the host |
| rtmpose | ``input`` (N, 3, H, W) float32, RGB, normalised | ``simcc_x`` (N, K, W*r), ``simcc_y`` (N, K, H*r) |
| tcn, strided | ``keypoints`` (N, RF, 17, 2) codec-normalised 2D | ``keypoints_3d`` (N, 1, 17, 3) |
| tcn, dilated | ``keypoints`` (N, T, 17, 2), T >= RF | ``keypoints_3d`` (N, T - RF + 1, 17, 3) |

Metadata (``metadata_props``; every value a string, lists comma-joined):

| key | families | meaning |
|---|---|---|
| ``family``, ``variant`` | all | ``rtmdet`` / ``rtmpose`` / ``tcn``; the detected variant |
| ``input_size`` | rtmdet, rtmpose | ``H,W`` of the network input |
| ``mean``, ``std``, ``channel_order`` | rtmdet, rtmpose | normalisation in the network's channel order (``bgr`` / ``rgb``) |
| ``output_format``, ``strides``, ``score_thr``, ``nms_iou_thr``, ``nms_pre``, ``max_per_img``, ``num_classes`` | rtmdet | decode and test_cfg defaults |
| ``simcc_split_ratio``, ``dataset``, ``num_keypoints`` | rtmpose | SimCC bins per pixel, keypoint set |
| ``receptive_field``, ``causal``, ``form``, ``input_joint_order``, ``dataset`` | tcn | the lifter's window |
| ``source_sha256``, ``source_name``, ``exporter``, ``exporter_version``, ``metadata_version``, ``opset`` | all | provenance |
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

from ..engines.errors import ModelError, Pose3DError
from .checkpoint import detect_family, file_sha256, load_checkpoint

log = logging.getLogger(__name__)

PathLike = Union[str, Path]
METADATA_VERSION = "1"
DET_MEAN_BGR = (103.53, 116.28, 123.675)
DET_STD_BGR = (57.375, 57.12, 58.395)
POSE_MEAN_RGB = (123.675, 116.28, 103.53)
POSE_STD_RGB = (58.395, 57.12, 57.375)
# test_cfg of the person detectors (rtmdet.md §11); the COCO-80 configs use other values, given by the variant.
PERSON_TEST_CFG = {"score_thr": 0.05, "nms_iou_thr": 0.6, "nms_pre": 1000, "max_per_img": 100}
COCO_TEST_CFG = {"score_thr": 0.001, "nms_iou_thr": 0.65, "nms_pre": 30000, "max_per_img": 300}


def _csv(values) -> str:
    return ",".join(f"{float(v):g}" if isinstance(v, float) else str(v) for v in values)


def _version() -> str:
    from .._version import __version__

    return __version__


class RTMDetExport(nn.Module):
    """RTMDet + host-friendly decoding: per-level raw maps -> boxes (input pixels) and sigmoid scores."""

    def __init__(self, model: nn.Module, input_hw: Tuple[int, int]) -> None:
        super().__init__()
        self.model = model
        strides = tuple(int(s) for s in getattr(model, "strides", (8, 16, 32)))
        self.strides = strides
        h, w = input_hw
        priors = []
        for s in strides:
            fh, fw = -(-h // s), -(-w // s)
            ys, xs = np.meshgrid(np.arange(fh) * s, np.arange(fw) * s, indexing="ij")
            priors.append(np.stack([xs.ravel(), ys.ravel()], 1))
        self.register_buffer("priors", torch.from_numpy(np.concatenate(priors).astype(np.float32)), persistent=False)

    def forward(self, x: torch.Tensor):
        outs = self.model(x)
        n = len(self.strides)
        cls, reg = outs[:n], outs[n:]
        scores = torch.cat([c.permute(0, 2, 3, 1).flatten(1, 2) for c in cls], 1).sigmoid()
        dist = torch.cat([r.permute(0, 2, 3, 1).flatten(1, 2) for r in reg], 1)
        p = self.priors
        boxes = torch.cat([p - dist[..., :2], p + dist[..., 2:]], -1)
        return boxes, scores


def _detector_metadata(model: nn.Module, variant: str, input_hw: Tuple[int, int], num_classes: int) -> Dict[str, str]:
    test_cfg = PERSON_TEST_CFG if num_classes == 1 else COCO_TEST_CFG
    return {
        "family": "rtmdet", "variant": variant, "input_size": _csv(input_hw),
        "mean": _csv(DET_MEAN_BGR), "std": _csv(DET_STD_BGR), "channel_order": "bgr",
        "output_format": "boxes_scores", "strides": _csv(getattr(model, "strides", (8, 16, 32))),
        "num_classes": str(num_classes), **{k: str(v) for k, v in test_cfg.items()},
    }


def _build(family: str, state_dict, arch: Optional[str], form: Optional[str], source: Path):
    """-> (module to export, input name, example input, output names, dynamic axes, metadata)."""
    if family == "rtmdet":
        from .models import rtmdet

        model, variant = rtmdet.load_model(state_dict, arch=arch)
        cfg = rtmdet.VARIANTS.get(variant) if hasattr(rtmdet, "VARIANTS") else None
        input_hw = tuple(getattr(cfg, "input_size", None) or getattr(model, "input_size", None) or (640, 640))
        num_classes = int(state_dict["bbox_head.rtm_cls.0.weight"].shape[0])
        module = RTMDetExport(model, input_hw).eval()
        example = torch.zeros(1, 3, *input_hw)
        meta = _detector_metadata(model, variant, input_hw, num_classes)
        return module, "input", example, ["boxes", "scores"], meta
    if family == "rtmpose":
        from .models import rtmpose

        model, variant = rtmpose.load_model(state_dict, arch=arch)
        cfg = rtmpose.VARIANTS.get(variant) if hasattr(rtmpose, "VARIANTS") else None
        wx = int(state_dict["head.cls_x.weight"].shape[0])
        wy = int(state_dict["head.cls_y.weight"].shape[0])
        k = int(state_dict["head.final_layer.weight"].shape[0]) if "head.final_layer.weight" in state_dict else 17
        input_hw = tuple(getattr(cfg, "input_size", None) or getattr(model, "input_size", None) or (256, 192))
        ratio = wx / input_hw[1]
        if abs(wy / input_hw[0] - ratio) > 1e-6:
            raise ModelError(f"{source}: SimCC bins {wx}x{wy} do not match the input size {input_hw} of {variant}")
        example = torch.zeros(1, 3, *input_hw)
        dataset = "coco" if k == 17 else ("coco_wholebody" if k == 133 else f"k{k}")
        meta = {"family": "rtmpose", "variant": variant, "input_size": _csv(input_hw), "mean": _csv(POSE_MEAN_RGB),
                "std": _csv(POSE_STD_RGB), "channel_order": "rgb", "simcc_split_ratio": f"{ratio:g}",
                "dataset": dataset, "num_keypoints": str(k)}
        return model.eval(), "input", example, ["simcc_x", "simcc_y"], meta
    if family in ("tcn", "videopose3d_original"):
        from .models import tcn

        order = tcn.guess_input_joint_order(source.name, family)
        model, variant = tcn.load_model(state_dict, arch=arch, form=form or "strided", input_joint_order=order)
        rf = int(model.receptive_field)
        t = rf if (form or "strided") == "strided" else rf + 16
        example = torch.zeros(1, t, model.num_joints, 2)
        meta = {"family": "tcn", "variant": variant, "receptive_field": str(rf),
                "causal": str(bool(model.causal)).lower(), "form": form or "strided",
                "input_joint_order": order, "dataset": "h36m", "num_keypoints": str(model.num_joints)}
        return model.eval(), "keypoints", example, ["keypoints_3d"], meta
    raise ModelError(f"{source}: unsupported model family {family!r}")


def export_onnx(checkpoint: PathLike, output: PathLike, arch: Optional[str] = None, opset: int = 17,
                batch: Union[str, int] = "dynamic", nms: bool = False, form: Optional[str] = None) -> Path:
    """Export an official checkpoint to ONNX; returns the written path. See the module docstring."""
    src, out = Path(checkpoint), Path(output)
    if nms:
        raise Pose3DError("--nms (in-graph NonMaxSuppression) is not implemented yet; export without it "
                          "(the runtime does NMS on the host)")
    if form is not None and form not in ("strided", "dilated"):
        raise Pose3DError(f"--form must be 'strided' or 'dilated', got {form!r}")
    if not (batch == "dynamic" or (isinstance(batch, int) and batch >= 1)):
        raise Pose3DError(f"--batch must be 'dynamic' or a positive integer, got {batch!r}")
    t0 = time.perf_counter()
    state_dict, _meta = load_checkpoint(src)
    family = detect_family(state_dict)
    if form is not None and family not in ("tcn", "videopose3d_original"):
        raise Pose3DError(f"{src}: --form applies to lifters only; this is a {family} checkpoint")
    module, in_name, example, out_names, meta = _build(family, state_dict, arch, form, src)
    if isinstance(batch, int):
        example = example.expand(batch, *example.shape[1:]).contiguous()
    dynamic: Dict[str, Dict[int, str]] = {}
    if batch == "dynamic":
        dynamic[in_name] = {0: "batch"}
        for o in out_names:
            dynamic[o] = {0: "batch"}
    if meta.get("form") == "dilated":
        dynamic.setdefault(in_name, {})[1] = "time"
        dynamic.setdefault(out_names[0], {})[1] = "time_out"
    meta.update({"source_sha256": file_sha256(src), "source_name": src.name, "exporter": "pose3d-rt",
                 "exporter_version": _version(), "metadata_version": METADATA_VERSION, "opset": str(opset),
                 "batch": str(batch)})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part")
    try:
        with torch.no_grad():
            torch.onnx.export(module, (example,), str(tmp), input_names=[in_name], output_names=out_names,
                              dynamic_axes=dynamic or None, opset_version=opset, do_constant_folding=True,
                              dynamo=False)
        import onnx

        model = onnx.load(str(tmp))
        del model.metadata_props[:]
        for k, v in meta.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = k, str(v)
        onnx.checker.check_model(model)
        onnx.save(model, str(tmp))
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    log.info("exported %s (%s %s) to %s in %.1f s", src.name, meta["family"], meta["variant"], out,
             time.perf_counter() - t0)
    return out
