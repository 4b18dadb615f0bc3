"""The MotionBERT part of :func:`pose3d_rt.export.onnx_export.export_onnx`: module, example input and metadata.

Graph: ``keypoints`` (N, T, 17, 3) float32 -> ``keypoints_3d`` (N, T, 17, 3), the raw backbone+head output (no flip
averaging, no decode: the runtime does both in numpy). N and T are dynamic; ``temp_embed[:, :T]`` is a Slice with a
dynamic end, so the graph accepts ``1 <= T <= window``. A longer input makes ONNX Runtime fail on a broadcast deep in
the graph, so the runtime checks ``T`` against the ``window`` metadata first
(:meth:`pose3d_rt.lifters.base.EngineLifter.infer`); :func:`check_window` does the same at export time.

Metadata (besides the provenance keys every export carries): ``family=motionbert``, ``variant``, ``form=seq2seq``,
``window`` and ``receptive_field`` (= ``window``: the longest clip, by default the length of ``temp_embed``),
``in_channels=3``, ``causal=false``, ``dataset=h36m``, ``num_keypoints``, ``input_joint_order=h36m``,
``flip_indices`` (comma list; the checkpoint's ``dataset_meta`` when it has one, else H36M's), ``layernorm_eps``,
``source_layout`` (``motionbert`` = mmpose keys, ``motionbert_original`` = MotionBERT's ``model_pos``).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import torch

from ..engines.errors import ModelError
from .models import dstformer

log = logging.getLogger(__name__)

FAMILIES = ("motionbert", "motionbert_original")
#: H36M left/right joint swap (mmpose ``h36m.py`` metainfo), used when the checkpoint carries no ``dataset_meta``.
H36M_FLIP_INDICES = (0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13)
#: Frames of the example input traced at export (any value in [2, window) keeps the time axis symbolic).
EXAMPLE_FRAMES = 27


def check_window(window: Optional[int], max_frames: int, source: Path) -> int:
    """The export's clip length: ``window`` (default ``max_frames``); :class:`ModelError` outside
    ``[1, max_frames]``, naming the limit."""
    if window is None:
        return max_frames
    if int(window) < 1 or int(window) > max_frames:
        raise ModelError(f"{source}: MotionBERT takes at most {max_frames} frames (its temp_embed length); "
                         f"a {window}-frame window is not possible")
    return int(window)


def _flip_indices(ckpt_meta: Optional[Mapping[str, Any]], k: int) -> Sequence[int]:
    dm = (ckpt_meta or {}).get("dataset_meta")
    flip = dm.get("flip_indices") if isinstance(dm, Mapping) else None
    if flip is not None and len(flip) == k:
        return [int(i) for i in flip]
    if k == len(H36M_FLIP_INDICES):
        return list(H36M_FLIP_INDICES)
    return list(range(k))


def build(family: str, state_dict: Mapping[str, torch.Tensor], arch: Optional[str], source: Path,
          window: Optional[int] = None, ckpt_meta: Optional[Mapping[str, Any]] = None
          ) -> Tuple[torch.nn.Module, str, torch.Tensor, list, Dict[str, str]]:
    """-> (module, input name, example input, output names, metadata) for ``export_onnx``."""
    model, variant = dstformer.load_model(state_dict, arch=arch)
    cfg = model.config
    win = check_window(window, cfg.max_frames, source)
    example = torch.zeros(1, min(EXAMPLE_FRAMES, max(2, win)), cfg.num_joints, cfg.in_channels)
    flip = _flip_indices(ckpt_meta, cfg.num_joints)
    meta = {"family": "motionbert", "variant": variant, "form": "seq2seq", "window": str(win),
            "receptive_field": str(win), "in_channels": str(cfg.in_channels), "causal": "false",
            "dataset": "h36m", "num_keypoints": str(cfg.num_joints), "input_joint_order": "h36m",
            "flip_indices": ",".join(map(str, flip)), "layernorm_eps": f"{cfg.ln_eps:g}", "source_layout": family}
    return model.eval(), "keypoints", example, ["keypoints_3d"], meta
