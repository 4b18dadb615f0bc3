"""ONNX -> TensorRT 10 engine (``pose3d-rt build-engine``), written against the documented name-based API.

- an optimization profile for every dynamic input: batch min 1 / opt ``opt_batch`` / max ``max_batch``; for a
  dynamic time axis the dilated TCN gets min RF / opt / max ``max_time``, and a seq2seq lifter (MotionBERT) min 1 /
  opt = max = its ``window`` (the ``temp_embed`` length; a larger ``max_time`` is a :class:`ModelError`);
- FP16 with the layers of ScaleNorm and the GAU attention pinned to FP32 (RTMPose's known FP16 accuracy collapse,
  docs/MMPOSE_BEHAVIOUR.md, TensorRT), with ``OBEY_PRECISION_CONSTRAINTS``; the layers are selected by ONNX node
  name (``FP32_LAYER_PATTERNS``), which the exporter keeps recognisable (module paths ``head.mlp.0``, ``head.gau``),
  and, per model family (ONNX metadata ``family``), by TensorRT layer type (``FP32_LAYER_TYPES``: MotionBERT's
  LayerNorms and Softmaxes, the attention and the 10 LayerNorms per block that overflow first in FP16);
- the engine file starts with a JSON header (TensorRT version, GPU, compute capability, precision, profiles, ONNX
  sha256, ONNX metadata) that :class:`pose3d_rt.engines.tensorrt.TrtEngine` checks before deserialising.

It needs an NVIDIA GPU and the ``[trt]`` extra; everything that can be computed without them (profiles, the FP32
layer selection, the header) is plain Python and tested here.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import onnx

from ..engines.errors import BackendUnavailableError, ModelError
from ..engines.trt_header import write_engine_file

log = logging.getLogger(__name__)

FP32_LAYER_PATTERNS: Tuple[str, ...] = ("/head/mlp/mlp.0/", "/head/gau/")
#: family -> TensorRT ``LayerType`` names kept in FP32 (whatever their ONNX node name).
FP32_LAYER_TYPES: Dict[str, Tuple[str, ...]] = {"motionbert": ("NORMALIZATION", "SOFTMAX")}
Shape = Tuple[int, ...]


def onnx_profiles(model: onnx.ModelProto, max_batch: int = 32, opt_batch: Optional[int] = None,
                  max_time: Optional[int] = None) -> Dict[str, List[List[int]]]:
    """``{input: [min, opt, max]}`` for every input: axis 0 is the batch, axis 1 of a rank-4 ``keypoints`` input
    with a dynamic size is time (min = the receptive field from metadata)."""
    meta = {p.key: p.value for p in model.metadata_props}
    rf = int(meta.get("receptive_field", "1") or 1)
    time_range = _time_range(meta, rf, max_time)
    opt_b = opt_batch or max(1, min(max_batch, 4))
    if not 1 <= opt_b <= max_batch:
        raise ModelError(f"opt batch {opt_b} must lie in [1, max_batch={max_batch}]")
    init = {t.name for t in model.graph.initializer}
    profiles: Dict[str, List[List[int]]] = {}
    for inp in model.graph.input:
        if inp.name in init:
            continue
        dims = inp.type.tensor_type.shape.dim
        lo, mid, hi = [], [], []
        for axis, d in enumerate(dims):
            if d.HasField("dim_value") and d.dim_value > 0:
                lo.append(d.dim_value), mid.append(d.dim_value), hi.append(d.dim_value)
            elif axis == 0:
                lo.append(1), mid.append(opt_b), hi.append(max_batch)
            elif axis == 1 and len(dims) == 4:
                lo.append(time_range[0]), mid.append(time_range[1]), hi.append(time_range[2])
            else:
                raise ModelError(f"input {inp.name} axis {axis} is dynamic; only batch (and lifter time) may be")
        profiles[inp.name] = [lo, mid, hi]
    return profiles


def _time_range(meta: Dict[str, str], rf: int, max_time: Optional[int]) -> Tuple[int, int, int]:
    """(min, opt, max) frames of a lifter's dynamic time axis."""
    if meta.get("form") == "seq2seq":
        window = int(meta.get("window") or rf)
        if max_time is not None and not 1 <= max_time <= window:
            raise ModelError(f"max_time={max_time}: this {meta.get('family', 'seq2seq')} lifter takes 1 to {window} "
                             "frames (its temporal embedding length)")
        t_max = max_time or window
        return 1, t_max, t_max
    t_max = max_time or rf + 255
    return rf, min(t_max, rf + 63), t_max


def fp32_layer_names(names: Sequence[str], patterns: Sequence[str] = FP32_LAYER_PATTERNS) -> List[str]:
    """The layer names (TensorRT keeps the ONNX node names) to keep in FP32."""
    return [n for n in names if any(p in n for p in patterns)]


def pin_fp32_layers(network, trt, family: str = "") -> List[str]:
    """Set ``precision`` and every output type to FP32 on the layers :func:`fp32_layer_names` selects, and on
    those whose ``LayerType`` is listed for ``family`` in :data:`FP32_LAYER_TYPES`; returns their names. Needs
    ``BuilderFlag.OBEY_PRECISION_CONSTRAINTS`` on the config to be binding."""
    types = tuple(getattr(trt.LayerType, t) for t in FP32_LAYER_TYPES.get(family, ()))
    layers = [network.get_layer(i) for i in range(network.num_layers)]
    by_name = set(fp32_layer_names([layer.name for layer in layers]))
    pinned = []
    for layer in layers:
        if layer.name in by_name or layer.type in types:
            layer.precision = trt.float32
            for j in range(layer.num_outputs):
                layer.set_output_type(j, trt.float32)
            pinned.append(layer.name)
    return pinned


def sha256_file(path: Union[str, Path]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def make_header(onnx_path: Union[str, Path], model: onnx.ModelProto, profiles, precision: str,
                tensorrt_version: str, gpu_name: str, compute_capability: str) -> Dict[str, object]:
    from .._version import __version__

    return {
        "tensorrt_version": tensorrt_version, "gpu_name": gpu_name, "compute_capability": compute_capability,
        "precision": precision, "profiles": profiles, "onnx_sha256": sha256_file(onnx_path),
        "onnx_metadata": {p.key: p.value for p in model.metadata_props}, "created_by": f"pose3d-rt {__version__}",
    }


def _gpu() -> Tuple[str, str]:
    try:
        import pycuda.autoinit  # noqa: F401
        import pycuda.driver as cuda
    except ImportError as exc:
        raise BackendUnavailableError(f"building engines needs pycuda: pip install 'pose3d-rt[trt]' ({exc})") from None
    dev = cuda.Device(0)
    major, minor = dev.compute_capability()
    return dev.name(), f"{major}.{minor}"


def build_engine(onnx_path: Union[str, Path], engine_path: Union[str, Path], fp16: bool = False,
                 max_batch: int = 32, opt_batch: Optional[int] = None, max_time: Optional[int] = None,
                 workspace_gb: float = 2.0) -> Path:
    """Build ``engine_path`` from ``onnx_path`` (see the module docstring). Needs TensorRT 10 and a GPU."""
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    if not onnx_path.is_file():
        raise ModelError(f"{onnx_path}: no such ONNX file")
    try:
        model = onnx.load(str(onnx_path))
    except Exception as exc:
        raise ModelError(f"{onnx_path}: not a valid ONNX model ({type(exc).__name__})") from None
    try:
        import tensorrt as trt
    except ImportError:
        raise BackendUnavailableError("building engines needs TensorRT 10: pip install 'pose3d-rt[trt]' "
                                      "(and an NVIDIA GPU)") from None
    profiles = onnx_profiles(model, max_batch, opt_batch, max_time)
    gpu_name, cc = _gpu()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelError(f"{onnx_path}: TensorRT's ONNX parser failed: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    profile = builder.create_optimization_profile()
    for name, (lo, mid, hi) in profiles.items():
        profile.set_shape(name, tuple(lo), tuple(mid), tuple(hi))
    config.add_optimization_profile(profile)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
        family = next((p.value for p in model.metadata_props if p.key == "family"), "")
        pinned = pin_fp32_layers(network, trt, family)
        log.info("FP16 build: %d layers pinned to FP32", len(pinned))
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ModelError(f"{onnx_path}: TensorRT could not build an engine (see the TensorRT log above)")
    header = make_header(onnx_path, model, profiles, "fp16" if fp16 else "fp32", trt.__version__, gpu_name, cc)
    return write_engine_file(engine_path, header, plan)
