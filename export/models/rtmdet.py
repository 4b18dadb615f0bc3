"""RTMDet (CSPNeXt + CSPNeXtPAFPN + RTMDetSepBNHead), key-compatible with mmdet checkpoints.

Spec: docs/MMPOSE_BEHAVIOUR.md, RTMDet. Forward returns the raw per-level outputs
``(cls_l0, cls_l1, cls_l2, reg_l0, reg_l1, reg_l2)``: class logits (N, C, H/s, W/s) and ltrb distances in input
pixels (already x stride, exp() first for ``exp_on_reg`` variants).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Tuple, Union

import torch
from torch import nn

from ...engines.errors import ModelError
from ._loading import family_guard, match_variant, shapes_of, strict_load
from .cspnext import CSPNeXt, CSPNeXtPAFPN, conv_or_dw

STRIDES = (8, 16, 32)


@dataclass(frozen=True)
class RTMDetConfig:
    name: str
    deepen_factor: float
    widen_factor: float
    use_depthwise: bool
    share_conv: bool
    exp_on_reg: bool
    input_size: Tuple[int, int]  # (H, W)
    num_classes: int = 1

    @property
    def neck_in(self) -> Tuple[int, int, int]:
        w = self.widen_factor
        return int(256 * w), int(512 * w), int(1024 * w)

    @property
    def feat_channels(self) -> int:
        return int(256 * self.widen_factor)

    @property
    def num_csp_blocks(self) -> int:
        return max(round(3 * self.deepen_factor), 1)


VARIANTS: Dict[str, RTMDetConfig] = {
    "rtmdet-nano": RTMDetConfig("rtmdet-nano", 0.33, 0.25, True, False, False, (320, 320)),
    "rtmdet-tiny": RTMDetConfig("rtmdet-tiny", 0.167, 0.375, False, True, False, (640, 640)),
    "rtmdet-s": RTMDetConfig("rtmdet-s", 0.33, 0.5, False, True, False, (640, 640)),
    "rtmdet-m": RTMDetConfig("rtmdet-m", 0.67, 0.75, False, True, True, (640, 640)),
    "rtmdet-l": RTMDetConfig("rtmdet-l", 1.0, 1.0, False, True, True, (640, 640)),
    "rtmdet-x": RTMDetConfig("rtmdet-x", 1.33, 1.25, False, True, True, (640, 640)),
}


class RTMDetSepBNHead(nn.Module):
    def __init__(self, num_classes: int, in_channels: int, feat_channels: int, use_depthwise: bool,
                 share_conv: bool, exp_on_reg: bool, stacked_convs: int = 2, strides=STRIDES) -> None:
        super().__init__()
        self.strides = tuple(strides)
        self.exp_on_reg = exp_on_reg
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        for _ in self.strides:
            cls = nn.ModuleList()
            reg = nn.ModuleList()
            for i in range(stacked_convs):
                chn = in_channels if i == 0 else feat_channels
                cls.append(conv_or_dw(use_depthwise, chn, feat_channels, 3, 1, 1))
                reg.append(conv_or_dw(use_depthwise, chn, feat_channels, 3, 1, 1))
            self.cls_convs.append(cls)
            self.reg_convs.append(reg)
        self.rtm_cls = nn.ModuleList([nn.Conv2d(feat_channels, num_classes, 1) for _ in self.strides])
        self.rtm_reg = nn.ModuleList([nn.Conv2d(feat_channels, 4, 1) for _ in self.strides])
        if share_conv:  # shared convs, separate BN (the same module object under every level's key)
            for n in range(1, len(self.strides)):
                for i in range(stacked_convs):
                    self.cls_convs[n][i].conv = self.cls_convs[0][i].conv
                    self.reg_convs[n][i].conv = self.reg_convs[0][i].conv

    def forward(self, feats):
        cls_out, reg_out = [], []
        for idx, (x, stride) in enumerate(zip(feats, self.strides)):
            c = x
            for layer in self.cls_convs[idx]:
                c = layer(c)
            r = x
            for layer in self.reg_convs[idx]:
                r = layer(r)
            t = self.rtm_reg[idx](r)
            cls_out.append(self.rtm_cls[idx](c))
            reg_out.append((t.exp() if self.exp_on_reg else t) * stride)
        return tuple(cls_out) + tuple(reg_out)


class RTMDet(nn.Module):
    def __init__(self, cfg: RTMDetConfig) -> None:
        super().__init__()
        self.config = cfg
        self.strides = STRIDES
        self.input_size = cfg.input_size
        self.backbone = CSPNeXt(cfg.deepen_factor, cfg.widen_factor, cfg.use_depthwise, (2, 3, 4))
        self.neck = CSPNeXtPAFPN(cfg.neck_in, cfg.feat_channels, cfg.num_csp_blocks, cfg.use_depthwise)
        self.bbox_head = RTMDetSepBNHead(cfg.num_classes, cfg.feat_channels, cfg.feat_channels, cfg.use_depthwise,
                                         cfg.share_conv, cfg.exp_on_reg)

    def forward(self, x: torch.Tensor):
        return self.bbox_head(self.neck(self.backbone(x)))


def _with_classes(cfg: RTMDetConfig, num_classes: int) -> RTMDetConfig:
    return RTMDetConfig(cfg.name, cfg.deepen_factor, cfg.widen_factor, cfg.use_depthwise, cfg.share_conv,
                        cfg.exp_on_reg, cfg.input_size, num_classes)


def build_model(variant: Union[str, RTMDetConfig], num_classes: Optional[int] = None) -> RTMDet:
    cfg = VARIANTS[variant] if isinstance(variant, str) else variant
    if num_classes is not None:
        cfg = _with_classes(cfg, num_classes)
    return RTMDet(cfg).eval()


def _num_classes(state_dict: Mapping[str, object]) -> int:
    w = state_dict.get("bbox_head.rtm_cls.0.weight")
    return int(w.shape[0]) if w is not None else 1


def detect_variant(state_dict: Mapping[str, object]) -> str:
    """The variant whose key set and shapes equal the checkpoint's; ModelError listing mismatches otherwise."""
    family_guard(state_dict, "rtmdet")
    nc = _num_classes(state_dict)
    stem = shapes_of(state_dict).get("backbone.stem.0.conv.weight", (0,))[0]

    def prefilter(cfg: RTMDetConfig) -> str:
        want = int(64 * cfg.widen_factor // 2)
        return "" if want == stem else f"stem has {want} channels, checkpoint {stem}"

    return match_variant(state_dict, VARIANTS, lambda c: RTMDet(_with_classes(c, nc)), prefilter, "RTMDet")


def load_model(state_dict: Mapping[str, torch.Tensor], arch: Optional[str] = None) -> Tuple[RTMDet, str]:
    """Detect (or force with ``arch``) the variant, build it, load strictly; returns (model in eval mode, name)."""
    family_guard(state_dict, "rtmdet")
    if arch is not None and arch not in VARIANTS:
        raise ModelError(f"unknown RTMDet arch {arch!r}; known: {', '.join(VARIANTS)}")
    name = arch or detect_variant(state_dict)
    model = build_model(name, _num_classes(state_dict))
    return strict_load(model, state_dict, f"RTMDet variant {name}"), name
