"""Load official OpenMMLab / VideoPose3D ``.pth`` checkpoints safely, and tell the model families apart.

Loading never runs code from the file: :func:`load_checkpoint` calls ``torch.load(..., weights_only=True)`` and
allow-lists, for the duration of that one call, exactly the numpy globals that the published checkpoints pickle
in their ``meta`` (mmpose 1.x files keep the dataset metainfo there, with numpy arrays). Any other global (a
``__reduce__`` payload, an arbitrary class) is refused before it is called or instantiated.

The container layouts understood (docs/MMPOSE_BEHAVIOUR.md, Checkpoints):

- mmengine / mmpose / mmdet: ``{'meta': {...}, 'state_dict': OrderedDict}`` (optimizer etc. ignored);
- original VideoPose3D: ``{'model_pos': OrderedDict, 'model_traj': ..., 'epoch': ..., ...}``, and the original
  MotionBERT release the same way (``{'epoch', 'lr', 'optimizer', 'model_pos', 'min_loss'}``);
- a bare state dict (every value a tensor).

Two normalisations of mmengine's loader are applied to every family: a leading ``module.`` is stripped
(``revise_keys=[(r'^module\\.', '')]``), and the mmpose 0.x -> 1.x pre-hook of ``BasePoseEstimator`` is
reproduced: when the state dict's root ``_metadata`` version is missing or below 2, every key containing
``keypoint_head`` is renamed with ``head`` in its place; ``data_preprocessor.mean``/``.std`` are dropped.
"""
from __future__ import annotations

import hashlib
import logging
import pickle
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch
from pose3d_rt.engines.errors import BackendUnavailableError, ModelError

log = logging.getLogger(__name__)

__all__ = [
    "FAMILIES",
    "FAMILY_SIGNATURES",
    "POSE_ESTIMATOR_VERSION",
    "detect_family",
    "file_sha256",
    "load_checkpoint",
    "safe_numpy_globals",
]

PathLike = Union[str, Path]

#: ``BasePoseEstimator._version`` in mmpose 1.x: files whose root ``_metadata`` version is below it (or missing)
#: hold 0.x key names (``keypoint_head.*``).
POSE_ESTIMATOR_VERSION = 2

#: Keys mmpose 1.x's pre-hook drops from pose-estimator state dicts (non-persistent buffers in current code).
DROPPED_KEYS = ("data_preprocessor.mean", "data_preprocessor.std")

#: family -> human-readable signature (used in error messages); the tests in :func:`detect_family` implement them.
FAMILY_SIGNATURES: Dict[str, str] = {
    "rtmdet": "bbox_head.rtm_cls.* (RTMDet detector, mmdet 3.x)",
    "rtmpose": "head.cls_x.weight and head.gau.* (RTMPose SimCC RTMCCHead, mmpose 1.x)",
    "tcn": "backbone.expand_conv.* and head.conv.* (VideoPose3D TCN + TemporalRegressionHead, mmpose)",
    "videopose3d_original": "expand_conv.weight, layers_conv.*, shrink.* (original VideoPose3D model_pos)",
    "motionbert": "backbone.joints_embed.*, backbone.blocks_st.* and head.pre_logits.fc.* (MotionBERT DSTformer + "
                  "MotionRegressionHead, mmpose)",
    "motionbert_original": "joints_embed.*, pos_embed, blocks_st.* (original MotionBERT DSTformer model_pos)",
}
FAMILIES: Tuple[str, ...] = tuple(FAMILY_SIGNATURES)

_REFUSED = "checkpoints may only contain tensors, numpy arrays and plain containers"


# ----------------------------------------------------------------------------------------------- hashing --
def file_sha256(path: PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, read in ``chunk``-byte blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------------------------ safe unpickling --
_NUMPY_DTYPE_CLASSES = (
    "BoolDType", "Int8DType", "UInt8DType", "Int16DType", "UInt16DType", "Int32DType", "UInt32DType",
    "Int64DType", "UInt64DType", "LongDType", "ULongDType", "LongLongDType", "ULongLongDType",
    "ByteDType", "UByteDType", "ShortDType", "UShortDType", "IntDType", "UIntDType",
    "Float16DType", "Float32DType", "Float64DType", "LongDoubleDType",
    "Complex64DType", "Complex128DType", "CLongDoubleDType", "StrDType", "BytesDType",
)


def _numpy_multiarray_attr(name: str) -> Any:
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    return getattr(multiarray, name)


def _empty_bytes(*args: Any) -> bytes:
    """Stands in for ``builtins.bytes`` while unpickling: only the no-argument call, ``bytes()`` -> ``b""``.

    Protocol-2 pickles (``torch.save(..., _use_new_zipfile_serialization=False)``, the mmengine files) write a
    non-empty ``bytes`` object as ``_codecs.encode(text, "latin1")``, which torch's weights-only unpickler allows
    ("for bytes"), but an *empty* one as a call of ``builtins.bytes`` with no arguments, which it does not list.
    numpy arrays with no elements (``sigmas`` in mmpose's h36m ``dataset_meta``) pickle their data as that empty
    ``bytes``. Accepting exactly ``bytes()`` yields only a value torch already accepts through ``_codecs.encode``;
    any argument (``bytes(n)`` allocates n bytes, ``bytes(iterable)`` iterates) is refused.
    """
    if args:
        raise pickle.UnpicklingError(
            f"builtins.bytes called with {len(args)} argument(s); only bytes() (an empty buffer) is allowed")
    return b""


def safe_numpy_globals() -> List[Any]:
    """The allow-list passed to ``torch.serialization.safe_globals`` while a checkpoint is unpickled.

    What the published files need (found by loading the rebuilt fixtures and reading their pickle opcodes):
    ``_reconstruct`` and ``ndarray`` (numpy arrays in ``meta.dataset_meta``), ``dtype`` and the concrete dtype
    classes (``dtype`` objects are restored with BUILD, which torch only allows on allow-listed types), and
    ``scalar`` (numpy scalars, e.g. a best-score float64 in mmengine's meta). ``_reconstruct``/``scalar`` are
    listed under both their numpy 1.x (``numpy.core.multiarray``: how the 2021-2023 files spell them) and
    numpy 2.x (``numpy._core.multiarray``) names. Object/void dtypes are deliberately absent. ``builtins.bytes``
    is allowed as :func:`_empty_bytes` only (the empty buffer of a zero-size array in a protocol-2 pickle).
    """
    reconstruct = _numpy_multiarray_attr("_reconstruct")
    scalar = _numpy_multiarray_attr("scalar")
    allowed: List[Any] = [np.ndarray, np.dtype, (_empty_bytes, "builtins.bytes")]
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed.append((reconstruct, f"{mod}._reconstruct"))
        allowed.append((scalar, f"{mod}.scalar"))
    dtypes_mod = getattr(np, "dtypes", None)  # numpy >= 1.25; before that dtype objects are plain np.dtype
    if dtypes_mod is not None:
        seen = set()
        for name in _NUMPY_DTYPE_CLASSES:
            cls = getattr(dtypes_mod, name, None)
            if cls is not None and cls not in seen:
                seen.add(cls)
                allowed.append(cls)
    return allowed


_GLOBAL_PATTERNS = (
    re.compile(r"(builtins\.bytes) called with \d+ argument"),  # _empty_bytes: bytes(n) / bytes(iterable)
    re.compile(r"GLOBAL\s+([\w.]+)"),  # "Unsupported global: GLOBAL x.y ..." / "unsupported GLOBAL x.y whose ..."
    re.compile(r"but got <class '([\w.]+)'>"),  # "Can only build Tensor, ... but got <class 'x.Y'>"
    re.compile(r"[Uu]nsupported class ([\w.]+)"),
)


def _refused_global(message: str) -> Optional[str]:
    """The global's name if ``message`` is torch's weights-only refusal, else None."""
    if "Weights only load failed" not in message and "WeightsUnpickler" not in message:
        return None
    for pat in _GLOBAL_PATTERNS:
        m = pat.search(message)
        if m:
            return m.group(1)
    return "an object that is not allow-listed"


def _torch_load(path: Path) -> Any:
    safe_globals = getattr(torch.serialization, "safe_globals", None)
    if safe_globals is None:  # torch < 2.5
        raise BackendUnavailableError(
            f"{path}: loading checkpoints safely needs torch >= 2.5 (torch.serialization.safe_globals); "
            f"found torch {torch.__version__}"
        )
    try:
        with safe_globals(safe_numpy_globals()):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad files; classify them into one ModelError
        message = str(exc)
        refused = _refused_global(message)
        if refused is not None:
            raise ModelError(f"{path}: refused to unpickle {refused}: {_REFUSED}") from None
        reason = message.strip().splitlines()[0].split(". ")[0] if message.strip() else type(exc).__name__
        if isinstance(exc, EOFError) or "EOF" in message or "central directory" in message:
            problem = "the file is truncated or corrupt"
        else:
            problem = "not a readable PyTorch checkpoint"
        raise ModelError(f"{path}: {problem} ({type(exc).__name__}: {reason[:200]})") from None


# ----------------------------------------------------------------------------------------- containers --
def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def _root_version(sd: Any) -> Optional[int]:
    md = getattr(sd, "_metadata", None)
    if not isinstance(md, Mapping):
        return None
    root = md.get("")
    if not isinstance(root, Mapping):
        return None
    v = root.get("version")
    return int(v) if isinstance(v, (int, np.integer)) else None


def load_checkpoint(path: PathLike) -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    """Read a checkpoint file; return ``(state_dict, meta)``.

    ``state_dict``: a plain ``dict`` key -> tensor in file order (``_metadata`` dropped), with a leading
    ``module.`` stripped, and for pose-estimator files of root version < 2 (or none) ``keypoint_head`` renamed to
    ``head``. Original VideoPose3D files give their ``model_pos`` dict with its original key names (family
    ``videopose3d_original``; :func:`pose3d_rt.export.models.tcn.convert_original_videopose3d` maps them).

    ``meta``: the file's own ``meta`` dict (mmengine: ``cfg``/``config``, ``dataset_meta``, ...; original
    VideoPose3D / MotionBERT: ``epoch``, ``lr``), plus ``meta["loader"]`` describing what this function did:
    ``path``, ``format`` (``mmengine`` | ``videopose3d_original`` | ``motionbert_original`` | ``bare``),
    ``top_level_keys``,
    ``root_version`` (root ``_metadata`` version or None), ``renamed`` (number of ``keypoint_head`` keys
    renamed), ``stripped_module_prefix``, ``dropped`` (keys removed), ``has_model_traj``.

    Raises :class:`ModelError` naming ``path`` for a missing file, a directory, a truncated/corrupt file, a file
    that is not a checkpoint, a pickle that carries anything but tensors/numpy arrays/plain containers (refused
    without executing it), or a container without a state dict.
    """
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such checkpoint file")
    if path.is_dir():
        raise ModelError(f"{path}: is a directory, expected a checkpoint file (.pth)")
    if path.stat().st_size == 0:
        raise ModelError(f"{path}: the file is empty, expected a checkpoint file (.pth)")
    obj = _torch_load(path)

    loader: Dict[str, Any] = {"path": str(path)}
    meta: Dict[str, Any] = {}
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        raw = obj["state_dict"]
        loader["format"] = "mmengine"
        if isinstance(obj.get("meta"), Mapping):
            meta.update(obj["meta"])
    elif isinstance(obj, Mapping) and "model_pos" in obj and isinstance(obj["model_pos"], Mapping):
        raw = obj["model_pos"]
        loader["format"] = "videopose3d_original"
        for k in ("epoch", "lr"):
            if k in obj and not isinstance(obj[k], (torch.Tensor, Mapping)):
                meta[k] = obj[k]
    elif _is_tensor_dict(obj):
        raw = obj
        loader["format"] = "bare"
    else:
        if isinstance(obj, Mapping):
            what = f"a dict with keys {sorted(map(str, obj))[:8]}"
        else:
            what = f"a {type(obj).__name__}"
        raise ModelError(
            f"{path}: no state dict found: expected a dict with 'state_dict' (mmengine/mmpose/mmdet) or "
            f"'model_pos' (original VideoPose3D), or a bare dict of tensors; got {what}"
        )
    loader["top_level_keys"] = list(map(str, obj.keys())) if isinstance(obj, Mapping) else []
    loader["has_model_traj"] = isinstance(obj, Mapping) and isinstance(obj.get("model_traj"), Mapping)

    bad = [k for k, v in raw.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ModelError(f"{path}: the state dict holds non-tensor entries, e.g. {bad[:5]}")
    if not raw:
        raise ModelError(f"{path}: the state dict is empty")

    version = _root_version(raw)
    loader["root_version"] = version
    rename = loader["format"] != "videopose3d_original" and (version is None or version < POSE_ESTIMATOR_VERSION)
    state: Dict[str, torch.Tensor] = OrderedDict()
    stripped = renamed = 0
    dropped: List[str] = []
    for key, tensor in raw.items():
        if key.startswith("module."):
            key = key[len("module."):]
            stripped += 1
        if key in DROPPED_KEYS:
            dropped.append(key)
            continue
        if rename and "keypoint_head" in key:
            key = key.replace("keypoint_head", "head")
            renamed += 1
        if key in state:
            raise ModelError(f"{path}: key {key!r} occurs twice after normalisation (module./keypoint_head)")
        state[key] = tensor
    loader.update(stripped_module_prefix=bool(stripped), renamed=renamed, dropped=dropped)
    if loader["format"] == "videopose3d_original" and "joints_embed.weight" in state:
        loader["format"] = "motionbert_original"  # MotionBERT's train.py saves the same {'model_pos', ...} container
    if renamed:
        log.info("%s: root _metadata version %s < %d: renamed %d keypoint_head.* keys to head.*",
                 path, version, POSE_ESTIMATOR_VERSION, renamed)
    meta["loader"] = loader
    return dict(state), meta


# ------------------------------------------------------------------------------------ family detection --
def detect_family(state_dict: Mapping[str, Any]) -> str:
    """The model family of a (normalised) state dict, from its key names.

    ``rtmdet`` (``bbox_head.rtm_cls.*``), ``rtmpose`` (``head.cls_x.weight`` and ``head.gau.*``), ``tcn``
    (``backbone.expand_conv.*`` and ``head.conv.*``), ``videopose3d_original`` (``expand_conv.weight``,
    ``layers_conv.*``, ``shrink.*``), ``motionbert`` (``backbone.joints_embed.weight``, ``backbone.blocks_st.*``,
    ``head.pre_logits.fc.*``) or ``motionbert_original`` (``joints_embed.weight``, ``pos_embed``, ``blocks_st.*``).
    Anything else raises :class:`ModelError` listing the families.
    """
    keys = list(state_dict.keys())

    def has_prefix(prefix: str) -> bool:
        return any(k.startswith(prefix) for k in keys)

    if has_prefix("bbox_head.rtm_cls."):
        return "rtmdet"
    if "head.cls_x.weight" in state_dict and has_prefix("head.gau."):
        return "rtmpose"
    if has_prefix("backbone.expand_conv.") and has_prefix("head.conv."):
        return "tcn"
    if "expand_conv.weight" in state_dict and has_prefix("layers_conv.") and has_prefix("shrink."):
        return "videopose3d_original"
    if "backbone.joints_embed.weight" in state_dict and has_prefix("backbone.blocks_st.") and \
            has_prefix("head.pre_logits.fc."):
        return "motionbert"
    if "joints_embed.weight" in state_dict and "pos_embed" in state_dict and has_prefix("blocks_st."):
        return "motionbert_original"
    listing = "; ".join(f"{fam}: {sig}" for fam, sig in FAMILY_SIGNATURES.items())
    raise ModelError(
        f"unknown model family: the state dict matches none of [{listing}]; "
        f"its first keys are {keys[:6]} ({len(keys)} keys)"
    )
