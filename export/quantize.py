"""INT8 static quantization of pose3d-rt ONNX files (QDQ), torch-free: ``onnxruntime.quantization`` + onnx + numpy.

``quantize_onnx(model, output, feeds)`` writes a QDQ model (``QuantizeLinear``/``DequantizeLinear`` pairs around
the quantized nodes; every backend that reads QDQ -- ONNX Runtime CPU/CUDA/TensorRT, OpenVINO -- runs them as
INT8 kernels):

- static quantization, ranges calibrated (MinMax) on ``feeds``: the network inputs the pipeline's own
  preprocessing made from the user's frames (:mod:`pose3d_rt.calibration`);
- only ``Conv`` and ``MatMul`` are quantized (:data:`QUANTIZED_OP_TYPES`): weights INT8 per output channel
  (symmetric), activations UINT8 (default, asymmetric) or INT8. Everything else -- the detector's in-graph box
  decoding and sigmoid, the GAU's norms and activations, the SimCC logits -- stays FP32;
- the QDQ layout (:data:`QDQ_LAYOUTS`) fits the backend that will run the file: ``onnxruntime`` quantizes the
  inputs *and the output* of every quantized node (ONNX Runtime fuses ``DQ -> Conv -> Q`` into one integer
  ``QLinearConv``; a Conv without its output ``Q`` runs in FP32); ``openvino`` quantizes the inputs only (the
  activation after a Conv stays FP32 and OpenVINO fuses it into the INT8 convolution; with a ``Q`` on the Conv's
  output it dequantizes, activates and requantizes in a separate pass: measured 35 % of RTMPose-m's INT8 time,
  7.9 instead of 10.9 ms per crop, while the same file runs 2.4x slower on ONNX Runtime). Both files are valid
  on every backend; only their speed differs;
- ONNX Runtime's pre-processing first (:func:`onnxruntime.quantization.quant_pre_process`: graph optimisation
  and ONNX shape inference; symbolic shape inference when sympy is installed);
- the FP32 file's metadata is kept, plus ``precision=int8`` and the ``quant_*`` keys below, so every stage loads
  the INT8 file exactly like the FP32 one.

Metadata added: ``precision`` (``int8``), ``quant_format`` (``qdq``), ``quant_op_types`` (``Conv,MatMul``),
``quant_activations`` (``uint8``/``int8``), ``quant_layout`` (``onnxruntime``/``openvino``), ``quant_weights`` (``int8``), ``quant_per_channel`` (``true``),
``quant_calibration_samples`` (engine calls calibrated on), ``quant_source_sha256`` (the FP32 file), and what the
caller adds (the calibration input, frames).

The output is written beside its final name and renamed when complete.
"""
from __future__ import annotations

import hashlib
import itertools
import logging
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Union

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_static,
)

from ..engines.errors import ModelError, Pose3DError

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
Feed = Mapping[str, np.ndarray]

#: The node types quantized; everything else stays FP32.
QUANTIZED_OP_TYPES = ("Conv", "MatMul")
#: ``activations=`` choices -> ONNX Runtime quantization types (weights are always INT8).
ACTIVATION_TYPES = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
DEFAULT_ACTIVATIONS = "uint8"
#: ``layout=`` choices: which tensors get QDQ pairs (module docstring) -- the backend the file is made for.
QDQ_LAYOUTS = ("onnxruntime", "openvino")
DEFAULT_LAYOUT = "onnxruntime"
QDQ_OP_TYPES = ("QuantizeLinear", "DequantizeLinear")


@dataclass(frozen=True)
class QuantizeResult:
    """What :func:`quantize_onnx` wrote: the INT8 ``path``, the number of calibration ``samples`` (engine calls),
    how many nodes of each type got quantized (``quantized``) and the metadata written."""

    path: Path
    samples: int
    quantized: Dict[str, int]
    metadata: Dict[str, str] = field(default_factory=dict)


class _FeedReader(CalibrationDataReader):
    """ONNX Runtime's calibration reader over an iterable of feeds, consumed lazily (bounded memory)."""

    def __init__(self, feeds: Iterable[Feed], input_names: Sequence[str]) -> None:
        self._it: Iterator[Feed] = iter(feeds)
        self.names = tuple(input_names)
        self.count = 0

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        feed = next(self._it, None)
        if feed is None:
            return None
        missing = [n for n in self.names if n not in feed]
        if missing:
            raise ModelError(f"calibration feed without input(s) {', '.join(missing)}; the model takes "
                             f"{', '.join(self.names)}")
        self.count += 1
        return {n: np.ascontiguousarray(feed[n], dtype=np.float32) for n in self.names}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_metadata(path: PathLike) -> Dict[str, str]:
    """The ``metadata_props`` of an ONNX file (weights not loaded)."""
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad model file
        raise ModelError(f"{path}: not a readable ONNX file ({type(exc).__name__}: {str(exc)[:200]})") from None
    return {p.key: p.value for p in model.metadata_props}


def quantized_node_types(model: Union[PathLike, onnx.ModelProto]) -> Dict[str, int]:
    """``{op type: count}`` of the nodes that run in INT8 (QDQ): those whose first two inputs (data, weight) both
    come from ``DequantizeLinear`` nodes."""
    m = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model), load_external_data=False)
    dq = {o for n in m.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    counts = Counter(n.op_type for n in m.graph.node
                     if n.op_type not in QDQ_OP_TYPES and len(n.input) >= 2 and all(i in dq for i in n.input[:2]))
    return dict(sorted(counts.items()))


def output_heads(model: onnx.ModelProto, op_types: Sequence[str] = QUANTIZED_OP_TYPES) -> List[str]:
    """Names of the ``op_types`` nodes nearest to the graph outputs: walking back from each output through other
    nodes, the first Conv/MatMul met. They stay FP32 (with an INT8 output the detector's logits and boxes, or the
    SimCC logits, would be rounded to 256 levels)."""
    producer = {o: n for n in model.graph.node for o in n.output}
    heads: List[str] = []
    seen = set()
    stack = [o.name for o in model.graph.output]
    while stack:
        name = stack.pop()
        node = producer.get(name)
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if node.op_type in op_types:
            heads.append(node.name)
        else:
            stack.extend(node.input)
    return sorted(heads)


def _preprocessed(model: Path, tmp: Path) -> Path:
    """ONNX Runtime's quantization pre-processing (graph optimisation + ONNX shape inference; its symbolic shape
    inference is skipped: it needs sympy and adds nothing for these static-rank graphs); the input on failure."""
    out = tmp / "preprocessed.onnx"
    try:
        quant_pre_process(str(model), str(out), skip_symbolic_shape=True)
    except Exception as exc:  # noqa: BLE001 - pre-processing is an optimisation; quantize the original then
        log.warning("%s: quantization pre-processing failed (%s); quantizing the graph as exported",
                    model, str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
        return model
    return out


def _write_metadata(path: Path, metadata: Mapping[str, str]) -> None:
    model = onnx.load(str(path))
    del model.metadata_props[:]
    for k, v in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = str(k), str(v)
    onnx.save(model, str(path))


def _graph_inputs(model: onnx.ModelProto) -> List[str]:
    weights = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in weights]


def _checked(feeds: Iterable[Feed], src: Path) -> Iterator[Feed]:
    """``feeds`` with its first item fetched now: no calibration data is an error before any work."""
    it = iter(feeds)
    first = next(it, None)
    if first is None:
        raise Pose3DError(f"{src}: no calibration data: the frames gave no network input (no frames, or no person "
                          f"found for a 2D model's crops)")
    return itertools.chain([first], it)


def _quantize(src: Path, part: Path, reader: _FeedReader, activations: str, per_channel: bool,
              op_types: Sequence[str], preprocess: bool, fp32_heads: bool, layout: str) -> List[str]:
    """Run ONNX Runtime's static QDQ quantization of ``src`` into ``part``; returns the nodes kept FP32."""
    with tempfile.TemporaryDirectory(prefix="pose3d_rt_quant_") as tmp:
        source = _preprocessed(src, Path(tmp)) if preprocess else src
        graph = onnx.load(str(source), load_external_data=False)
        reader.names = tuple(_graph_inputs(graph))
        keep = output_heads(graph, op_types) if fp32_heads else []
        del graph
        quantize_static(
            str(source), str(part), reader, quant_format=QuantFormat.QDQ, op_types_to_quantize=list(op_types),
            per_channel=per_channel, activation_type=ACTIVATION_TYPES[activations], weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=keep or None,
            extra_options={"OpTypesToExcludeOutputQuantization": list(op_types)} if layout == "openvino" else None,
        )
    return keep


def quantize_onnx(model: PathLike, output: PathLike, feeds: Iterable[Feed], *,
                  activations: str = DEFAULT_ACTIVATIONS, per_channel: bool = True,
                  op_types: Sequence[str] = QUANTIZED_OP_TYPES, metadata: Optional[Mapping[str, str]] = None,
                  preprocess: bool = True, fp32_heads: bool = True, layout: str = DEFAULT_LAYOUT) -> QuantizeResult:
    """Quantize the FP32 ONNX ``model`` to a QDQ INT8 ``output``, calibrated on ``feeds`` (``{input name: float32
    array}`` per engine call, consumed once, lazily). ``fp32_heads``: keep the Conv/MatMul nodes nearest to the
    outputs in FP32 (:func:`output_heads`). ``layout``: the backend the QDQ placement is made for
    (:data:`QDQ_LAYOUTS`). See the module docstring. Raises :class:`ModelError` for a file that
    is not ONNX or already INT8, :class:`Pose3DError` for no calibration data or a bad option."""
    src, out = Path(model), Path(output)
    if activations not in ACTIVATION_TYPES:
        raise Pose3DError(f"activations must be one of {', '.join(ACTIVATION_TYPES)}, got {activations!r}")
    if layout not in QDQ_LAYOUTS:
        raise Pose3DError(f"layout must be one of {', '.join(QDQ_LAYOUTS)}, got {layout!r}")
    if out.resolve() == src.resolve():
        raise Pose3DError(f"{out}: the INT8 output would overwrite the FP32 model")
    meta = read_metadata(src)
    if meta.get("precision", "").lower() == "int8":
        raise ModelError(f"{src}: already quantized (metadata precision=int8); quantize the FP32 file")
    reader = _FeedReader(_checked(feeds, src), ())
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(f".{out.name}.{os.getpid()}.part.onnx")
    try:
        keep = _quantize(src, part, reader, activations, per_channel, op_types, preprocess, fp32_heads, layout)
        meta.update({"precision": "int8", "quant_format": "qdq", "quant_op_types": ",".join(op_types),
                     "quant_activations": activations, "quant_layout": layout, "quant_weights": "int8",
                     "quant_per_channel": "true" if per_channel else "false", "quant_fp32_nodes": str(len(keep)),
                     "quant_calibration_samples": str(reader.count), "quant_source_sha256": _sha256(src)})
        meta.update({str(k): str(v) for k, v in (metadata or {}).items()})
        meta.pop("onnx.quant.pre_process", None)
        _write_metadata(part, meta)
        quantized = quantized_node_types(part)
        os.replace(part, out)
    except ValueError as exc:  # ONNX Runtime's own checks ("No data is collected.", ...)
        raise Pose3DError(f"{src}: quantization failed: {str(exc).splitlines()[0][:300]}") from None
    finally:
        if part.exists():
            part.unlink()
    log.info("quantized %s -> %s (%d calibration samples; INT8 nodes %s)", src, out, reader.count, quantized)
    return QuantizeResult(out, reader.count, quantized, meta)


#: the integer kernels ONNX Runtime's dynamic quantization writes (what runs in INT8 in such a file)
INTEGER_OP_TYPES = ("MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat")


def quantize_dynamic_onnx(model: PathLike, output: PathLike, *, op_types: Sequence[str] = ("MatMul", "Gemm"),
                          per_channel: bool = True, preprocess: bool = True) -> QuantizeResult:
    """Dynamic INT8 (ONNX Runtime ``quantize_dynamic``): weights INT8 per channel, activations quantized at run time
    per tensor, no calibration data. For lifters (the stream-form TCN is time-major GEMMs whose state inputs are
    activations too, so a static calibration would have to cover every layer's history); Conv detectors and 2D
    models use the static QDQ :func:`quantize_onnx`. Same metadata rules (``precision=int8``,
    ``quant_format=dynamic``), written atomically."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, out = Path(model), Path(output)
    if out.resolve() == src.resolve():
        raise Pose3DError(f"{out}: the INT8 output would overwrite the FP32 model")
    meta = read_metadata(src)
    if meta.get("precision", "").lower() == "int8":
        raise ModelError(f"{src}: already quantized (metadata precision=int8); quantize the FP32 file")
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(f".{out.name}.{os.getpid()}.part.onnx")
    with tempfile.TemporaryDirectory(prefix="pose3d_rt_q") as tmp:
        try:
            prepared = _preprocessed(src, Path(tmp)) if preprocess else src
            quantize_dynamic(str(prepared), str(part), weight_type=QuantType.QInt8, per_channel=per_channel,
                             op_types_to_quantize=list(op_types))
            meta.update({"precision": "int8", "quant_format": "dynamic", "quant_op_types": ",".join(op_types),
                         "quant_weights": "int8", "quant_per_channel": "true" if per_channel else "false",
                         "quant_source_sha256": _sha256(src)})
            meta.pop("onnx.quant.pre_process", None)
            _write_metadata(part, meta)
            graph = onnx.load(str(part), load_external_data=False).graph
            quantized = dict(sorted(Counter(n.op_type for n in graph.node if n.op_type in INTEGER_OP_TYPES).items()))
            os.replace(part, out)
        except ValueError as exc:
            raise Pose3DError(f"{src}: quantization failed: {str(exc).splitlines()[0][:300]}") from None
        finally:
            if part.exists():
                part.unlink()
    log.info("quantized %s -> %s (dynamic; INT8 nodes %s)", src, out, quantized)
    return QuantizeResult(out, 0, quantized, meta)


__all__ = ["QUANTIZED_OP_TYPES", "ACTIVATION_TYPES", "DEFAULT_ACTIVATIONS", "QDQ_LAYOUTS", "DEFAULT_LAYOUT",
           "QuantizeResult", "quantize_onnx", "quantize_dynamic_onnx", "quantized_node_types", "read_metadata"]
