"""Model resolution: turn what a user passes for a model (an .onnx, .engine or .pth path, a zoo alias, a URL)
into an Engine.

A ``.pth`` (an official OpenMMLab checkpoint) is exported to ONNX on first use and cached under
``$POSE3D_RT_HOME/onnx/`` (default ``~/.cache/pose3d_rt``), keyed by the checkpoint's sha256, so the second run
starts immediately. Exporting needs the ``[export]`` extra (torch, onnx); the error says so when it is missing.
This module is the only place where the runtime reaches into :mod:`pose3d_rt.export`, lazily.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Dict, Optional, Union

from ..engines import Engine
from ..engines.errors import ModelError
from ..errors import Pose3DError

log = logging.getLogger(__name__)

ENGINE_SUFFIXES = (".onnx", ".engine", ".plan", ".trt")
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt")


def cache_home() -> Path:
    """``$POSE3D_RT_HOME`` or ``~/.cache/pose3d_rt``."""
    return Path(os.environ.get("POSE3D_RT_HOME") or Path.home() / ".cache" / "pose3d_rt")


def file_sha256(path: Union[str, Path], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def export_cached(checkpoint: Union[str, Path], role: str, export_options: Optional[Dict[str, Any]] = None,
                  cache_dir: Optional[Path] = None) -> Path:
    """Export ``checkpoint`` to ONNX once; return the cached .onnx path (keyed by sha256 and export options)."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise ModelError(f"{checkpoint}: no such checkpoint file")
    opts = dict(export_options or {})
    digest = file_sha256(checkpoint)
    tag = "_".join(f"{k}-{v}" for k, v in sorted(opts.items()) if v is not None)
    out_dir = (cache_dir or cache_home()) / "onnx"
    out = out_dir / f"{checkpoint.stem}.{digest[:16]}{('.' + tag) if tag else ''}.onnx"
    if out.is_file():
        log.info("using cached export %s", out)
        return out
    try:
        from ..export import export_onnx  # lazy: imports torch
    except ImportError as exc:
        raise Pose3DError(
            f"{checkpoint}: .pth checkpoints are converted to ONNX on first use, which needs the [export] extra "
            f"(pip install 'pose3d-rt[export]'); or pass an .onnx exported with `pose3d-rt export` ({exc})"
        ) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    log.info("exporting %s (%s) to %s", checkpoint, role, out)
    return Path(export_onnx(checkpoint, out, **opts))


def lifter_export_options(causal: Optional[bool] = None) -> Dict[str, Any]:
    """How a lifter ``.pth`` is exported for the streaming pipeline (one window -> one frame); also the key of the
    export cache, so the zoo's ``fetch`` and the pipeline share one file."""
    opts: Dict[str, Any] = {"form": "strided"}
    if causal is not None:
        opts["causal"] = bool(causal)
    return opts


def load_model(model: Union[str, Path, Engine], role: str, device: str = "cpu", threads: Optional[int] = None,
               export_options: Optional[Dict[str, Any]] = None) -> Engine:
    """Return an :class:`Engine` for ``model``: an Engine, a path to .onnx / .engine / .pth, a zoo alias or an
    http(s) URL of a checkpoint (fetched into the cache, then exported once)."""
    if isinstance(model, Engine) or (hasattr(model, "run") and hasattr(model, "inputs")):
        return model  # type: ignore[return-value]
    from ..engines import load_engine

    path = Path(model)
    if not path.exists():  # a zoo alias or an http(s) URL: fetched (verified, cached) to a local .pth
        from . import registry as zoo

        if zoo.is_remote(str(model)):
            path = zoo.resolve_model(str(model), role)
    suffix = path.suffix.lower()
    if suffix in CHECKPOINT_SUFFIXES:
        path = export_cached(path, role, export_options)
    elif suffix not in ENGINE_SUFFIXES:
        raise ModelError(
            f"{path}: unknown model file type {suffix or '(none)'!r} for the {role}; expected one of "
            f"{', '.join(ENGINE_SUFFIXES + CHECKPOINT_SUFFIXES)}"
        )
    if not path.exists():
        raise ModelError(f"{path}: no such model file (given for the {role})")
    return load_engine(str(path), device=device, threads=threads)
