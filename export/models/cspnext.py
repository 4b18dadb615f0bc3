"""CSPNeXt building blocks, backbone and PAFPN neck (mmdet/mmcv module names, so state_dict keys match).

Spec: docs/MMPOSE_BEHAVIOUR.md, RTMDet. Every ConvModule is conv (no bias) -> BatchNorm (eps 1e-5) -> SiLU.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
from torch import nn

BN_EPS = 1e-5
# P5 arch: (in, out, num_blocks, add_identity, use_spp) before scaling (docs/MMPOSE_BEHAVIOUR.md, RTMDet)
ARCH_P5: Tuple[Tuple[int, int, int, bool, bool], ...] = (
    (64, 128, 3, True, False), (128, 256, 6, True, False), (256, 512, 6, True, False), (512, 1024, 3, False, True),
)


class ConvModule(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, padding: int = 0, groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.activate = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.bn(self.conv(x)))


class DepthwiseSeparableConvModule(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.depthwise_conv = ConvModule(cin, cin, k, stride, padding, groups=cin)
        self.pointwise_conv = ConvModule(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


def conv_or_dw(use_depthwise: bool, cin: int, cout: int, k: int, stride: int = 1, padding: int = 0) -> nn.Module:
    return (DepthwiseSeparableConvModule if use_depthwise else ConvModule)(cin, cout, k, stride, padding)


class ChannelAttention(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Conv2d(channels, channels, 1, bias=True)
        self.act = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.act(self.fc(self.global_avgpool(x)))


class CSPNeXtBlock(nn.Module):
    def __init__(self, cin: int, cout: int, add_identity: bool, use_depthwise: bool) -> None:
        super().__init__()
        self.conv1 = conv_or_dw(use_depthwise, cin, cout, 3, 1, 1)
        self.conv2 = DepthwiseSeparableConvModule(cout, cout, 5, 1, 2)
        self.add_identity = add_identity and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class CSPLayer(nn.Module):
    def __init__(self, cin: int, cout: int, num_blocks: int, add_identity: bool, use_depthwise: bool,
                 channel_attention: bool, expand_ratio: float = 0.5) -> None:
        super().__init__()
        mid = int(cout * expand_ratio)
        self.main_conv = ConvModule(cin, mid, 1)
        self.short_conv = ConvModule(cin, mid, 1)
        self.final_conv = ConvModule(2 * mid, cout, 1)
        self.blocks = nn.Sequential(*[CSPNeXtBlock(mid, mid, add_identity, use_depthwise) for _ in range(num_blocks)])
        self.channel_attention = channel_attention
        if channel_attention:
            self.attention = ChannelAttention(2 * mid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([self.blocks(self.main_conv(x)), self.short_conv(x)], 1)  # main branch first
        if self.channel_attention:
            y = self.attention(y)
        return self.final_conv(y)


class SPPBottleneck(nn.Module):
    """Parallel SPP: concat [x, maxpool5(x), maxpool9(x), maxpool13(x)] (stride 1, same padding)."""

    def __init__(self, cin: int, cout: int, kernel_sizes: Sequence[int] = (5, 9, 13)) -> None:
        super().__init__()
        mid = cin // 2
        self.conv1 = ConvModule(cin, mid, 1)
        self.poolings = nn.ModuleList([nn.MaxPool2d(k, 1, k // 2) for k in kernel_sizes])
        self.conv2 = ConvModule(mid * (len(kernel_sizes) + 1), cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [pool(x) for pool in self.poolings], 1))


class CSPNeXt(nn.Module):
    """CSPNeXt P5 backbone. ``out_indices`` count 0 = stem, 1..4 = stages (RTMDet: (2, 3, 4); RTMPose: (4,))."""

    def __init__(self, deepen_factor: float, widen_factor: float, use_depthwise: bool = False,
                 out_indices: Sequence[int] = (2, 3, 4), channel_attention: bool = True) -> None:
        super().__init__()
        w, d = widen_factor, deepen_factor
        c_half, c_stem = int(64 * w // 2), int(64 * w)
        self.stem = nn.Sequential(ConvModule(3, c_half, 3, 2, 1), ConvModule(c_half, c_half, 3, 1, 1),
                                  ConvModule(c_half, c_stem, 3, 1, 1))
        self.out_indices = tuple(out_indices)
        self.out_channels: List[int] = []
        for i, (cin, cout, n, add_identity, use_spp) in enumerate(ARCH_P5, start=1):
            cin, cout = int(cin * w), int(cout * w)
            n = max(round(n * d), 1)
            layers: List[nn.Module] = [conv_or_dw(use_depthwise, cin, cout, 3, 2, 1)]
            if use_spp:
                layers.append(SPPBottleneck(cout, cout))
            layers.append(CSPLayer(cout, cout, n, add_identity, use_depthwise, channel_attention))
            self.add_module(f"stage{i}", nn.Sequential(*layers))
            self.out_channels.append(cout)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        outs = []
        x = self.stem(x)
        if 0 in self.out_indices:
            outs.append(x)
        for i in range(1, 5):
            x = getattr(self, f"stage{i}")(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)


class CSPNeXtPAFPN(nn.Module):
    def __init__(self, in_channels: Sequence[int], out_channels: int, num_csp_blocks: int,
                 use_depthwise: bool = False, expand_ratio: float = 0.5) -> None:
        super().__init__()
        c = list(in_channels)
        n = len(c)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.reduce_layers = nn.ModuleList([ConvModule(c[i], c[i - 1], 1) for i in range(n - 1, 0, -1)])
        self.top_down_blocks = nn.ModuleList([
            CSPLayer(c[i - 1] * 2, c[i - 1], num_csp_blocks, False, use_depthwise, False, expand_ratio)
            for i in range(n - 1, 0, -1)])
        self.downsamples = nn.ModuleList([conv_or_dw(use_depthwise, c[i], c[i], 3, 2, 1) for i in range(n - 1)])
        self.bottom_up_blocks = nn.ModuleList([
            CSPLayer(c[i] * 2, c[i + 1], num_csp_blocks, False, use_depthwise, False, expand_ratio)
            for i in range(n - 1)])
        self.out_convs = nn.ModuleList([conv_or_dw(use_depthwise, c[i], out_channels, 3, 1, 1) for i in range(n)])

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        n = len(inputs)
        inner = [inputs[-1]]
        for idx in range(n - 1, 0, -1):
            high = self.reduce_layers[n - 1 - idx](inner[0])
            inner[0] = high
            inner.insert(0, self.top_down_blocks[n - 1 - idx](torch.cat([self.upsample(high), inputs[idx - 1]], 1)))
        outs = [inner[0]]
        for idx in range(n - 1):
            outs.append(self.bottom_up_blocks[idx](torch.cat([self.downsamples[idx](outs[-1]), inner[idx + 1]], 1)))
        return tuple(conv(o) for conv, o in zip(self.out_convs, outs))
