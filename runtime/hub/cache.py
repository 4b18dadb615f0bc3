"""The model cache, and the runtime's one gateway to the exporter (:mod:`pose3d_rt.export`, torch).

Everything pose3d-rt downloads or converts lives under :func:`cache_home` (``$POSE3D_RT_HOME``, default
``~/.cache/pose3d_rt``): checkpoints in ``checkpoints/`` (see :mod:`pose3d_rt.hub.download`), and ONNX files
exported from them in ``onnx/``, keyed by the checkpoint's sha256 and the export options, so the second run
starts immediately. Exporting needs the ``[export]`` extra (torch, onnx); the error says so when it is missing.
INT8 versions (``run --precision int8``) sit beside the exports (:func:`int8_path`); quantizing
(:func:`quantize_onnx`) needs onnx but not torch.
This module is the only place where the runtime reaches into :mod:`pose3d_rt.export`, lazily.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Dict, Optional, Union

from ..engines.errors import ModelError
from ..errors import Pose3DError
from .roles import Role

log = logging.getLogger(__name__)

#: the TCN export forms a lifter's cache key may name (:func:`lifter_export_options`)
LIFTER_FORM_KEYS = ("stream", "strided", "dilated")


def cache_home() -> Path:
    """``$POSE3D_RT_HOME`` or ``~/.cache/pose3d_rt``."""
    return Path(os.environ.get("POSE3D_RT_HOME") or Path.home() / ".cache" / "pose3d_rt")


def checkpoint_path(file_name: str) -> Path:
    """Where a downloaded checkpoint called ``file_name`` is kept: ``cache_home()/checkpoints/<file_name>``."""
    return cache_home() / "checkpoints" / file_name


def file_sha256(path: Union[str, Path], chunk: int = 1 << 20) -> str:
    """The sha256 hex digest of a file, read in ``chunk``-byte blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _role_label(role: Union[Role, str]) -> str:
    return role.label if isinstance(role, Role) else str(role)


def export_cached(checkpoint: Union[str, Path], role: Union[Role, str],
                  export_options: Optional[Dict[str, Any]] = None, cache_dir: Optional[Path] = None) -> Path:
    """Export ``checkpoint`` to ONNX once; return the cached .onnx path (keyed by sha256 and export options).
    ``role`` only names the model in log messages (:func:`pose3d_rt.hub.resolve.resolve` checks the exported
    model's family against the role)."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise ModelError(f"{checkpoint}: no such checkpoint file")
    opts = dict(export_options or {})
    digest = file_sha256(checkpoint)
    out_dir = (cache_dir or cache_home()) / "onnx"

    def name_for(options: Dict[str, Any]) -> Path:
        tag = "_".join(f"{k}-{v}" for k, v in sorted(options.items()) if v is not None)
        return out_dir / f"{checkpoint.stem}.{digest[:16]}{('.' + tag) if tag else ''}.onnx"

    out = name_for(opts)
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
    log.info("exporting %s (%s) to %s", checkpoint, _role_label(role), out)
    written = Path(export_onnx(checkpoint, out, **opts))
    if "form" in opts:
        _share_formless_export(written, opts, name_for)
    return written


def _share_formless_export(written: Path, opts: Dict[str, Any], name_for: Any) -> None:
    """A lifter whose graph does not depend on the TCN ``form`` option (MotionBERT: one seq2seq graph) is cached
    under every form's key as hard links of one file, so default and mmpose mode share it instead of two 170 MB
    copies."""
    try:
        import onnx

        meta = {p.key: p.value for p in onnx.load_model(str(written), load_external_data=False).metadata_props}
    except Exception as exc:  # noqa: BLE001 - only an optimisation: a failure leaves the one export as it is
        log.debug("could not read %s's metadata (%s)", written, exc)
        return
    if meta.get("form") != "seq2seq":
        return
    for form in LIFTER_FORM_KEYS:
        other = name_for({**opts, "form": form})
        if other != written and not other.exists():
            try:
                os.link(written, other)
            except OSError as exc:
                log.debug("could not link %s to %s (%s)", other, written, exc)


def lifter_export_options(causal: Optional[bool] = None, *, mode: str = "default", online: bool = False
                          ) -> Dict[str, Any]:
    """How a lifter ``.pth`` is exported for the pipeline; also the key of the export cache, so
    ``pose3d-rt models fetch`` and the pipeline share one file.

    Default mode with exact (delayed) lifting gets the stream form (one new column per layer and frame, see
    :mod:`pose3d_rt.lifters.tcn_stream`); mmpose mode and ``online`` need per-frame windows: the strided form."""
    opts: Dict[str, Any] = {"form": "stream" if mode == "default" and not online else "strided"}
    if causal is not None:
        opts["causal"] = bool(causal)
    return opts


def detector_export_options(mode: str = "default") -> Dict[str, Any]:
    """How a detector ``.pth`` is exported for the pipeline; also the key of the export cache. Default mode gets
    dynamic H/W (``pose3d-rt export --dynamic-hw``), for the rect letterbox (:mod:`pose3d_rt.rtmdet.detector`);
    mmpose mode keeps the static square graph of the mmpose demo."""
    return {"dynamic_hw": True} if mode == "default" else {}


def export_onnx(checkpoint: Union[str, Path], output: Union[str, Path], **options: Any) -> Any:
    """:func:`pose3d_rt.export.export_onnx` (``pose3d-rt export``); a one-line :class:`Pose3DError` when the
    ``[export]`` extra is missing."""
    try:
        from ..export import export_onnx as _export_onnx  # lazy: torch is imported only here
    except ImportError as exc:  # torch or onnx missing
        raise Pose3DError(
            f"exporting needs the [export] extra (torch, onnx): pip install 'pose3d-rt[export]' ({exc})"
        ) from None
    return _export_onnx(checkpoint, output, **options)


def build_engine(onnx_path: Union[str, Path], output: Union[str, Path], **options: Any) -> Any:
    """:func:`pose3d_rt.export.trt_build.build_engine` (``pose3d-rt build-engine``); a one-line
    :class:`Pose3DError` when the ``[export]``/``[trt]`` extras are missing."""
    try:
        from ..export.trt_build import build_engine as _build_engine
    except ImportError as exc:
        raise Pose3DError(f"building engines needs the [export] and [trt] extras ({exc})") from None
    return _build_engine(onnx_path, output, **options)


def int8_path(fp32_onnx: Union[str, Path], cache_dir: Optional[Path] = None, layout: str = "onnxruntime") -> Path:
    """Where the INT8 version of an FP32 ``.onnx`` is kept (``run --precision int8``): beside it, named
    ``<name>.int8.onnx``, when it is one of the cache's exports (so it is keyed like the export), else in the
    cache's ``onnx/`` keyed by the file's sha256: ``<stem>.<sha256[:16]>.int8.onnx``. A file in the OpenVINO
    QDQ ``layout`` (:data:`pose3d_rt.export.quantize.QDQ_LAYOUTS`) ends in ``.int8-openvino.onnx`` instead."""
    src = Path(fp32_onnx)
    out_dir = (cache_dir or cache_home()) / "onnx"
    suffix = "int8" if layout == "onnxruntime" else f"int8-{layout}"
    if src.parent.resolve() == out_dir.resolve():
        return src.with_name(f"{src.stem}.{suffix}.onnx")
    return out_dir / f"{src.stem}.{file_sha256(src)[:16]}.{suffix}.onnx"


def quantize_onnx(model: Union[str, Path], output: Union[str, Path], feeds: Any, **options: Any) -> Any:
    """:func:`pose3d_rt.export.quantize.quantize_onnx` (static QDQ INT8; torch-free, needs the onnx package); a
    one-line :class:`Pose3DError` when onnx is missing."""
    try:
        from ..export.quantize import quantize_onnx as _quantize_onnx  # lazy: onnx + onnxruntime.quantization
    except ImportError as exc:
        raise Pose3DError(
            f"quantizing needs the onnx package (the [quantize] extra): pip install 'pose3d-rt[quantize]' ({exc})"
        ) from None
    return _quantize_onnx(model, output, feeds, **options)


def quantize_dynamic_onnx(model: Union[str, Path], output: Union[str, Path], **options: Any) -> Any:
    """:func:`pose3d_rt.export.quantize.quantize_dynamic_onnx` (dynamic INT8 for lifters; torch-free)."""
    try:
        from ..export.quantize import quantize_dynamic_onnx as _quantize_dynamic  # lazy: onnx
    except ImportError as exc:
        raise Pose3DError(
            f"quantizing needs the onnx package (the [quantize] extra): pip install 'pose3d-rt[quantize]' ({exc})"
        ) from None
    return _quantize_dynamic(model, output, **options)


__all__ = ["cache_home", "checkpoint_path", "file_sha256", "export_cached", "lifter_export_options",
           "detector_export_options", "export_onnx", "build_engine", "int8_path", "quantize_onnx",
           "quantize_dynamic_onnx"]
