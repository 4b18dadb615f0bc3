"""ONNX Runtime backend: :class:`OrtEngine`, one ``InferenceSession`` per model, reused for every call.

``device`` picks the execution providers:

=====================  ============================================================================
``cpu``                CPUExecutionProvider
``cuda`` / ``cuda:1``  CUDAExecutionProvider (``device_id``), CPU fallback for unsupported nodes
``tensorrt[:N]``       TensorrtExecutionProvider (FP16 optional, engine cache on disk), then CUDA, CPU
=====================  ============================================================================

GPU providers come with the ``onnxruntime-gpu`` package (``pip install "pose3d-rt[gpu]"``). A requested provider
that this onnxruntime does not have, or that fails to initialise (no GPU, CUDA/cuDNN libraries missing), raises
:class:`BackendUnavailableError` instead of silently running on the CPU (docs/MMPOSE_BEHAVIOUR.md, TensorRT).
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from .base import Dim, Engine, EngineInputError, Inputs, TensorSpec
from .errors import BackendUnavailableError, ModelError

log = logging.getLogger(__name__)

CPU, CUDA, TRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
GPU_INSTALL_HINT = 'pip uninstall onnxruntime && pip install "pose3d-rt[gpu]" (the onnxruntime-gpu package)'

# ONNX tensor type strings as reported by onnxruntime's NodeArg.type
_ORT_DTYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int8)": np.int8, "tensor(int16)": np.int16, "tensor(int32)": np.int32, "tensor(int64)": np.int64,
    "tensor(uint8)": np.uint8, "tensor(uint16)": np.uint16, "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64, "tensor(bool)": np.bool_,
}


def _ort():
    try:
        import onnxruntime
    except ImportError as exc:  # a core dependency, but keep the message useful on a broken install
        raise BackendUnavailableError(f"onnxruntime is not importable ({exc}); pip install onnxruntime") from None
    return onnxruntime


def parse_device(device: Optional[str]) -> Tuple[str, int]:
    """``"cpu"`` -> ``("cpu", 0)``; ``"cuda:1"`` -> ``("cuda", 1)``; ``"tensorrt"`` / ``"trt:0"`` -> ``("tensorrt", 0)``;
    ``"openvino[:DEVICE]"`` -> ``("openvino", 0)``."""
    text = (device or "cpu").strip().lower()
    if text.startswith("openvino"):
        from .openvino import openvino_target  # the one parser of OpenVINO targets (CPU, GPU.1, ...)

        openvino_target(text)
        return "openvino", 0
    m = re.fullmatch(r"(cpu|cuda|gpu|tensorrt|trt)(?::(\d+))?", text)
    if not m:
        raise EngineInputError(
            f"device {device!r}: expected 'cpu', 'cuda', 'cuda:N', 'tensorrt', 'tensorrt:N', 'openvino' or "
            f"'openvino:DEVICE'"
        )
    kind = {"gpu": "cuda", "trt": "tensorrt"}.get(m.group(1), m.group(1))
    index = int(m.group(2) or 0)
    if kind == "cpu" and m.group(2) is not None:
        raise EngineInputError(f"device {device!r}: 'cpu' takes no device index")
    return kind, index


def default_trt_cache_dir() -> Path:
    """``$POSE3D_RT_HOME/trt_cache`` (default ``~/.cache/pose3d_rt/trt_cache``)."""
    home = os.environ.get("POSE3D_RT_HOME") or str(Path.home() / ".cache" / "pose3d_rt")
    return Path(home) / "trt_cache"


def providers_for(device: Optional[str], *, fp16: bool = False, trt_cache_dir: Optional[Union[str, Path]] = None,
                  trt_workspace_bytes: Optional[int] = None) -> List[Union[str, Tuple[str, Dict[str, Any]]]]:
    """The ``providers=`` list for ``InferenceSession``; raises :class:`BackendUnavailableError` if a needed
    provider is not in ``onnxruntime.get_available_providers()``."""
    kind, index = parse_device(device)
    available = list(_ort().get_available_providers())
    if kind == "cpu":
        return [CPU]
    if kind == "openvino":
        raise EngineInputError(f"device {device!r} runs .onnx files on OpenVINO: use load_engine(path, device)")
    needed = [TRT] if kind == "tensorrt" else [CUDA]
    missing = [p for p in needed if p not in available]
    if missing:
        raise BackendUnavailableError(
            f"device {device!r} needs onnxruntime's {' and '.join(missing)}, which this onnxruntime "
            f"({getattr(_ort(), '__version__', '?')}) does not provide (available: {', '.join(available)}); "
            f"install the GPU build: {GPU_INSTALL_HINT}"
        )
    cuda_opts: Dict[str, Any] = {"device_id": index}
    out: List[Union[str, Tuple[str, Dict[str, Any]]]] = []
    if kind == "tensorrt":
        cache = Path(trt_cache_dir) if trt_cache_dir is not None else default_trt_cache_dir()
        trt_opts: Dict[str, Any] = {
            "device_id": index,
            "trt_fp16_enable": bool(fp16),
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(cache),
        }
        if trt_workspace_bytes is not None:
            trt_opts["trt_max_workspace_size"] = int(trt_workspace_bytes)
        out.append((TRT, trt_opts))
        if CUDA in available:
            out.append((CUDA, cuda_opts))
    else:
        out.append((CUDA, cuda_opts))
    out.append(CPU)
    return out


def _short_reason(exc: BaseException, limit: int = 200) -> str:
    """The first line of an onnxruntime exception without its ``[ONNXRuntimeError] : 7 : CODE :`` and
    ``Load model from X failed:`` prefixes, cut to ``limit`` characters."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*", "", text)
    text = re.sub(r"^Load model from .*? failed:\s*", "", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _load_problem(exc: BaseException) -> str:
    name = type(exc).__name__
    if name in ("InvalidProtobuf", "InvalidArgument", "NoModel"):
        return "not a valid ONNX model (truncated or corrupt)"
    if name == "NotImplemented":
        return "uses an operator or type onnxruntime cannot run"
    if name in ("InvalidGraph", "Fail"):
        return "onnxruntime rejected the model graph"
    if name in ("EPFail", "RuntimeException"):
        return "the execution provider failed to load the model"
    return "could not be loaded by onnxruntime"


def _spec(arg: Any) -> TensorSpec:
    shape: Tuple[Dim, ...] = tuple(
        int(d) if isinstance(d, (int, np.integer)) and d >= 0 else (d if isinstance(d, str) and d else None)
        for d in (arg.shape or ())
    )
    dtype = _ORT_DTYPES.get(arg.type)
    return TensorSpec(arg.name, shape, np.dtype(dtype) if dtype is not None else np.dtype(object))


@dataclass(eq=False)
class OrtEngine(Engine):
    """A network on ONNX Runtime. Build with :meth:`load` (or :func:`pose3d_rt.engines.load_engine`)."""

    session: Any = field(default=None, repr=False)
    device: str = "cpu"

    @classmethod
    def load(cls, path: Union[str, Path], device: str = "cpu", threads: Optional[int] = None, *,
             fp16: bool = False, trt_cache_dir: Optional[Union[str, Path]] = None,
             trt_workspace_bytes: Optional[int] = None, inter_op_threads: Optional[int] = None,
             log_severity: Optional[int] = None, spin: bool = False) -> OrtEngine:
        """Open ``path`` (an .onnx file) on ``device``.

        ``threads`` sets ``intra_op_num_threads`` (``None`` = onnxruntime's default, one per core).
        ``spin``: let the intra-op threads busy-wait for work between operators (onnxruntime's default). Off here:
        a pipeline runs several sessions one after the other, and one session's spinning threads take the cores
        from the next one (measured on 2 cores: the default-mode pipeline at 2.0 FPS spinning, 2.6 FPS not).
        ``fp16``, ``trt_cache_dir`` and ``trt_workspace_bytes`` apply to ``device="tensorrt"`` only
        (the TensorRT EP caches its engines in ``trt_cache_dir``, default :func:`default_trt_cache_dir`).
        """
        p = Path(path)
        if not p.exists():
            raise ModelError(f"{p}: no such ONNX model file")
        if p.is_dir():
            raise ModelError(f"{p}: is a directory, expected an .onnx file")
        try:
            size = p.stat().st_size
        except OSError as exc:
            raise ModelError(f"{p}: cannot read ({exc.strerror or exc})") from None
        if size == 0:
            raise ModelError(f"{p}: not a valid ONNX model (empty file)")
        if threads is not None and (not isinstance(threads, (int, np.integer)) or threads < 0):
            raise EngineInputError(f"threads={threads!r}: expected a non-negative integer (0 = onnxruntime default)")

        ort = _ort()
        kind, _ = parse_device(device)
        providers = providers_for(device, fp16=fp16, trt_cache_dir=trt_cache_dir,
                                  trt_workspace_bytes=trt_workspace_bytes)
        if kind == "tensorrt":
            Path(providers[0][1]["trt_engine_cache_path"]).mkdir(parents=True, exist_ok=True)
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            so.intra_op_num_threads = int(threads)
        if inter_op_threads is not None:
            so.inter_op_num_threads = int(inter_op_threads)
        if log_severity is not None:
            so.log_severity_level = int(log_severity)
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        try:
            session = ort.InferenceSession(str(p), sess_options=so, providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own pybind exception types
            raise ModelError(f"{p}: {_load_problem(exc)}: {_short_reason(exc)}") from None

        wanted = providers[0][0] if isinstance(providers[0], tuple) else providers[0]
        active = list(session.get_providers())
        if wanted not in active:
            raise BackendUnavailableError(
                f"{p}: device {device!r}: onnxruntime has {wanted} but could not initialise it "
                f"(no GPU, or the CUDA/cuDNN/TensorRT libraries it needs are missing); session providers: "
                f"{', '.join(active)}. Use device='cpu' or fix the GPU installation."
            )
        meta = session.get_modelmeta()
        metadata = {str(k): str(v) for k, v in (meta.custom_metadata_map or {}).items()}
        engine = cls(
            path=str(p),
            inputs=tuple(_spec(a) for a in session.get_inputs()),
            outputs=tuple(_spec(a) for a in session.get_outputs()),
            metadata=metadata,
            session=session,
            device=str(device),
        )
        log.debug("loaded %s on %s (%s)", p, device, ", ".join(active))
        return engine

    @property
    def providers(self) -> List[str]:
        """The providers of the session, in priority order."""
        return list(self.session.get_providers())

    def close(self) -> None:
        self.session = None

    def run(self, inputs: Inputs) -> Dict[str, np.ndarray]:
        if self.session is None:
            raise ModelError(f"{self.path}: engine is closed")
        feed = self.prepare_inputs(inputs)
        names = [s.name for s in self.outputs]
        try:
            values = self.session.run(names, feed)
        except Exception as exc:  # noqa: BLE001
            shapes = ", ".join(f"{k}{tuple(v.shape)}" for k, v in feed.items())
            raise ModelError(
                f"{self.path}: onnxruntime failed on inputs {shapes}: {_short_reason(exc, 300)}"
            ) from None
        return dict(zip(names, values))
