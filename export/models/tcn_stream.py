"""The streaming ("stream") form of the VideoPose3D TCN: the dilated network stepped frame by frame, with the
state of every layer passed in and out explicitly, so that each new frame costs one new column per layer
(~34 MFLOP for the 243-frame model) instead of a whole 243-frame window (~1 GFLOP).

Same weights as :class:`~pose3d_rt.export.models.tcn.VideoPoseLifter` (the module shares its parameters). Let
``S_l`` be the history layer ``l`` needs: ``k0 - 1`` input frames for the expand conv, ``(k - 1) * d`` feature
columns for a block with kernel ``k`` and dilation ``d``. One call:

- inputs ``keypoints (N, T, K, 2)`` (``T >= 1`` new frames per track), ``start (N,)`` float (1 = this row's
  track begins with the chunk's first frame), ``state_in_<l> (N, S_l, C_l)`` (time-major) for every layer with
  ``S_l > 0``;
- outputs ``keypoints_3d (N, T, K, 3)`` and ``state_out_<l>`` (the last ``S_l`` columns of each layer's input).

Output column ``j`` belongs to the frame ``R`` frames before the chunk's frame ``j``, where ``R`` is the right
context (``RF // 2`` centred, 0 causal). Where ``start`` is 1, every layer's state is first overwritten with
copies of that layer's first new column: exactly the state that an unbounded left edge-replication of the first
frame produces, so the outputs equal the offline dilated TCN over the edge-padded track (the columns a replicated
left pad cannot reach are never read by a valid output). Feeding ``R`` copies of a track's last frame flushes its
last ``R`` frames, as the right edge padding of offline inference does.
"""
from __future__ import annotations

from typing import List, Tuple

import torch
from torch import nn

from .tcn import VideoPoseLifter


def state_shapes(model: VideoPoseLifter) -> List[Tuple[int, int]]:
    """``(channels, history)`` of each layer that keeps a state (``history > 0``), in layer order."""
    cfg = model.config
    sizes = [(cfg.in_channels, cfg.kernel_sizes[0] - 1)]
    sizes += [(cfg.channels, (k - 1) * d) for k, d in zip(cfg.kernel_sizes[1:], cfg.dilations)]
    return [s for s in sizes if s[1] > 0]


def right_context(model: VideoPoseLifter) -> int:
    """Frames between a frame's arrival and its output: ``RF // 2`` centred, 0 causal."""
    return 0 if model.causal else model.receptive_field // 2


def _folded(layer: nn.Module) -> Tuple[torch.Tensor, torch.Tensor]:
    """A ConvBNReLU's conv weight ``(C_out, C_in, k)`` and eval BatchNorm folded into ``(k*C_in, C_out)`` (tap-major
    rows) and a bias ``(C_out,)``."""
    bn = layer.bn
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    weight = layer.conv.weight * scale[:, None, None]
    matrix = weight.permute(2, 1, 0).reshape(-1, weight.shape[0])  # row m*C_in + c = tap m, input channel c
    return matrix.detach().clone(), (bn.bias - bn.running_mean * scale).detach().clone()


class StreamingTCN(nn.Module):
    """``(keypoints, start, *states) -> (keypoints_3d, *new_states)``; see the module docstring."""

    def __init__(self, lifter: VideoPoseLifter) -> None:
        super().__init__()
        cfg = lifter.config
        lifter = lifter.eval()
        self.num_joints = cfg.num_joints
        self.kernels = cfg.kernel_sizes
        self.dilations = (1,) + cfg.dilations
        self.histories = [(k - 1) * d for k, d in zip(self.kernels, self.dilations)]
        self.causal = cfg.causal
        blocks = list(lifter.backbone.tcn_blocks)
        with torch.no_grad():
            folded = [_folded(lifter.backbone.expand_conv)]
            for block in blocks:
                folded += [_folded(block.conv1[0]), _folded(block.conv2[0])]
            folded.append((lifter.head.conv.weight[:, :, 0].t().detach().clone(),
                           lifter.head.conv.bias.detach().clone()))
        for i, (w, b) in enumerate(folded):
            self.register_buffer(f"w{i}", w)
            self.register_buffer(f"b{i}", b)

    def _linear(self, i: int, x: torch.Tensor, relu: bool = True) -> torch.Tensor:
        y = torch.matmul(x, getattr(self, f"w{i}")) + getattr(self, f"b{i}")
        return torch.relu(y) if relu else y

    @staticmethod
    def _with_history(x: torch.Tensor, state: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        """``[state | x]`` along time, the state replaced by copies of ``x[:, 0]`` where ``start`` is 1."""
        first = x[:, :1].expand_as(state)
        s = start.view(-1, 1, 1)
        return torch.cat([s * first + (1.0 - s) * state, x], dim=1)

    @staticmethod
    def _taps(full: torch.Tensor, kernel: int, dilation: int, t: int) -> torch.Tensor:
        """The ``kernel`` dilated taps of each of the last ``t`` output positions, stacked along channels."""
        if kernel == 1:
            return full
        return torch.cat([full[:, m * dilation: m * dilation + t] for m in range(kernel)], dim=2)

    def forward(self, keypoints: torch.Tensor, start: torch.Tensor, *states: torch.Tensor):
        x = keypoints.flatten(2)  # (N, T, K*C): channel c = C*k + d, the lifter's layout, time-major
        pending = list(states)
        states_out: List[torch.Tensor] = []
        t = x.shape[1]
        w = 0
        for layer, (kernel, dilation, history) in enumerate(zip(self.kernels, self.dilations, self.histories)):
            full = x
            if history:
                full = self._with_history(x, pending.pop(0), start)
                states_out.append(full[:, -history:])
            out = self._linear(w, self._taps(full, kernel, dilation, t))
            w += 1
            if layer == 0:
                x = out
                continue
            out = self._linear(w, out)
            w += 1
            end_trim = 0 if self.causal else history // 2  # residual = the input column end_trim frames back
            x = out + full[:, history - end_trim: history - end_trim + t]
        y = self._linear(w, x, relu=False)  # (N, T, 3K)
        return (y.unflatten(2, (self.num_joints, 3)), *states_out)
