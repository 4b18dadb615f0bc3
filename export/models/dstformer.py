"""MotionBERT: the DSTformer backbone + ``MotionRegressionHead`` of mmpose, in plain torch.

Spec: ../shared/docs/spec/inferencer.md section 5 (mmpose ``DSTFormer`` / ``MotionRegressionHead``). Parameter names
equal mmpose's state-dict keys (``backbone.blocks_st.0.attn_s.qkv.weight``, ``head.pre_logits.fc.bias``, ...), so an
mmpose checkpoint (``motionbert_ft_h36m-d80af323_20230531.pth``) loads with ``strict=True``; an original MotionBERT
release (``best_epoch.bin``: ``model_pos``, ``module.`` prefixes) loads through :func:`convert_original_motionbert`
(the key table of spec section 5.2).

The module takes ``keypoints (N, T, K, 3)`` float32 (x, y, confidence; codec-normalised) with ``1 <= T <= max_frames``
(the length of ``temp_embed``) and returns the raw head output ``(N, T, K, 3)``: no flip averaging, no decode.

Layout differences that are not in the weights:

- **LayerNorm eps.** 1e-6 in both layouts. The real mmpose forward (``mb/stage.npz``) is reproduced bit for bit
  with 1e-6 (with 1e-5 the outputs differ by ~8e-4 of their scale), and the original MotionBERT builds its model
  through ``lib/utils/learning.py: load_backbone`` with ``partial(nn.LayerNorm, eps=1e-6)`` (``train.py``,
  ``infer_wild.py``); the class default 1e-5 of ``DSTformer(norm_layer=nn.LayerNorm)`` is not what the released
  weights ran with. (Spec I9 says the original uses 1e-5: the code disagrees.) ``ln_eps`` overrides it.
- **Heads.** The number of attention heads is not visible in any tensor shape (qkv is ``3 * dim`` wide either way):
  it comes from the variant table (8 in every released model).

The forward keeps the activations as ``(N, T, K, D)`` instead of mmpose's ``(N*T, K, D)``: LayerNorm and Linear act
per token, spatial attention runs over ``K`` and temporal attention over ``T``, exactly as mmpose's reshapes do, but
without reinterpreting memory, so one ONNX graph takes dynamic ``N`` and ``T``. Attention is plain
MatMul -> Mul(scale) -> Softmax -> MatMul (no fused kernels, no custom ops); GELU is the exact erf form.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Dict, Mapping, Optional, Tuple, Union

import torch
from torch import nn

from ...engines.errors import ModelError, Pose3DError
from ._loading import mismatch_report, shapes_of, strict_load

__all__ = [
    "DSTformerConfig",
    "LAYOUT_LN_EPS",
    "MotionBERT",
    "VARIANTS",
    "build_model",
    "config_from_state_dict",
    "convert_original_motionbert",
    "convert_to_original_motionbert",
    "detect_variant",
    "load_model",
]

#: LayerNorm eps of each checkpoint layout (see the module docstring).
LAYOUT_LN_EPS: Dict[str, float] = {"motionbert": 1e-6, "motionbert_original": 1e-6}


# ------------------------------------------------------------------------------------------------ blocks --
class Attention(nn.Module):
    """Multi-head self-attention over the joints (``spatial``) or over the frames (``temporal``) of
    ``(N, T, K, D)`` tokens: ``qkv`` Linear(D, 3D) split as (3, heads, D/heads), ``proj`` Linear(D, D)."""

    def __init__(self, dim: int, num_heads: int, mode: str) -> None:
        super().__init__()
        if mode not in ("spatial", "temporal"):
            raise ModelError(f"attention mode {mode!r}: expected 'spatial' or 'temporal'")
        if dim % num_heads:
            raise ModelError(f"DSTformer dim {dim} is not a multiple of num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.mode = mode
        self.proj = nn.Linear(dim, dim)  # registered before qkv, as in mmpose (the state-dict key order)
        self.qkv = nn.Linear(dim, dim * 3, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, j, c = x.shape
        qkv = self.qkv(x).reshape(n, t, j, 3, self.num_heads, self.head_dim)  # (N, T, K, 3, H, d)
        if self.mode == "spatial":
            qkv = qkv.permute(3, 0, 1, 4, 2, 5)  # (3, N, T, H, K, d): attend over K
        else:
            qkv = qkv.permute(3, 0, 2, 4, 1, 5)  # (3, N, K, H, T, d): attend over T
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        out = attn @ v
        if self.mode == "spatial":
            out = out.permute(0, 1, 3, 2, 4)  # (N, T, K, H, d)
        else:
            out = out.permute(0, 3, 1, 2, 4)  # (N, K, H, T, d) -> (N, T, K, H, d)
        return self.proj(out.reshape(n, t, j, c))


def _mlp(dim: int, hidden: int) -> nn.Sequential:
    """Linear -> exact GELU -> Linear -> Dropout(0): the indices ``.0`` / ``.2`` of the state-dict keys."""
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="none"), nn.Linear(hidden, dim), nn.Dropout(0.0))


class AttentionBlock(nn.Module):
    """Pre-norm residual pair of (attention, MLP) in each stream; ``st``: spatial first, ``ts``: temporal first."""

    def __init__(self, dim: int, num_heads: int, hidden: int, order: str, eps: float) -> None:
        super().__init__()
        self.order = order
        self.norm1_s = nn.LayerNorm(dim, eps=eps)
        self.norm1_t = nn.LayerNorm(dim, eps=eps)
        self.attn_s = Attention(dim, num_heads, "spatial")
        self.attn_t = Attention(dim, num_heads, "temporal")
        self.norm2_s = nn.LayerNorm(dim, eps=eps)
        self.norm2_t = nn.LayerNorm(dim, eps=eps)
        self.mlp_s = _mlp(dim, hidden)
        self.mlp_t = _mlp(dim, hidden)

    def _spatial(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn_s(self.norm1_s(x))
        return x + self.mlp_s(self.norm2_s(x))

    def _temporal(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn_t(self.norm1_t(x))
        return x + self.mlp_t(self.norm2_t(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.order == "st":
            return self._temporal(self._spatial(x))
        return self._spatial(self._temporal(x))


# ------------------------------------------------------------------------------------------------- model --
@dataclass(frozen=True)
class DSTformerConfig:
    """Architecture of one MotionBERT model.

    ``dim``: feature size D (``feat_size``); ``hidden``: MLP hidden size (``D * mlp_ratio``); ``max_frames``: length
    of ``temp_embed`` (the longest clip); ``embedding_size``: the head's ``pre_logits`` width; ``ln_eps``: the
    LayerNorm eps (per checkpoint layout, :data:`LAYOUT_LN_EPS`).
    """

    dim: int = 512
    depth: int = 5
    num_heads: int = 8
    hidden: int = 1024
    max_frames: int = 243
    num_joints: int = 17
    in_channels: int = 3
    out_channels: int = 3
    embedding_size: int = 512
    ln_eps: float = 1e-6

    @property
    def name(self) -> str:
        """A :data:`VARIANTS` key when the architecture is one (eps aside), else a canonical description."""
        for key, cfg in VARIANTS.items():
            if replace(cfg, ln_eps=self.ln_eps) == self:
                return key
        return (f"dstformer_d{self.dim}_l{self.depth}_h{self.num_heads}_m{self.hidden}_t{self.max_frames}"
                f"_j{self.num_joints}_e{self.embedding_size}")


#: The released MotionBERT architectures (MotionBERT ``configs/pose3d/MB_*.yaml``; mmpose uses the full one).
VARIANTS: Dict[str, DSTformerConfig] = {
    "motionbert_243f": DSTformerConfig(dim=512, hidden=1024),
    "motionbert_lite_243f": DSTformerConfig(dim=256, hidden=1024),
}


class DSTFormer(nn.Module):
    """mmpose ``DSTFormer`` (``att_fuse=True``): ``(N, T, K, C)`` -> features ``(N, T, K, D)``."""

    def __init__(self, cfg: DSTformerConfig) -> None:
        super().__init__()
        d = cfg.dim
        # parameters registered before the submodules: the state-dict order of the mmpose file
        self.temp_embed = nn.Parameter(torch.zeros(1, cfg.max_frames, 1, d))
        self.spat_embed = nn.Parameter(torch.zeros(1, cfg.num_joints, d))
        self.joints_embed = nn.Linear(cfg.in_channels, d)
        self.blocks_st = nn.ModuleList(
            AttentionBlock(d, cfg.num_heads, cfg.hidden, "st", cfg.ln_eps) for _ in range(cfg.depth))
        self.blocks_ts = nn.ModuleList(
            AttentionBlock(d, cfg.num_heads, cfg.hidden, "ts", cfg.ln_eps) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(d, eps=cfg.ln_eps)
        self.attn_regress = nn.ModuleList(nn.Linear(2 * d, 2) for _ in range(cfg.depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        x = self.joints_embed(x) + self.spat_embed  # (N, T, K, D) + (1, K, D)
        x = x + self.temp_embed[:, :t]  # (1, T, 1, D): a Slice with a dynamic end in ONNX
        for blk_st, blk_ts, regress in zip(self.blocks_st, self.blocks_ts, self.attn_regress):
            x_st, x_ts = blk_st(x), blk_ts(x)
            alpha = regress(torch.cat([x_st, x_ts], dim=-1)).softmax(dim=-1)
            x = x_st * alpha[..., 0:1] + x_ts * alpha[..., 1:2]
        return self.norm(x)


class MotionRegressionHead(nn.Module):
    """``pre_logits.fc`` Linear -> tanh -> ``fc`` Linear: features ``(..., D)`` -> ``(..., out_channels)``."""

    def __init__(self, cfg: DSTformerConfig) -> None:
        super().__init__()
        self.pre_logits = nn.Sequential()
        self.pre_logits.add_module("fc", nn.Linear(cfg.dim, cfg.embedding_size))
        self.pre_logits.add_module("act", nn.Tanh())
        self.fc = nn.Linear(cfg.embedding_size, cfg.out_channels)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pre_logits(feats))


def _exporting() -> bool:
    """True while torch traces/exports the module (the T check would bake a symbolic size)."""
    return bool(torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export())


class MotionBERT(nn.Module):
    """``keypoints (N, T, K, C)`` float32 -> raw ``(N, T, K, 3)``; ``1 <= T <= config.max_frames``."""

    def __init__(self, cfg: DSTformerConfig) -> None:
        super().__init__()
        self.config = cfg
        self.max_frames = cfg.max_frames
        self.num_joints = cfg.num_joints
        self.backbone = DSTFormer(cfg)
        self.head = MotionRegressionHead(cfg)

    def check_input(self, keypoints: torch.Tensor) -> None:
        """:class:`Pose3DError` unless ``keypoints`` is ``(N, T, K, C)`` with ``1 <= T <= max_frames``."""
        cfg = self.config
        if keypoints.dim() != 4 or tuple(keypoints.shape[2:]) != (cfg.num_joints, cfg.in_channels):
            raise Pose3DError(f"MotionBERT input must be (N, T, {cfg.num_joints}, {cfg.in_channels}), "
                              f"got {tuple(keypoints.shape)}")
        t = int(keypoints.shape[1])
        if not 1 <= t <= cfg.max_frames:
            raise Pose3DError(f"MotionBERT takes 1..{cfg.max_frames} frames (the length of its temp_embed), "
                              f"got T={t}")

    def forward(self, keypoints: torch.Tensor) -> torch.Tensor:
        if not _exporting():
            self.check_input(keypoints)
        return self.head(self.backbone(keypoints))


def build_model(variant: Union[str, DSTformerConfig], ln_eps: Optional[float] = None) -> MotionBERT:
    """A fresh (random-weight) model in eval mode from a :data:`VARIANTS` key or a config."""
    if isinstance(variant, DSTformerConfig):
        cfg = variant
    elif variant in VARIANTS:
        cfg = VARIANTS[variant]
    else:
        raise ModelError(f"unknown MotionBERT variant {variant!r}; known: {', '.join(VARIANTS)}")
    return MotionBERT(cfg if ln_eps is None else replace(cfg, ln_eps=ln_eps)).eval()


# ------------------------------------------------------------------------------- checkpoint key mapping --
#: original ``model_pos`` key prefix -> mmpose key prefix (spec section 5.2); block keys are handled by regex.
_ORIGINAL_PREFIXES: Tuple[Tuple[str, str], ...] = (
    ("joints_embed.", "backbone.joints_embed."),
    ("norm.", "backbone.norm."),
    ("ts_attn.", "backbone.attn_regress."),
    ("pre_logits.fc.", "head.pre_logits.fc."),
    ("head.", "head.fc."),
)
_ORIGINAL_PARAMS = {"pos_embed": "backbone.spat_embed", "temp_embed": "backbone.temp_embed"}
_BLOCK_MLP = re.compile(r"^(blocks_(?:st|ts)\.\d+\.mlp_[st])\.fc([12])\.(.+)$")
_MMPOSE_MLP = re.compile(r"^backbone\.(blocks_(?:st|ts)\.\d+\.mlp_[st])\.([02])\.(.+)$")


def _original_to_mmpose_key(key: str) -> Optional[str]:
    if key in _ORIGINAL_PARAMS:
        return _ORIGINAL_PARAMS[key]
    m = _BLOCK_MLP.match(key)
    if m:
        return f"backbone.{m[1]}.{0 if m[2] == '1' else 2}.{m[3]}"
    if key.startswith(("blocks_st.", "blocks_ts.")):
        return "backbone." + key
    for old, new in _ORIGINAL_PREFIXES:
        if key.startswith(old):
            return new + key[len(old):]
    return None


def convert_original_motionbert(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Rename an original MotionBERT ``model_pos`` state dict (``module.`` prefixes stripped or not) to mmpose keys
    (spec section 5.2). Tensors are shared, not copied; unknown keys raise :class:`ModelError`."""
    out: Dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        new = _original_to_mmpose_key(key[len("module."):] if key.startswith("module.") else key)
        if new is None:
            unknown.append(key)
        else:
            out[new] = value
    if unknown:
        raise ModelError(f"not an original MotionBERT model_pos state dict: unknown keys {unknown[:6]}")
    return out


def convert_to_original_motionbert(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Inverse of :func:`convert_original_motionbert`: mmpose keys -> original ``model_pos`` keys (no prefix)."""
    inverse = {v: k for k, v in _ORIGINAL_PARAMS.items()}
    out: Dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        m = _MMPOSE_MLP.match(key)
        if key in inverse:
            new = inverse[key]
        elif m:
            new = f"{m[1]}.fc{1 if m[2] == '0' else 2}.{m[3]}"
        elif key.startswith(("backbone.blocks_st.", "backbone.blocks_ts.")):
            new = key[len("backbone."):]
        else:
            new = next((old + key[len(pre):] for old, pre in _ORIGINAL_PREFIXES if key.startswith(pre)), None)
        if new is None:
            raise ModelError(f"cannot map {key!r} to the original MotionBERT layout")
        out[new] = value
    return out


# -------------------------------------------------------------------------------------- variant detection --
def _to_mmpose_layout(state_dict: Mapping[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], str]:
    """(state dict with mmpose keys, source layout ``motionbert`` | ``motionbert_original``)."""
    from ..checkpoint import detect_family

    family = detect_family(state_dict)
    if family == "motionbert_original":
        return convert_original_motionbert(state_dict), family
    if family != "motionbert":
        raise ModelError(f"this is a {family} checkpoint, not a MotionBERT (DSTformer) lifter")
    return dict(state_dict), family


def _shape(sd: Mapping[str, torch.Tensor], key: str, rank: int) -> Tuple[int, ...]:
    if key not in sd or sd[key].dim() != rank:
        got = tuple(sd[key].shape) if key in sd else "missing"
        raise ModelError(f"MotionBERT state dict: {key} is {got}, expected a rank-{rank} tensor")
    return tuple(int(v) for v in sd[key].shape)


def config_from_state_dict(state_dict: Mapping[str, torch.Tensor], ln_eps: Optional[float] = None,
                           num_heads: Optional[int] = None) -> DSTformerConfig:
    """The architecture from tensor shapes (either layout): D, input channels, joints, max frames, depth, MLP
    width, head sizes. Heads are not in the weights: the matching :data:`VARIANTS` entry's (8), or ``num_heads``."""
    sd, layout = _to_mmpose_layout(state_dict)
    d, c_in = _shape(sd, "backbone.joints_embed.weight", 2)
    _, t_max, _, d_t = _shape(sd, "backbone.temp_embed", 4)
    _, k, _ = _shape(sd, "backbone.spat_embed", 3)
    blocks = sorted({int(m[1]) for m in (re.match(r"^backbone\.blocks_st\.(\d+)\.", key) for key in sd) if m})
    if not blocks or blocks != list(range(len(blocks))):
        raise ModelError(f"MotionBERT state dict: blocks_st indices {blocks} are not contiguous from 0")
    hidden = _shape(sd, "backbone.blocks_st.0.mlp_s.0.weight", 2)[0]
    emb, _ = _shape(sd, "head.pre_logits.fc.weight", 2)
    out, _ = _shape(sd, "head.fc.weight", 2)
    if d_t != d:
        raise ModelError(f"MotionBERT state dict: temp_embed width {d_t} != joints_embed width {d}")
    cfg = DSTformerConfig(dim=d, depth=len(blocks), hidden=hidden, max_frames=t_max, num_joints=k,
                          in_channels=c_in, out_channels=out, embedding_size=emb,
                          ln_eps=LAYOUT_LN_EPS[layout] if ln_eps is None else ln_eps)
    known = next((v for v in VARIANTS.values() if (v.dim, v.hidden) == (d, hidden)), None)
    return replace(cfg, num_heads=num_heads or (known.num_heads if known else cfg.num_heads))


def detect_variant(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Variant name from the shapes: a :data:`VARIANTS` key or a canonical ``dstformer_...`` description."""
    return config_from_state_dict(state_dict).name


def load_model(state_dict: Mapping[str, torch.Tensor], arch: Optional[str] = None, ln_eps: Optional[float] = None,
               num_heads: Optional[int] = None) -> Tuple[MotionBERT, str]:
    """Build the model for ``state_dict`` (mmpose layout, or an original ``model_pos`` dict) and load it strictly.

    ``arch``: a :data:`VARIANTS` key to insist on (default: detected); ``ln_eps``: override the layout's LayerNorm
    eps; ``num_heads``: override the variant's head count. Returns ``(model in eval mode, variant name)``; any
    missing/unexpected key or shape mismatch raises :class:`ModelError` listing them."""
    sd, layout = _to_mmpose_layout(state_dict)
    cfg = config_from_state_dict(sd, ln_eps=LAYOUT_LN_EPS[layout] if ln_eps is None else ln_eps,
                                 num_heads=num_heads)
    if arch is not None:
        if arch not in VARIANTS:
            raise ModelError(f"unknown MotionBERT arch {arch!r}; known: {', '.join(VARIANTS)}")
        want = replace(VARIANTS[arch], ln_eps=cfg.ln_eps)
        if want != cfg:
            model = MotionBERT(want)
            problems = mismatch_report(shapes_of(model.state_dict()), shapes_of(sd)) or ["different max_frames"]
            raise ModelError(f"MotionBERT arch {arch} does not match the checkpoint ({cfg.name}): "
                             + "; ".join(problems))
    model = MotionBERT(cfg)
    return strict_load(model, sd, f"MotionBERT {cfg.name} ({layout} layout)"), cfg.name
