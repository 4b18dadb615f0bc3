"""OpenVINO backend (extra ``[openvino]``): the same :class:`~pose3d_rt.engines.base.Engine` on Intel CPUs, iGPUs
and NPUs, for ``.onnx`` files (FP32 exports and INT8 QDQ models alike).

Devices: ``"openvino"`` (= ``openvino:CPU``), ``"openvino:GPU"``, ``"openvino:GPU.1"``, ``"openvino:NPU"``,
``"openvino:AUTO"``. Precision: OpenVINO's CPU plugin silently runs BF16 on CPUs with AVX512-BF16 or AMX unless it
is told otherwise, which changes the numbers; this engine therefore pins ``INFERENCE_PRECISION_HINT`` to ``f32``
by default, and ``precision="bf16"`` (or ``"f16"`` on GPUs) is an explicit opt-in. INT8 QDQ models run as they
are (their quantised layers are INT8 whatever the hint).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from .base import Dim, Engine, EngineInputError, Inputs, TensorSpec
from .errors import BackendUnavailableError, ModelError

log = logging.getLogger(__name__)

OPENVINO_INSTALL_HINT = 'pip install "pose3d-rt[openvino]"'
PRECISIONS = ("f32", "bf16", "f16")
_DEVICE = re.compile(r"openvino(?::([A-Za-z]+(?:\.\d+)?))?", re.IGNORECASE)


def _ov() -> Any:
    try:
        import openvino
    except ImportError as exc:
        raise BackendUnavailableError(
            f"device 'openvino' needs the OpenVINO runtime, which is not installed ({exc}); {OPENVINO_INSTALL_HINT}"
        ) from None
    return openvino


def openvino_target(device: Optional[str]) -> str:
    """``"openvino"`` -> ``"CPU"``; ``"openvino:gpu.1"`` -> ``"GPU.1"``. Raises :class:`EngineInputError`."""
    m = _DEVICE.fullmatch((device or "").strip())
    if not m:
        raise EngineInputError(f"device {device!r}: expected 'openvino' or 'openvino:DEVICE' (CPU, GPU, GPU.N, NPU, AUTO)")
    return (m.group(1) or "CPU").upper()


def _spec(port: Any) -> TensorSpec:
    shape: Tuple[Dim, ...] = tuple(
        int(d.get_length()) if d.is_static else None for d in port.get_partial_shape()
    )
    try:
        dtype = np.dtype(port.get_element_type().to_dtype())
    except Exception:  # noqa: BLE001 - an element type numpy has no name for
        dtype = np.dtype(object)
    return TensorSpec(port.get_any_name(), shape, dtype)


def _metadata(model: Any) -> Dict[str, str]:
    """The ONNX ``metadata_props`` (OpenVINO's ONNX frontend keeps them under ``rt_info['framework']``)."""
    if not model.has_rt_info(["framework"]):
        return {}
    framework = model.get_rt_info()["framework"]
    out: Dict[str, str] = {}
    for key in framework.keys():
        value = framework[key]
        out[str(key)] = str(value.astype(str) if hasattr(value, "astype") else value)
    return out


def compile_config(target: str, precision: str, threads: Optional[int]) -> Dict[str, str]:
    """The ``compile_model`` properties: latency hint, precision pinned (f32 unless asked), CPU threads."""
    if precision not in PRECISIONS:
        raise EngineInputError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision}
    if threads is not None:
        if not isinstance(threads, (int, np.integer)) or threads < 0:
            raise EngineInputError(f"threads={threads!r}: expected a non-negative integer (0 = OpenVINO default)")
        if threads and target.startswith("CPU"):
            config["INFERENCE_NUM_THREADS"] = str(int(threads))
    return config


@dataclass(eq=False)
class OpenVinoEngine(Engine):
    """A network on OpenVINO. Build with :meth:`load` (or ``load_engine(path, device="openvino")``)."""

    compiled: Any = field(default=None, repr=False)
    request: Any = field(default=None, repr=False)
    device: str = "openvino"
    precision: str = "f32"

    @classmethod
    def load(cls, path: Union[str, Path], device: str = "openvino", threads: Optional[int] = None, *,
             precision: str = "f32") -> OpenVinoEngine:
        p = Path(path)
        if not p.is_file():
            raise ModelError(f"{p}: no such ONNX model file")
        if p.stat().st_size == 0:
            raise ModelError(f"{p}: not a valid ONNX model (empty file)")
        target = openvino_target(device)
        config = compile_config(target, precision, threads)
        ov = _ov()
        core = ov.Core()
        try:
            model = core.read_model(str(p))
        except Exception as exc:  # noqa: BLE001 - OpenVINO raises its own RuntimeError subclasses
            raise ModelError(f"{p}: OpenVINO could not read the model: {_short(exc)}") from None
        try:
            compiled = core.compile_model(model, target, config)
        except Exception as exc:  # noqa: BLE001
            raise BackendUnavailableError(
                f"{p}: OpenVINO could not compile the model for {target} (available: "
                f"{', '.join(core.available_devices)}): {_short(exc)}"
            ) from None
        engine = cls(path=str(p), inputs=tuple(_spec(i) for i in model.inputs),
                     outputs=tuple(_spec(o) for o in model.outputs), metadata=_metadata(model),
                     compiled=compiled, request=compiled.create_infer_request(), device=str(device),
                     precision=precision)
        if precision == "bf16" and target.startswith("CPU") and "BF16" not in capabilities(target, core):
            log.warning("%s: this CPU has no BF16 instructions (AVX512-BF16, AMX); OpenVINO runs it in f32", p)
        log.debug("loaded %s on OpenVINO %s (%s)", p, target, config)
        return engine

    def close(self) -> None:
        self.request = None
        self.compiled = None

    def run(self, inputs: Inputs) -> Dict[str, np.ndarray]:
        if self.request is None:
            raise ModelError(f"{self.path}: engine is closed")
        feed = self.prepare_inputs(inputs)
        try:
            results = self.request.infer(feed)
        except Exception as exc:  # noqa: BLE001
            shapes = ", ".join(f"{k}{tuple(v.shape)}" for k, v in feed.items())
            raise ModelError(f"{self.path}: OpenVINO failed on inputs {shapes}: {_short(exc)}") from None
        # copies: the infer request reuses its output buffers on the next call
        by_name = {port.get_any_name(): np.array(value) for port, value in results.items()}
        return {s.name: by_name[s.name] for s in self.outputs}


def capabilities(target: str = "CPU", core: Any = None) -> List[str]:
    """OpenVINO's ``OPTIMIZATION_CAPABILITIES`` of ``target`` (``FP32``, ``BF16``, ``INT8``, ...); empty when not
    reported. ``BF16`` in it: the CPU has AVX512-BF16 or AMX (``precision="bf16"`` runs BF16)."""
    core = _ov().Core() if core is None else core
    try:
        return [str(c).upper() for c in core.get_property(target, "OPTIMIZATION_CAPABILITIES")]
    except Exception:  # noqa: BLE001 - a plugin without the property
        return []


def _short(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip()
    text = text.splitlines()[0] if text else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
