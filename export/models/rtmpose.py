"""RTMPose (CSPNeXt backbone + RTMCCHead with ScaleNorm and the GAU block), key-compatible with mmpose checkpoints.

Spec: docs/MMPOSE_BEHAVIOUR.md, RTMPose. Forward returns ``(simcc_x (N, K, W*r), simcc_y (N, K, H*r))``.
The module names ``head.mlp.0`` (ScaleNorm) and ``head.gau`` appear in exported ONNX node names; the TensorRT
builder keeps those layers in FP32 (docs/MMPOSE_BEHAVIOUR.md, TensorRT).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Tuple, Union

import torch
from torch import nn

from ...engines.errors import ModelError
from ._loading import family_guard, match_variant, shapes_of, strict_load
from .cspnext import CSPNeXt

SPLIT_RATIO = 2.0


@dataclass(frozen=True)
class RTMPoseConfig:
    name: str
    deepen_factor: float
    widen_factor: float
    input_size: Tuple[int, int]  # (H, W)
    num_keypoints: int = 17
    simcc_split_ratio: float = SPLIT_RATIO

    @property
    def in_channels(self) -> int:
        return int(1024 * self.widen_factor)

    @property
    def flatten_dims(self) -> int:
        h, w = self.input_size
        return (h // 32) * (w // 32)


_SIZES = {"t": (0.167, 0.375), "s": (0.33, 0.5), "m": (0.67, 0.75), "l": (1.0, 1.0), "x": (1.33, 1.25)}
VARIANTS: Dict[str, RTMPoseConfig] = {}
for _v, (_d, _w) in _SIZES.items():
    for _hw in ((256, 192), (384, 288)):
        _n = f"rtmpose-{_v}-{_hw[0]}x{_hw[1]}"
        VARIANTS[_n] = RTMPoseConfig(_n, _d, _w, _hw)


class ScaleNorm(nn.Module):
    """x / max(||x||_2 * dim**-0.5, eps) * g over the last dimension."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.scale = dim ** -0.5
        self.eps = eps
        self.g = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = torch.linalg.norm(x, dim=-1, keepdim=True) * self.scale
        return x / norm.clamp(min=self.eps) * self.g


class Scale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class RTMCCBlock(nn.Module):
    """Gated attention unit (self-attention over the K keypoint tokens, squared-ReLU kernel)."""

    def __init__(self, num_token: int, dim: int = 256, expansion_factor: int = 2, s: int = 128,
                 eps: float = 1e-5) -> None:
        super().__init__()
        self.s = s
        self.e = int(dim * expansion_factor)
        self.gamma = nn.Parameter(torch.ones(2, s))
        self.beta = nn.Parameter(torch.zeros(2, s))
        self.o = nn.Linear(self.e, dim, bias=False)
        self.uv = nn.Linear(dim, 2 * self.e + s, bias=False)
        self.ln = ScaleNorm(dim, eps)
        self.act_fn = nn.SiLU()
        self.res_scale = Scale(dim)
        self.sqrt_s = math.sqrt(s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        uv = self.act_fn(self.uv(self.ln(x)))
        u, v, base = torch.split(uv, [self.e, self.e, self.s], dim=-1)
        q = base * self.gamma[0] + self.beta[0]
        k = base * self.gamma[1] + self.beta[1]
        kernel = torch.square(torch.relu(torch.matmul(q, k.transpose(-1, -2)) / self.sqrt_s))
        return x * self.res_scale.scale + self.o(u * torch.matmul(kernel, v))


class RTMCCHead(nn.Module):
    def __init__(self, cfg: RTMPoseConfig) -> None:
        super().__init__()
        h, w = cfg.input_size
        k = cfg.num_keypoints
        self.final_layer = nn.Conv2d(cfg.in_channels, k, 7, 1, 3)
        self.mlp = nn.Sequential(ScaleNorm(cfg.flatten_dims), nn.Linear(cfg.flatten_dims, 256, bias=False))
        self.gau = RTMCCBlock(k, 256)
        self.cls_x = nn.Linear(256, int(w * cfg.simcc_split_ratio), bias=False)
        self.cls_y = nn.Linear(256, int(h * cfg.simcc_split_ratio), bias=False)

    def forward(self, feat: torch.Tensor):
        x = self.final_layer(feat).flatten(2)
        x = self.gau(self.mlp(x))
        return self.cls_x(x), self.cls_y(x)


class RTMPose(nn.Module):
    def __init__(self, cfg: RTMPoseConfig) -> None:
        super().__init__()
        self.config = cfg
        self.input_size = cfg.input_size
        self.backbone = CSPNeXt(cfg.deepen_factor, cfg.widen_factor, False, (4,))
        self.head = RTMCCHead(cfg)

    def forward(self, x: torch.Tensor):
        return self.head(self.backbone(x)[-1])


def _with_k(cfg: RTMPoseConfig, k: int) -> RTMPoseConfig:
    return RTMPoseConfig(cfg.name, cfg.deepen_factor, cfg.widen_factor, cfg.input_size, k, cfg.simcc_split_ratio)


def build_model(variant: Union[str, RTMPoseConfig], num_keypoints: Optional[int] = None) -> RTMPose:
    cfg = VARIANTS[variant] if isinstance(variant, str) else variant
    if num_keypoints is not None:
        cfg = _with_k(cfg, num_keypoints)
    return RTMPose(cfg).eval()


def _num_keypoints(state_dict: Mapping[str, object]) -> int:
    w = state_dict.get("head.final_layer.weight")
    return int(w.shape[0]) if w is not None else 17


def detect_variant(state_dict: Mapping[str, object]) -> str:
    """Size from the backbone widths, input size from the SimCC head (cls_x = W*r, cls_y = H*r)."""
    family_guard(state_dict, "rtmpose")
    found = shapes_of(state_dict)
    k = _num_keypoints(state_dict)
    stem = found.get("backbone.stem.0.conv.weight", (0,))[0]
    wx = found.get("head.cls_x.weight", (0,))[0]

    def prefilter(cfg: RTMPoseConfig) -> str:
        exp_stem, exp_wx = int(64 * cfg.widen_factor // 2), int(cfg.input_size[1] * cfg.simcc_split_ratio)
        return "" if (exp_stem, exp_wx) == (stem, wx) else f"stem {exp_stem} vs {stem}, cls_x {exp_wx} vs {wx}"

    return match_variant(state_dict, VARIANTS, lambda c: RTMPose(_with_k(c, k)), prefilter, "RTMPose")


def load_model(state_dict: Mapping[str, torch.Tensor], arch: Optional[str] = None) -> Tuple[RTMPose, str]:
    family_guard(state_dict, "rtmpose")
    if arch is not None and arch not in VARIANTS:
        raise ModelError(f"unknown RTMPose arch {arch!r}; known: {', '.join(VARIANTS)}")
    name = arch or detect_variant(state_dict)
    model = build_model(name, _num_keypoints(state_dict))
    return strict_load(model, state_dict, f"RTMPose variant {name}"), name
