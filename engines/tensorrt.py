"""Native TensorRT 10 backend: :class:`TrtEngine` runs a pose3d-rt engine file (header + plan, see
:mod:`pose3d_rt.engines.trt_header`) with the name-based TensorRT 10 API and pycuda for memory.

Device buffers (and page-locked host buffers) are allocated once, for the largest shapes of optimization
profile 0, and reused by every call; each call sets the input shapes, copies in, runs ``execute_async_v3`` on
one CUDA stream and copies out the actual output shapes. A batch larger than the profile allows is run in
chunks when every input and output has a dynamic batch axis.

``tensorrt`` and ``pycuda`` are imported lazily (inside :meth:`TrtEngine.load`), so importing this module
never fails; when they are missing, :class:`BackendUnavailableError` names ``pip install "pose3d-rt[trt]"``.
Each engine uses the primary CUDA context of its device (``cuda:N``), pushed around every call.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from .base import Engine, EngineInputError, Inputs, TensorSpec, format_shape
from .errors import BackendUnavailableError, ModelError
from .onnxruntime import parse_device
from .trt_header import REBUILD_HINT, check_engine_compatibility, read_engine_file

log = logging.getLogger(__name__)

TRT_INSTALL_HINT = 'pip install "pose3d-rt[trt]" (tensorrt>=10 and pycuda; needs an NVIDIA GPU and driver)'

Shape = Tuple[int, ...]


def import_backend() -> Tuple[Any, Any]:
    """``(tensorrt, pycuda.driver)`` or :class:`BackendUnavailableError` naming what to install."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendUnavailableError(f"TensorRT engines need the tensorrt package ({exc}); {TRT_INSTALL_HINT}") \
            from None
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise BackendUnavailableError(f"TensorRT engines need pycuda ({exc}); {TRT_INSTALL_HINT}") from None
    major = int(str(getattr(trt, "__version__", "0")).split(".")[0] or 0)
    if major < 10:
        raise BackendUnavailableError(
            f"TensorRT {trt.__version__} is too old: the name-based TensorRT 10 API is needed; {TRT_INSTALL_HINT}"
        )
    return trt, cuda


@dataclass
class _Buffers:
    host: Any  # page-locked 1-D numpy array, profile-max elements
    device: Any  # pycuda DeviceAllocation of the same size in bytes


@dataclass(eq=False)
class TrtEngine(Engine):
    """A pose3d-rt TensorRT engine file on one GPU. Build with :meth:`load`.

    ``metadata`` is the header's ``onnx_metadata`` (the source ONNX model's ``metadata_props``); the whole
    header is in :attr:`header`; :attr:`profiles` holds ``{input: (min, opt, max)}`` of profile 0.
    """

    header: Dict[str, Any] = field(default_factory=dict)
    profiles: Dict[str, Tuple[Shape, Shape, Shape]] = field(default_factory=dict)
    device: str = "cuda:0"
    _cuda: Any = field(default=None, repr=False)
    _ctx: Any = field(default=None, repr=False)  # pushed around every call
    _trt_engine: Any = field(default=None, repr=False)
    _runtime: Any = field(default=None, repr=False)  # kept alive as long as the engine
    _context: Any = field(default=None, repr=False)
    _stream: Any = field(default=None, repr=False)
    _buffers: Dict[str, _Buffers] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: Union[str, Path], device: str = "cuda", threads: Optional[int] = None, *,
             strict_gpu_name: bool = False, log_level: str = "WARNING") -> TrtEngine:
        """Open a pose3d-rt engine file on ``device`` (``cuda[:N]`` / ``tensorrt[:N]``; ``cpu`` means GPU 0,
        as a TensorRT engine only runs on a GPU). ``threads`` has no effect here.

        Raises :class:`ModelError` for a bad file or an engine built for another TensorRT version / GPU
        architecture, :class:`BackendUnavailableError` when tensorrt/pycuda/a GPU is missing.
        """
        p = Path(path)
        header, plan = read_engine_file(p)  # file errors first: they need no GPU
        kind, index = parse_device(device)
        if kind in ("cpu", "openvino"):
            log.info("%s: TensorRT engines run on an NVIDIA GPU; device=%r -> cuda:0", p, device)
        trt, cuda = import_backend()
        try:
            cuda.init()
            count = cuda.Device.count()
        except Exception as exc:  # noqa: BLE001 - pycuda.driver.Error / RuntimeError without a driver
            raise BackendUnavailableError(f"{p}: no usable CUDA driver/GPU ({exc})") from None
        if index >= count:
            raise BackendUnavailableError(f"{p}: device {device!r}: only {count} CUDA device(s) present")
        dev = cuda.Device(index)
        major, minor = dev.compute_capability()
        check_engine_compatibility(header, str(trt.__version__), str(dev.name()), f"{major}.{minor}",
                                   source=str(p), strict_gpu_name=strict_gpu_name)
        ctx = dev.retain_primary_context()
        ctx.push()
        engine = None
        try:
            logger = trt.Logger(getattr(trt.Logger, log_level.upper(), trt.Logger.WARNING))
            runtime = trt.Runtime(logger)
            trt_engine = runtime.deserialize_cuda_engine(plan)
            if trt_engine is None:
                raise ModelError(
                    f"{p}: TensorRT could not deserialize the plan (see the TensorRT log above; corrupt file or "
                    f"built with another TensorRT/GPU despite its header); {REBUILD_HINT}"
                )
            engine = cls(path=str(p), metadata={str(k): str(v) for k, v in header["onnx_metadata"].items()},
                         header=header, device=f"cuda:{index}")
            engine._cuda, engine._trt_engine = cuda, trt_engine
            engine._setup(trt, cuda, runtime)
            engine._ctx = ctx  # from here on close() owns the context
        finally:
            if engine is not None and engine._ctx is None:  # failed part-way: free what was allocated
                for buf in engine._buffers.values():
                    buf.device.free()
                engine._buffers.clear()
            ctx.pop()
            if engine is None or engine._ctx is None:
                ctx.detach()
        return engine

    def _setup(self, trt: Any, cuda: Any, runtime: Any) -> None:
        eng = self._trt_engine
        self._runtime = runtime
        ctx = eng.create_execution_context()
        if ctx is None:
            raise ModelError(f"{self.path}: TensorRT could not create an execution context (out of GPU memory?)")
        inputs: List[TensorSpec] = []
        outputs: List[TensorSpec] = []
        for i in range(eng.num_io_tensors):
            name = eng.get_tensor_name(i)
            try:
                dtype = np.dtype(trt.nptype(eng.get_tensor_dtype(name)))
            except TypeError:  # bf16 / fp8 / int4 have no numpy type
                raise ModelError(
                    f"{self.path}: tensor {name!r} has TensorRT type {eng.get_tensor_dtype(name)}, which numpy "
                    "cannot hold; build the engine with float32/float16 inputs and outputs"
                ) from None
            shape = tuple(int(d) for d in eng.get_tensor_shape(name))
            spec = TensorSpec(name, tuple(d if d >= 0 else None for d in shape), dtype)
            if eng.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                inputs.append(spec)
                if any(d < 0 for d in shape):
                    lo, opt, hi = (tuple(int(d) for d in s) for s in eng.get_tensor_profile_shape(name, 0))
                else:
                    lo = opt = hi = shape
                self.profiles[name] = (lo, opt, hi)
                if not ctx.set_input_shape(name, hi):
                    raise ModelError(f"{self.path}: TensorRT refused input {name!r} shape {hi} (profile max)")
            else:
                outputs.append(spec)
        self.inputs, self.outputs = tuple(inputs), tuple(outputs)
        self._context = ctx
        self._stream = cuda.Stream()
        for spec in self.inputs + self.outputs:
            max_shape = self.profiles[spec.name][2] if spec.name in self.profiles else \
                tuple(int(d) for d in ctx.get_tensor_shape(spec.name))
            if any(d < 0 for d in max_shape):
                raise ModelError(
                    f"{self.path}: output {spec.name!r} has a data-dependent shape {format_shape(spec.shape)} "
                    "(e.g. in-graph NonMaxSuppression), which TrtEngine does not support; export the detector "
                    "without in-graph NMS (NMS then runs on the host)"
                )
            n = max(int(np.prod(max_shape, dtype=np.int64)), 1)
            host = cuda.pagelocked_empty(n, spec.dtype)
            device = cuda.mem_alloc(host.nbytes)
            self._buffers[spec.name] = _Buffers(host, device)
            ctx.set_tensor_address(spec.name, int(device))

    @property
    def max_batch(self) -> Optional[int]:
        """Largest axis-0 size one call can run (``None`` if an input's axis 0 is static)."""
        if not self.inputs or any(not s.is_dynamic(0) for s in self.inputs if s.rank):
            return None
        return min(self.profiles[s.name][2][0] for s in self.inputs)

    def _profile_violation(self, feed: Dict[str, np.ndarray], skip_batch: bool) -> Optional[str]:
        for name, arr in feed.items():
            lo, _, hi = self.profiles[name]
            for ax, (d, a, b) in enumerate(zip(arr.shape, lo, hi)):
                if (ax == 0 and skip_batch) or a <= d <= b:
                    continue
                return (f"{self.path}: input {name!r} shape {tuple(arr.shape)}: axis {ax} must be in [{a}, {b}] "
                        f"(the engine's optimization profile); rebuild the engine with a larger profile")
        return None

    def run(self, inputs: Inputs) -> Dict[str, np.ndarray]:
        if self._context is None:
            raise ModelError(f"{self.path}: engine is closed")
        feed = self.prepare_inputs(inputs)
        batch = self.max_batch
        sizes = {arr.shape[0] for arr in feed.values() if arr.ndim}
        chunkable = (batch is not None and len(sizes) == 1 and next(iter(sizes)) > batch
                     and all(s.rank and s.is_dynamic(0) for s in self.outputs))
        problem = self._profile_violation(feed, skip_batch=chunkable)
        if problem:
            raise EngineInputError(problem)
        if not chunkable:
            return self._run_once(feed)
        n = next(iter(sizes))
        parts = [self._run_once({k: v[i:i + batch] for k, v in feed.items()}) for i in range(0, n, batch)]
        return {s.name: np.concatenate([p[s.name] for p in parts], axis=0) for s in self.outputs}

    def _run_once(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        cuda, ctx, stream = self._cuda, self._context, self._stream
        self._ctx.push()
        try:
            for name, arr in feed.items():
                if not ctx.set_input_shape(name, tuple(int(d) for d in arr.shape)):
                    raise EngineInputError(f"{self.path}: TensorRT refused input {name!r} shape {arr.shape}")
                buf = self._buffers[name]
                host = buf.host[: arr.size]
                host[...] = arr.reshape(-1)
                cuda.memcpy_htod_async(buf.device, host, stream)
            shapes = {s.name: tuple(int(d) for d in ctx.get_tensor_shape(s.name)) for s in self.outputs}
            if not ctx.execute_async_v3(stream.handle):
                raise ModelError(f"{self.path}: TensorRT execution failed (see the TensorRT log)")
            views = {}
            for name, shape in shapes.items():
                buf = self._buffers[name]
                view = buf.host[: int(np.prod(shape, dtype=np.int64))]
                cuda.memcpy_dtoh_async(view, buf.device, stream)
                views[name] = (view, shape)
            stream.synchronize()
        finally:
            self._ctx.pop()
        # copies: the page-locked buffers are reused by the next call
        return {name: view.reshape(shape).copy() for name, (view, shape) in views.items()}

    def close(self) -> None:
        if self._ctx is None:
            return
        self._ctx.push()
        try:
            for buf in self._buffers.values():
                buf.device.free()
            self._buffers.clear()
            self._context = None
            self._trt_engine = None
            self._stream = None
        finally:
            self._ctx.pop()
            ctx, self._ctx = self._ctx, None
            try:
                ctx.detach()
            except Exception:  # noqa: BLE001 - best effort at teardown
                log.debug("detaching the CUDA context of %s failed", self.path, exc_info=True)

    def __del__(self) -> None:  # pragma: no cover - depends on GC timing
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass
