"""Official OpenMMLab checkpoints (.pth) -> ONNX, with the metadata the runtime reads.

``export_onnx(checkpoint, output)`` detects the family (RTMDet, RTMPose, VideoPose3D TCN or MotionBERT, each
in mmpose or original layout) and the variant from the weights, loads them strictly into the PyTorch definitions of
``pose3d_rt.export.models``, exports with the TorchScript-based exporter (opset 17 by default), checks the graph
with ``onnx.checker`` and writes the file atomically.

Graphs:

| family | input | outputs |
|---|---|---|
| rtmdet | ``input`` (N, 3, H, W) float32, BGR, mean/std-normalised | ``boxes`` (N, A, 4) xyxy in input pixels (priors offset 0, not clipped), ``scores`` (N, A, C) sigmoid; A = all priors of strides 8/16/32 in row-major level order; NMS stays on the host |
| rtmdet, ``nms=True`` | same | ``dets`` (N, max_per_img, 5) [x1, y1, x2, y2, score] input pixels, ``labels`` (N, max_per_img) int64; ONNX NonMaxSuppression (test_cfg thresholds, 200 per class), unused rows score 0 / label -1 |
| rtmpose | ``input`` (N, 3, H, W) float32, RGB, normalised | ``simcc_x`` (N, K, W*r), ``simcc_y`` (N, K, H*r) |
| tcn, strided | ``keypoints`` (N, RF, 17, 2) codec-normalised 2D | ``keypoints_3d`` (N, 1, 17, 3) |
| tcn, dilated | ``keypoints`` (N, T, 17, 2), T >= RF | ``keypoints_3d`` (N, T - RF + 1, 17, 3) |
| tcn, stream | ``keypoints`` (N, T, 17, 2) new frames, ``start`` (N,), ``state_in_<l>`` (N, S_l, C_l) | ``keypoints_3d`` (N, T, 17, 3) (frame t - R), ``state_out_<l>``; :mod:`~pose3d_rt.export.models.tcn_stream` |
| motionbert (mmpose or original layout) | ``keypoints`` (N, T, 17, 3) x, y, score; 1 <= T <= ``window`` | ``keypoints_3d`` (N, T, 17, 3) raw (no flip, no decode); :mod:`~pose3d_rt.export.motionbert_export` |

Metadata (``metadata_props``; every value a string, lists comma-joined):

| key | families | meaning |
|---|---|---|
| ``family``, ``variant`` | all | ``rtmdet`` / ``rtmpose`` / ``tcn``; the detected variant |
| ``input_size`` | rtmdet, rtmpose | ``H,W`` of the network input |
| ``mean``, ``std``, ``channel_order`` | rtmdet, rtmpose | normalisation in the network's channel order (``bgr`` / ``rgb``) |
| ``output_format``, ``strides``, ``score_thr``, ``nms_iou_thr``, ``nms_pre``, ``max_per_img``, ``num_classes`` | rtmdet | decode and test_cfg defaults |
| ``dynamic_hw`` (``true``) | rtmdet, ``dynamic_hw=True`` | the graph takes any H x W (multiples of 32; priors computed in-graph); ``input_size`` is then the largest side's square |
| ``simcc_split_ratio``, ``dataset``, ``num_keypoints`` | rtmpose | SimCC bins per pixel, keypoint set |
| ``receptive_field``, ``causal``, ``form``, ``input_joint_order``, ``dataset`` | tcn | the lifter's window |
| ``right_context``, ``state_shapes`` (``S x C`` per layer, ``;``-joined) | tcn, stream | output delay, state tensors |
| ``window``, ``receptive_field``, ``form`` (``seq2seq``), ``in_channels``, ``causal``, ``dataset``, ``flip_indices``, ``layernorm_eps``, ``source_layout`` | motionbert | the longest clip (``temp_embed`` length unless ``window`` is given) and the flip pairs |
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
from . import motionbert_export
from .checkpoint import detect_family, file_sha256, load_checkpoint

log = logging.getLogger(__name__)

PathLike = Union[str, Path]
METADATA_VERSION = "1"
LIFTER_FORMS = ("strided", "dilated", "stream", "seq2seq")
TCN_FAMILIES = ("tcn", "videopose3d_original")
#: What each checkpoint family is, for messages about a checkpoint given in the wrong role.
FAMILY_KIND = {"rtmdet": "a detector", "rtmpose": "a 2D pose model", "tcn": "a lifter",
               "videopose3d_original": "a lifter", "motionbert": "a lifter", "motionbert_original": "a lifter"}
DET_MEAN_BGR = (103.53, 116.28, 123.675)
DET_STD_BGR = (57.375, 57.12, 58.395)
POSE_MEAN_RGB = (123.675, 116.28, 103.53)
POSE_STD_RGB = (58.395, 57.12, 57.375)
# test_cfg of the person detectors (docs/MMPOSE_BEHAVIOUR.md, RTMDet); the COCO-80 configs use other values,
# given by the variant.
PERSON_TEST_CFG = {"score_thr": 0.05, "nms_iou_thr": 0.6, "nms_pre": 1000, "max_per_img": 100}
COCO_TEST_CFG = {"score_thr": 0.001, "nms_iou_thr": 0.65, "nms_pre": 30000, "max_per_img": 300}


def _csv(values) -> str:
    return ",".join(f"{float(v):g}" if isinstance(v, float) else str(v) for v in values)


def _version() -> str:
    from .._version import __version__

    return __version__


class RTMDetExport(nn.Module):
    """RTMDet + host-friendly decoding: per-level raw maps -> boxes (input pixels) and sigmoid scores."""

    def __init__(self, model: nn.Module, input_hw: Tuple[int, int], dynamic_hw: bool = False) -> None:
        super().__init__()
        self.model = model
        strides = tuple(int(s) for s in getattr(model, "strides", (8, 16, 32)))
        self.strides = strides
        self.dynamic_hw = bool(dynamic_hw)
        h, w = input_hw
        priors = []
        for s in strides:
            fh, fw = -(-h // s), -(-w // s)
            ys, xs = np.meshgrid(np.arange(fh) * s, np.arange(fw) * s, indexing="ij")
            priors.append(np.stack([xs.ravel(), ys.ravel()], 1))
        self.register_buffer("priors", torch.from_numpy(np.concatenate(priors).astype(np.float32)), persistent=False)

    def _dynamic_priors(self, cls_maps) -> torch.Tensor:
        """Prior points (x, y) of every level from the feature maps' own sizes, so one graph takes any H x W
        (multiples of the largest stride): the same row-major level order as the static buffer."""
        out = []
        for c, s in zip(cls_maps, self.strides):
            fh, fw = c.shape[2], c.shape[3]
            ys = torch.arange(fh, dtype=torch.float32) * s
            xs = torch.arange(fw, dtype=torch.float32) * s
            grid_y = ys[:, None].expand(fh, fw).reshape(-1)
            grid_x = xs[None, :].expand(fh, fw).reshape(-1)
            out.append(torch.stack([grid_x, grid_y], 1))
        return torch.cat(out, 0)

    def forward(self, x: torch.Tensor):
        outs = self.model(x)
        n = len(self.strides)
        cls, reg = outs[:n], outs[n:]
        scores = torch.cat([c.permute(0, 2, 3, 1).flatten(1, 2) for c in cls], 1).sigmoid()
        dist = torch.cat([r.permute(0, 2, 3, 1).flatten(1, 2) for r in reg], 1)
        p = self._dynamic_priors(cls) if self.dynamic_hw else self.priors
        boxes = torch.cat([p - dist[..., :2], p + dist[..., 2:]], -1)
        return boxes, scores


class _NonMaxSuppression(torch.autograd.Function):
    """ONNX NonMaxSuppression (opset 11+): boxes (B, A, 4) xyxy, scores (B, C, A) -> selected (K, 3) int64 rows
    [batch, class, box]. The eager forward is a plain reference used only while tracing and in tests."""

    @staticmethod
    def forward(ctx, boxes, scores, max_per_class: int, iou_thr: float, score_thr: float):  # noqa: D401
        rows = []
        for b in range(boxes.shape[0]):
            for c in range(scores.shape[1]):
                sc = scores[b, c]
                idx = torch.nonzero(sc > score_thr).flatten()
                idx = idx[torch.argsort(sc[idx], descending=True, stable=True)]
                keep = []
                while idx.numel() and len(keep) < max_per_class:
                    i = idx[0]
                    keep.append(int(i))
                    if idx.numel() == 1:
                        break
                    bi, rest = boxes[b, i], boxes[b, idx[1:]]
                    iw = (torch.minimum(bi[2], rest[:, 2]) - torch.maximum(bi[0], rest[:, 0])).clamp(min=0)
                    ih = (torch.minimum(bi[3], rest[:, 3]) - torch.maximum(bi[1], rest[:, 1])).clamp(min=0)
                    inter = iw * ih
                    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
                    iou = inter / (area(bi) + area(rest) - inter).clamp(min=1e-12)
                    idx = idx[1:][iou <= iou_thr]
                rows += [[b, c, k] for k in keep]
        return torch.tensor(rows, dtype=torch.int64).reshape(-1, 3)

    @staticmethod
    def symbolic(g, boxes, scores, max_per_class, iou_thr, score_thr):
        const = lambda v, dt: g.op("Constant", value_t=torch.tensor([v], dtype=dt))  # noqa: E731
        return g.op("NonMaxSuppression", boxes, scores, const(max_per_class, torch.int64),
                    const(iou_thr, torch.float32), const(score_thr, torch.float32), center_point_box_i=0)


class RTMDetNMSExport(nn.Module):
    """RTMDet + decoding + in-graph NMS -> mmdeploy-style ``dets`` (B, keep_top_k, 5) [x1, y1, x2, y2, score] in
    input pixels and ``labels`` (B, keep_top_k) int64; unused rows have score 0 and label -1."""

    def __init__(self, decoder: RTMDetExport, iou_thr: float, score_thr: float, keep_top_k: int,
                 max_per_class: int = 200) -> None:
        super().__init__()
        self.decoder = decoder
        self.iou_thr, self.score_thr = float(iou_thr), float(score_thr)
        self.keep_top_k, self.max_per_class = int(keep_top_k), int(max_per_class)

    def forward(self, x: torch.Tensor):
        boxes, scores = self.decoder(x)  # (B, A, 4), (B, A, C)
        sel = _NonMaxSuppression.apply(boxes, scores.transpose(1, 2), self.max_per_class, self.iou_thr,
                                       self.score_thr)
        b, c, i = sel[:, 0], sel[:, 1], sel[:, 2]
        det_boxes = boxes[b, i]  # (K, 4)
        det_scores = scores[b, i, c]  # (K,)
        k = self.keep_top_k
        pad_scores = torch.cat([det_scores, torch.full((k,), -1.0)])
        pad_batch = torch.cat([b, torch.full((k,), -1, dtype=torch.int64)])
        pad_boxes = torch.cat([det_boxes, torch.zeros(k, 4)])
        pad_labels = torch.cat([c, torch.full((k,), -1, dtype=torch.int64)])
        batch_ids = torch.arange(x.shape[0], dtype=torch.int64)[:, None]
        masked = torch.where(pad_batch[None, :] == batch_ids, pad_scores[None, :], torch.full_like(pad_scores, -1.0))
        top, idx = torch.topk(masked, k, dim=1)  # (B, k)
        valid = top > 0
        dets = torch.cat([pad_boxes[idx], top.clamp(min=0)[..., None]], -1) * valid[..., None]
        labels = torch.where(valid, pad_labels[idx], torch.full_like(idx, -1))
        return dets, labels


def _detector_metadata(model: nn.Module, variant: str, input_hw: Tuple[int, int], num_classes: int) -> Dict[str, str]:
    test_cfg = PERSON_TEST_CFG if num_classes == 1 else COCO_TEST_CFG
    return {
        "family": "rtmdet", "variant": variant, "input_size": _csv(input_hw),
        "mean": _csv(DET_MEAN_BGR), "std": _csv(DET_STD_BGR), "channel_order": "bgr",
        "output_format": "boxes_scores", "strides": _csv(getattr(model, "strides", (8, 16, 32))),
        "num_classes": str(num_classes), **{k: str(v) for k, v in test_cfg.items()},
    }


def _build(family: str, state_dict, arch: Optional[str], form: Optional[str], source: Path, nms: bool = False,
           causal: Optional[bool] = None, dynamic_hw: bool = False, window: Optional[int] = None,
           ckpt_meta: Optional[dict] = None):
    """-> (module to export, input name, example input, output names, dynamic axes, metadata)."""
    if family in motionbert_export.FAMILIES:
        return motionbert_export.build(family, state_dict, arch, source, window=window, ckpt_meta=ckpt_meta)
    if family == "rtmdet":
        from .models import rtmdet

        model, variant = rtmdet.load_model(state_dict, arch=arch)
        cfg = rtmdet.VARIANTS.get(variant) if hasattr(rtmdet, "VARIANTS") else None
        input_hw = tuple(getattr(cfg, "input_size", None) or getattr(model, "input_size", None) or (640, 640))
        num_classes = int(state_dict["bbox_head.rtm_cls.0.weight"].shape[0])
        module = RTMDetExport(model, input_hw, dynamic_hw=dynamic_hw).eval()
        example = torch.zeros(1, 3, *input_hw)
        meta = _detector_metadata(model, variant, input_hw, num_classes)
        if dynamic_hw:
            meta["dynamic_hw"] = "true"
        if nms:
            module = RTMDetNMSExport(module, float(meta["nms_iou_thr"]), float(meta["score_thr"]),
                                     int(meta["max_per_img"])).eval()
            meta["output_format"] = "dets_labels"
            return module, "input", example, ["dets", "labels"], meta
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
        model, variant = tcn.load_model(state_dict, arch=arch, form="dilated" if form == "stream" else form or "strided",
                                        input_joint_order=order, **({} if causal is None else {"causal": bool(causal)}))
        if form == "stream":
            return _stream_build(model, variant, order)
        rf = int(model.receptive_field)
        t = rf if (form or "strided") == "strided" else rf + 16
        example = torch.zeros(1, t, model.num_joints, 2)
        meta = {"family": "tcn", "variant": variant, "receptive_field": str(rf),
                "causal": str(bool(model.causal)).lower(), "form": form or "strided",
                "input_joint_order": order, "dataset": "h36m", "num_keypoints": str(model.num_joints)}
        return model.eval(), "keypoints", example, ["keypoints_3d"], meta
    raise ModelError(f"{source}: unsupported model family {family!r}")


def _stream_build(model, variant: str, order: str):
    """The step form of a TCN lifter: keypoints + start + per-layer states in, 3D + new states out."""
    from .models import tcn_stream

    shapes = tcn_stream.state_shapes(model)
    module = tcn_stream.StreamingTCN(model).eval()
    names = [f"state_in_{i}" for i in range(len(shapes))]
    example = (torch.zeros(1, 1, model.num_joints, 2), torch.ones(1),
               *(torch.zeros(1, h, c) for c, h in shapes))
    meta = {"family": "tcn", "variant": variant, "receptive_field": str(int(model.receptive_field)),
            "causal": str(bool(model.causal)).lower(), "form": "stream",
            "right_context": str(tcn_stream.right_context(model)),
            "state_shapes": ";".join(f"{h}x{c}" for c, h in shapes), "input_joint_order": order,
            "dataset": "h36m", "num_keypoints": str(model.num_joints)}
    out_names = ["keypoints_3d"] + [f"state_out_{i}" for i in range(len(shapes))]
    return module, ["keypoints", "start", *names], example, out_names, meta


def _check_lifter_options(src: Path, family: str, form: Optional[str], causal: Optional[bool],
                          window: Optional[int]) -> Optional[str]:
    """The ``form`` to build with; one-line errors for options the family cannot honour. A MotionBERT checkpoint
    has one graph (seq2seq) for every use, so the TCN forms the pipeline asks for (``strided``/``stream``) map to
    it; ``causal`` cannot be honoured (the model attends to the whole clip)."""
    if family in motionbert_export.FAMILIES:
        if causal:
            raise Pose3DError(f"{src}: MotionBERT is not causal (it attends to the whole clip); drop --causal")
        if form not in (None, "seq2seq"):
            log.info("%s: MotionBERT exports one seq2seq graph; form=%s does not apply", src.name, form)
        return None
    if window is not None:
        raise Pose3DError(f"{src}: --window applies to MotionBERT lifters only; this is a {family} checkpoint")
    if form == "seq2seq":
        raise Pose3DError(f"{src}: form 'seq2seq' is MotionBERT's; this is a {family} checkpoint")
    if form is not None and family not in TCN_FAMILIES:
        raise Pose3DError(f"{src}: --form applies to lifters only; this is a {family} checkpoint")
    if causal and family not in TCN_FAMILIES:
        raise Pose3DError(f"{src}: --causal applies to lifters only; this is a {family} checkpoint")
    return form


def export_onnx(checkpoint: PathLike, output: PathLike, arch: Optional[str] = None, opset: int = 17,
                batch: Union[str, int] = "dynamic", nms: bool = False, form: Optional[str] = None,
                causal: Optional[bool] = None, dynamic_hw: bool = False, window: Optional[int] = None) -> Path:
    """Export an official checkpoint to ONNX; returns the written path. See the module docstring.

    ``window`` (MotionBERT only): the longest clip the export declares (default: the ``temp_embed`` length);
    more than ``temp_embed`` holds is a :class:`ModelError` naming the limit."""
    src, out = Path(checkpoint), Path(output)
    if form is not None and form not in LIFTER_FORMS:
        raise Pose3DError(f"--form must be one of {', '.join(LIFTER_FORMS)}, got {form!r}")
    if not (batch == "dynamic" or (isinstance(batch, int) and batch >= 1)):
        raise Pose3DError(f"--batch must be 'dynamic' or a positive integer, got {batch!r}")
    t0 = time.perf_counter()
    state_dict, ckpt_meta = load_checkpoint(src)
    family = detect_family(state_dict)
    form = _check_lifter_options(src, family, form, causal, window)
    for flag, value in (("--nms", nms), ("--dynamic-hw", dynamic_hw)):
        if value and family != "rtmdet":
            raise ModelError(f"{src}: this is a {family} checkpoint ({FAMILY_KIND.get(family, 'not a detector')}), "
                             f"not a detector; {flag} applies to detectors only")
    module, in_names, example, out_names, meta = _build(family, state_dict, arch, form, src, nms=nms, causal=causal,
                                                        dynamic_hw=dynamic_hw, window=window, ckpt_meta=ckpt_meta)
    in_names = [in_names] if isinstance(in_names, str) else list(in_names)
    examples = (example,) if isinstance(example, torch.Tensor) else tuple(example)
    if isinstance(batch, int):
        examples = tuple(e.expand(batch, *e.shape[1:]).contiguous() for e in examples)
    dynamic: Dict[str, Dict[int, str]] = {}
    if batch == "dynamic":
        for name in in_names + out_names:
            dynamic[name] = {0: "batch"}
    if meta.get("dynamic_hw") == "true":
        dynamic.setdefault(in_names[0], {}).update({2: "height", 3: "width"})
        for name in set(out_names) & {"boxes", "scores"}:
            dynamic.setdefault(name, {})[1] = "anchors"
    if meta.get("form") in ("dilated", "stream", "seq2seq"):
        dynamic.setdefault(in_names[0], {})[1] = "time"
        dynamic.setdefault(out_names[0], {})[1] = "time" if meta["form"] == "seq2seq" else "time_out"
    meta.update({"source_sha256": file_sha256(src), "source_name": src.name, "exporter": "pose3d-rt",
                 "exporter_version": _version(), "metadata_version": METADATA_VERSION, "opset": str(opset),
                 "batch": str(batch)})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part")
    try:
        with torch.no_grad():
            torch.onnx.export(module, examples, str(tmp), input_names=in_names, output_names=out_names,
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
