"""VideoPose3D temporal convolutional lifter (mmpose ``TCN`` backbone + ``TemporalRegressionHead``) in plain torch.

Spec: docs/MMPOSE_BEHAVIOUR.md, VideoPose3D. Parameter/buffer names equal mmpose's state-dict keys
(``backbone.expand_conv.conv.weight``, ``backbone.tcn_blocks.<i>.conv1.0.bn.running_mean``, ``head.conv.bias``, ...),
so an mmpose checkpoint loads with ``strict=True`` after :func:`pose3d_rt.export.checkpoint.load_checkpoint`'s
normalisation. Original VideoPose3D ``model_pos`` dicts load through :func:`convert_original_videopose3d`
(docs/MMPOSE_BEHAVIOUR.md, Checkpoints).

One set of weights, two forms (docs/MMPOSE_BEHAVIOUR.md, VideoPose3D):

- ``strided`` (mmpose's ``use_stride_conv=True``, what the configs build): every conv has stride = kernel; fed
  ``T = m * RF`` frames it returns ``m`` poses, one per non-overlapping window (``m = 1`` is the usual call).
- ``dilated`` (the reference ``TemporalModel``): stride 1, dilation = product of the preceding kernels; fed
  ``T >= RF`` frames it returns ``T - RF + 1`` poses, output ``j`` being the window ``[j, j + RF)``.

The module takes the codec-normalised 2D keypoints as ``(N, T, K, C)`` (``C = 2``) and does the layout change
to mmpose's ``(N, K*C, T)`` (channel ``c = C*k + d``) inside, so an exported graph takes
``(N, T, 17, 2)``; it returns ``(N, T_out, K, 3)`` (head channel ``c`` -> joint ``c // 3``, coordinate ``c % 3``,
transposed before the reshape; mmpose's head reshapes without it).

``causal`` is not recorded in a checkpoint (stride/dilation/residual alignment are not parameters; no official
checkpoint is causal), so it is a build/load argument, default ``False``.
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple, Union

import torch
from pose3d_rt.engines.errors import ModelError, Pose3DError
from torch import nn

from ..checkpoint import detect_family

log = logging.getLogger(__name__)

__all__ = [
    "FORMS",
    "INPUT_JOINT_ORDERS",
    "TCNConfig",
    "VARIANTS",
    "VideoPoseLifter",
    "build_model",
    "config_from_state_dict",
    "convert_original_videopose3d",
    "convert_to_original_videopose3d",
    "detect_variant",
    "guess_input_joint_order",
    "load_model",
    "resolve_variant",
]

FORMS = ("strided", "dilated")
INPUT_JOINT_ORDERS = ("h36m", "coco")
#: BatchNorm eps/momentum: mmcv ``build_norm_layer`` sets eps 1e-5; momentum stays PyTorch's 0.1.
BN_EPS = 1e-5
BN_MOMENTUM = 0.1
#: Prefixes of the semi-supervised trajectory model (docs/MMPOSE_BEHAVIOUR.md, Checkpoints): known, and ignored by
#: the pose lifter.
IGNORED_PREFIXES = ("traj_backbone.", "traj_head.")


@dataclass(frozen=True)
class TCNConfig:
    """Architecture of one TCN lifter.

    ``kernel_sizes``: expand-conv kernel then one per block (odd); ``channels``: mmpose ``stem_channels``;
    ``in_channels``: ``K * C`` input channels (``2 * 17 = 34``); ``num_joints``: output joints ``K`` (head has
    ``3 * K`` channels; the input is read as ``(T, K, in_channels // K)``); ``causal``: residual alignment
    (target = last frame instead of the centre); ``dropout``: training only (identity in eval).
    """

    kernel_sizes: Tuple[int, ...]
    channels: int = 1024
    in_channels: int = 34
    num_joints: int = 17
    causal: bool = False
    dropout: float = 0.25

    def __post_init__(self) -> None:
        ks = tuple(int(k) for k in self.kernel_sizes)
        object.__setattr__(self, "kernel_sizes", ks)
        if len(ks) < 1 or any(k < 1 or k % 2 == 0 for k in ks):
            raise ModelError(f"TCN kernel_sizes={ks}: expected one or more odd kernel sizes")
        if self.channels < 1 or self.num_joints < 1 or self.in_channels < 1:
            raise ModelError(f"TCN config {self}: channels, in_channels and num_joints must be positive")
        if self.in_channels % self.num_joints:
            raise ModelError(
                f"TCN in_channels={self.in_channels} is not a multiple of num_joints={self.num_joints}: "
                "cannot read the input as (N, T, K, C)"
            )

    @property
    def num_blocks(self) -> int:
        return len(self.kernel_sizes) - 1

    @property
    def coords_in(self) -> int:
        """Input features per joint (2: x, y)."""
        return self.in_channels // self.num_joints

    @property
    def receptive_field(self) -> int:
        """Frames that influence one output frame: the product of the kernel sizes."""
        return math.prod(self.kernel_sizes)

    @property
    def dilations(self) -> Tuple[int, ...]:
        """Dilation of each block's conv1 in the dilated form: product of all preceding kernels."""
        out, d = [], self.kernel_sizes[0]
        for k in self.kernel_sizes[1:]:
            out.append(d)
            d *= k
        return tuple(out)

    @property
    def name(self) -> str:
        """The variant name: a key of :data:`VARIANTS` when it is one, else a canonical ``tcn_...`` name that
        :func:`resolve_variant` parses back."""
        for key, cfg in VARIANTS.items():
            if cfg.replace_causal(self.causal) == self:
                return key
        ks = "-".join(map(str, self.kernel_sizes))
        return f"tcn_k{ks}_c{self.channels}_in{self.in_channels}_j{self.num_joints}"

    def replace_causal(self, causal: bool) -> TCNConfig:
        if causal == self.causal:
            return self
        return TCNConfig(self.kernel_sizes, self.channels, self.in_channels, self.num_joints, causal, self.dropout)


#: The official mmpose VideoPose3D configs (docs/MMPOSE_BEHAVIOUR.md, VideoPose3D): H36M 17 joints, 1024 channels.
VARIANTS: Dict[str, TCNConfig] = {
    "videopose3d_1f": TCNConfig(kernel_sizes=(1, 1, 1, 1, 1)),
    "videopose3d_27f": TCNConfig(kernel_sizes=(3, 3, 3)),
    "videopose3d_81f": TCNConfig(kernel_sizes=(3, 3, 3, 3)),
    "videopose3d_243f": TCNConfig(kernel_sizes=(3, 3, 3, 3, 3)),
}

_CANONICAL = re.compile(r"^tcn_k(?P<ks>\d+(?:-\d+)*)_c(?P<c>\d+)_in(?P<i>\d+)_j(?P<j>\d+)$")


def resolve_variant(variant: Union[str, TCNConfig], causal: Optional[bool] = None) -> TCNConfig:
    """A :class:`TCNConfig` from a :data:`VARIANTS` key, a canonical ``tcn_k3-3-3_c1024_in34_j17`` name, or a
    config; ``causal`` (when not None) overrides the config's flag."""
    if isinstance(variant, TCNConfig):
        cfg = variant
    elif variant in VARIANTS:
        cfg = VARIANTS[variant]
    else:
        m = _CANONICAL.match(str(variant))
        if not m:
            raise ModelError(
                f"unknown TCN variant {variant!r}: expected one of {sorted(VARIANTS)} or a name like "
                "'tcn_k3-3-3_c1024_in34_j17'"
            )
        cfg = TCNConfig(tuple(int(k) for k in m["ks"].split("-")), int(m["c"]), int(m["i"]), int(m["j"]))
    return cfg if causal is None else cfg.replace_causal(bool(causal))


# ------------------------------------------------------------------------------------------------ modules --
class ConvBNReLU(nn.Module):
    """mmcv ``ConvModule(conv_cfg=Conv1d, norm_cfg=BN1d)``: bias-free valid Conv1d -> BatchNorm1d -> ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, kernel, stride=stride, dilation=dilation, padding=0, bias=False)
        self.bn = nn.BatchNorm1d(cout, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.activate = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.bn(self.conv(x)))


class BasicTemporalBlock(nn.Module):
    """conv1 (kernel k; strided: stride k / dilated: dilation d) -> conv2 (1x1), each followed by dropout, plus
    the residual slice of the block input aligned with the output (no ReLU after the addition)."""

    def __init__(self, channels: int, kernel: int, dilation: int, form: str, causal: bool, dropout: float) -> None:
        super().__init__()
        self.kernel = kernel
        self.form = form
        if form == "strided":
            conv1 = ConvBNReLU(channels, channels, kernel, stride=kernel)
            self.shift = kernel // 2 if causal else 0
            self.start = self.shift + kernel // 2
            self.end_trim = 0
        else:
            conv1 = ConvBNReLU(channels, channels, kernel, dilation=dilation)
            pad = (kernel - 1) * dilation // 2
            self.shift = (kernel // 2) * dilation if causal else 0
            self.start = pad + self.shift
            self.end_trim = pad - self.shift  # frames dropped at the end: res = x[:, :, start : L - end_trim]
        self.conv1 = nn.Sequential(conv1)
        self.conv2 = nn.Sequential(ConvBNReLU(channels, channels, 1))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.dropout(self.conv1(x))
        out = self.dropout(self.conv2(out))
        if self.form == "strided":
            res = x[:, :, self.start::self.kernel]
        elif self.end_trim:
            res = x[:, :, self.start:-self.end_trim]
        else:
            res = x[:, :, self.start:]
        return out + res


class TCN(nn.Module):
    """mmpose ``TCN`` backbone (``residual=True``, ``max_norm=None``); returns the last block's features only."""

    def __init__(self, cfg: TCNConfig, form: str) -> None:
        super().__init__()
        k0 = cfg.kernel_sizes[0]
        self.expand_conv = ConvBNReLU(cfg.in_channels, cfg.channels, k0, stride=k0 if form == "strided" else 1)
        self.dropout = nn.Dropout(cfg.dropout)
        self.tcn_blocks = nn.ModuleList(
            BasicTemporalBlock(cfg.channels, k, d, form, cfg.causal, cfg.dropout)
            for k, d in zip(cfg.kernel_sizes[1:], cfg.dilations)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.expand_conv(x))
        for block in self.tcn_blocks:
            x = block(x)
        return x


class TemporalRegressionHead(nn.Module):
    """Plain ``Conv1d(channels, 3K, 1)`` with bias (no BN, no activation)."""

    def __init__(self, channels: int, num_joints: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, 3 * num_joints, 1, bias=True)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.conv(feats)


def _exporting() -> bool:
    """True while torch traces/exports the module (shape checks would bake or guard symbolic sizes)."""
    compiling = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    return bool(torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export()
                or (compiling is not None and compiling()))


class VideoPoseLifter(nn.Module):
    """``keypoints (N, T, K, C)`` float32 (codec-normalised 2D) -> ``(N, T_out, K, 3)`` root-relative 3D.

    Strided: ``T`` must be a multiple of the receptive field ``RF``; ``T_out = T / RF``.
    Dilated: ``T >= RF``; ``T_out = T - RF + 1``. Attributes: ``config``, ``form``, ``causal``,
    ``receptive_field``, ``input_joint_order`` (``h36m`` | ``coco``: the 2D joint order the weights expect).
    """

    def __init__(self, cfg: TCNConfig, form: str = "strided", input_joint_order: str = "h36m") -> None:
        super().__init__()
        if form not in FORMS:
            raise ModelError(f"TCN form={form!r}: expected one of {FORMS}")
        if input_joint_order not in INPUT_JOINT_ORDERS:
            raise ModelError(f"input_joint_order={input_joint_order!r}: expected one of {INPUT_JOINT_ORDERS}")
        self.config = cfg
        self.form = form
        self.causal = cfg.causal
        self.receptive_field = cfg.receptive_field
        self.num_joints = cfg.num_joints
        self.input_joint_order = input_joint_order
        self.backbone = TCN(cfg, form)
        self.head = TemporalRegressionHead(cfg.channels, cfg.num_joints)

    def _check_input(self, keypoints: torch.Tensor) -> None:
        cfg = self.config
        if keypoints.dim() != 4 or keypoints.shape[2] * keypoints.shape[3] != cfg.in_channels:
            raise Pose3DError(
                f"TCN lifter input must be (N, T, {cfg.num_joints}, {cfg.coords_in}), got {tuple(keypoints.shape)}"
            )
        t, rf = int(keypoints.shape[1]), cfg.receptive_field
        if self.form == "strided" and t % rf:
            raise Pose3DError(f"strided TCN lifter (RF {rf}) needs T a multiple of {rf} frames, got T={t}")
        if self.form == "dilated" and t < rf:
            raise Pose3DError(f"dilated TCN lifter (RF {rf}) needs T >= {rf} frames, got T={t}")

    def forward(self, keypoints: torch.Tensor) -> torch.Tensor:
        if not _exporting():
            self._check_input(keypoints)
        # (N, T, K, C) -> (N, T, K*C) -> (N, K*C, T): channel c = C*k + d, the codec's (K, C, T) layout
        x = keypoints.flatten(2).transpose(1, 2)
        y = self.head(self.backbone(x))  # (N, 3K, T_out)
        return y.transpose(1, 2).unflatten(2, (self.num_joints, 3))


# ------------------------------------------------------------------------------------- state-dict helpers --
_EXPAND = "backbone.expand_conv.conv.weight"
_HEAD = "head.conv.weight"
_BLOCK_CONV1 = re.compile(r"^backbone\.tcn_blocks\.(\d+)\.conv1\.0\.conv\.weight$")
_BN_PARAMS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _original_to_mmpose_key(key: str) -> Optional[str]:
    if key == "expand_conv.weight":
        return "backbone.expand_conv.conv.weight"
    if key.startswith("expand_bn."):
        return "backbone.expand_conv.bn." + key[len("expand_bn."):]
    m = re.match(r"^layers_(conv|bn)\.(\d+)\.(.+)$", key)
    if m:
        kind, idx, param = m[1], int(m[2]), m[3]
        which = "conv1" if idx % 2 == 0 else "conv2"
        return f"backbone.tcn_blocks.{idx // 2}.{which}.0.{'conv' if kind == 'conv' else 'bn'}.{param}"
    if key.startswith("shrink."):
        return "head.conv." + key[len("shrink."):]
    return None


def convert_original_videopose3d(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Rename an original VideoPose3D ``model_pos`` state dict to mmpose keys
    (docs/MMPOSE_BEHAVIOUR.md, Checkpoints).

    ``expand_conv`` -> ``backbone.expand_conv.conv``, ``expand_bn`` -> ``backbone.expand_conv.bn``,
    ``layers_conv/bn.<2i>`` -> ``backbone.tcn_blocks.<i>.conv1.0.conv/bn``, ``<2i+1>`` -> ``conv2``,
    ``shrink`` -> ``head.conv``. Tensors are shared, not copied. Unknown keys raise :class:`ModelError`.
    """
    out: Dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        new = _original_to_mmpose_key(key)
        if new is None:
            unknown.append(key)
        else:
            out[new] = value
    if unknown:
        raise ModelError(
            f"not an original VideoPose3D model_pos state dict: unknown keys {unknown[:6]} (expected expand_conv, "
            "expand_bn, layers_conv.<j>, layers_bn.<j>, shrink)"
        )
    return out


def convert_to_original_videopose3d(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Inverse of :func:`convert_original_videopose3d`: mmpose keys -> original ``model_pos`` keys."""
    out: Dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key == "backbone.expand_conv.conv.weight":
            new = "expand_conv.weight"
        elif key.startswith("backbone.expand_conv.bn."):
            new = "expand_bn." + key[len("backbone.expand_conv.bn."):]
        elif key.startswith("head.conv."):
            new = "shrink." + key[len("head.conv."):]
        else:
            m = re.match(r"^backbone\.tcn_blocks\.(\d+)\.conv([12])\.0\.(conv|bn)\.(.+)$", key)
            if not m:
                raise ModelError(f"cannot map {key!r} to the original VideoPose3D layout")
            idx = 2 * int(m[1]) + (int(m[2]) - 1)
            new = f"layers_{m[3]}.{idx}.{m[4]}"
        out[new] = value
    return out


def guess_input_joint_order(name: str, family: str) -> str:
    """Which 2D joint order a checkpoint expects, from its family and file name.

    mmpose checkpoints (family ``tcn``) were all trained on H36M-ordered 2D. Of the original VideoPose3D files,
    the in-the-wild ``pretrained_h36m_detectron_coco.bin`` (and its ``*_detectron_coco*`` siblings) takes Detectron
    COCO-ordered keypoints unconverted (docs/MMPOSE_BEHAVIOUR.md, VideoPose3D), so an original checkpoint whose
    file name mentions ``coco`` is read as ``coco``. A heuristic on released file names: pass
    ``input_joint_order`` explicitly when the name does not tell.
    """
    if family == "videopose3d_original" and "coco" in name.lower():
        return "coco"
    return "h36m"


def _split_ignored(state_dict: Mapping[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    kept: Dict[str, torch.Tensor] = {}
    ignored: List[str] = []
    for k, v in state_dict.items():
        if k.startswith(IGNORED_PREFIXES):
            ignored.append(k)
        else:
            kept[k] = v
    return kept, ignored


def _to_mmpose_layout(state_dict: Mapping[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], str]:
    """(state dict with mmpose TCN keys, source family); raises ModelError for other families."""
    try:
        family = detect_family(state_dict)
    except ModelError as exc:
        raise ModelError(f"not a VideoPose3D TCN lifter checkpoint: {exc}") from None
    if family == "videopose3d_original":
        return convert_original_videopose3d(state_dict), family
    if family != "tcn":
        raise ModelError(
            f"this is a {family} checkpoint, not a VideoPose3D TCN lifter (expected backbone.expand_conv.* and "
            "head.conv.*, or original VideoPose3D expand_conv/layers_conv/shrink keys)"
        )
    return dict(state_dict), family


def config_from_state_dict(state_dict: Mapping[str, torch.Tensor], causal: bool = False) -> TCNConfig:
    """Derive the architecture from tensor shapes (mmpose or original keys): kernel sizes from the expand and
    conv1 weights (their count gives the number of blocks), channels, input channels, ``K = head out / 3``."""
    sd, _ = _to_mmpose_layout(state_dict)
    sd, _ = _split_ignored(sd)
    for key in (_EXPAND, _HEAD):
        if key not in sd:
            raise ModelError(f"TCN state dict has no {key!r}")
    expand, head = sd[_EXPAND], sd[_HEAD]
    if expand.dim() != 3 or head.dim() != 3 or head.shape[2] != 1 or head.shape[0] % 3:
        raise ModelError(
            f"TCN state dict: {_EXPAND} {tuple(expand.shape)} must be (C, K*2, k0) and {_HEAD} "
            f"{tuple(head.shape)} must be (3K, C, 1)"
        )
    blocks = sorted(int(m[1]) for m in (_BLOCK_CONV1.match(k) for k in sd) if m)
    if blocks != list(range(len(blocks))):
        raise ModelError(f"TCN state dict: block indices {blocks} are not contiguous from 0")
    kernels = [int(expand.shape[2])]
    for i in blocks:
        w = sd[f"backbone.tcn_blocks.{i}.conv1.0.conv.weight"]
        if w.dim() != 3:
            raise ModelError(f"TCN state dict: block {i} conv1 weight has shape {tuple(w.shape)}, expected (C, C, k)")
        kernels.append(int(w.shape[2]))
    return TCNConfig(kernel_sizes=tuple(kernels), channels=int(expand.shape[0]), in_channels=int(expand.shape[1]),
                     num_joints=int(head.shape[0]) // 3, causal=causal)


def detect_variant(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Variant name from shapes: a :data:`VARIANTS` key (``videopose3d_27f`` ...) or a canonical
    ``tcn_k..._c..._in..._j...`` name for any other layout (both accepted by :func:`build_model`). Causality is
    not stored in weights and is not detected."""
    return config_from_state_dict(state_dict).name


def build_model(variant: Union[str, TCNConfig], form: str = "strided", causal: Optional[bool] = None,
                input_joint_order: str = "h36m") -> VideoPoseLifter:
    """A fresh (random-weight) :class:`VideoPoseLifter` in eval mode. ``causal`` None keeps the config's flag
    (False for every :data:`VARIANTS` entry)."""
    cfg = resolve_variant(variant, causal)
    return VideoPoseLifter(cfg, form=form, input_joint_order=input_joint_order).eval()


def _diff_report(model: nn.Module, sd: Mapping[str, torch.Tensor]) -> List[str]:
    want = model.state_dict()
    missing = [k for k in want if k not in sd]
    unexpected = [k for k in sd if k not in want]
    shapes = [f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(want[k].shape)}"
              for k in want if k in sd and tuple(sd[k].shape) != tuple(want[k].shape)]
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {missing[:6]}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {unexpected[:6]}")
    if shapes:
        problems.append(f"shape mismatches ({len(shapes)}): {shapes[:4]}")
    return problems


def load_model(state_dict: Mapping[str, torch.Tensor], arch: Union[str, TCNConfig, None] = None,
               form: str = "strided", causal: bool = False,
               input_joint_order: Optional[str] = None) -> Tuple[VideoPoseLifter, str]:
    """Build the lifter for ``state_dict`` (mmpose TCN keys, or an original VideoPose3D ``model_pos``) and load it
    strictly. Returns ``(model in eval mode, variant name)``.

    ``arch``: a variant name/config to insist on (default: detected from shapes); ``form``: ``strided`` |
    ``dilated``; ``causal``: residual alignment (not stored in checkpoints); ``input_joint_order``: ``h36m`` |
    ``coco`` (default ``h36m``; see :func:`guess_input_joint_order` for original in-the-wild files).
    ``num_batches_tracked`` buffers are optional; ``traj_backbone.*``/``traj_head.*`` (semi-supervised extras) are
    ignored with a log line. Any other missing/unexpected key or shape mismatch raises :class:`ModelError`
    listing them.
    """
    sd, family = _to_mmpose_layout(state_dict)
    sd, ignored = _split_ignored(sd)
    if ignored:
        log.info("TCN lifter: ignoring %d semi-supervised trajectory-model keys (%s, ...)", len(ignored), ignored[0])
    cfg = resolve_variant(arch, causal) if arch is not None else config_from_state_dict(sd, causal=causal)
    model = VideoPoseLifter(cfg, form=form, input_joint_order=input_joint_order or "h36m")
    for key, value in model.state_dict().items():  # num_batches_tracked is optional in both formats
        if key.endswith(".num_batches_tracked") and key not in sd:
            sd[key] = torch.zeros_like(value)
    problems = _diff_report(model, sd)
    if problems:
        detected = ""
        if arch is not None:
            try:
                detected = f"; the checkpoint looks like {detect_variant(sd)}"
            except ModelError:
                pass
        raise ModelError(
            f"TCN lifter {cfg.name} ({family} checkpoint) does not match the state dict{detected}: "
            + "; ".join(problems)
        )
    model.load_state_dict(sd, strict=True)
    return model.eval(), cfg.name
