"""A static TensorRT-compatibility lint for exported ONNX graphs (docs/MMPOSE_BEHAVIOUR.md, TensorRT).

Checks, without TensorRT: the default-domain opset (17), no custom domains, every op in the set onnx-tensorrt
imports for TensorRT 10, TopK with a constant K < 3840, constant ``axes`` for reductions/Slice/Squeeze/Unsqueeze/Pad,
MaxPool without dilations or an Indices output, Resize without antialiasing and with a supported mode.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Set, Union

import numpy as np
import onnx
from onnx import numpy_helper

TOPK_MAX = 3840
SUPPORTED_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast Ceil Celu Clip Concat
Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace DequantizeLinear Div Dropout Einsum Elu Equal
Erf Exp Expand EyeLike Flatten Floor Gather GatherElements GatherND Gelu Gemm GlobalAveragePool GlobalMaxPool Greater
GreaterOrEqual GridSample GroupNormalization HardSigmoid HardSwish Identity If InstanceNormalization IsInf IsNaN
LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax LpNormalization MatMul Max MaxPool Mean Min Mish Mod Mul
Neg NonMaxSuppression NonZero Not OneHot Or Pad Pow PRelu QuantizeLinear Range Reciprocal ReduceL1 ReduceL2
ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize
ReverseSequence Round ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax Softplus
Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample
Where Xor
""".split())
# op -> index of the input that must be a constant (axes / pads), when given as an input
CONSTANT_INPUTS: Dict[str, int] = {
    "ReduceMean": 1, "ReduceL2": 1, "ReduceL1": 1, "ReduceMax": 1, "ReduceMin": 1, "ReduceSum": 1, "ReduceProd": 1,
    "ReduceSumSquare": 1, "ReduceLogSum": 1, "ReduceLogSumExp": 1, "Squeeze": 1, "Unsqueeze": 1, "Slice": 3,
    "Pad": 1, "TopK": 1,
}
RESIZE_MODES = ("nearest", "linear")


@dataclass(frozen=True)
class LintIssue:
    rule: str
    node: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.node}: {self.message}"


def _constants(graph: onnx.GraphProto) -> Dict[str, Optional[np.ndarray]]:
    values: Dict[str, Optional[np.ndarray]] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    values[n.output[0]] = numpy_helper.to_array(a.t)
                elif a.name in ("value_ints", "value_int", "value_floats", "value_float"):
                    values[n.output[0]] = np.asarray(onnx.helper.get_attribute_value(a))
    return values


def lint_onnx(model: Union[str, Path, onnx.ModelProto], opset: Optional[int] = 17) -> List[LintIssue]:
    """Every TensorRT-compatibility problem of ``model`` (an empty list means it passes)."""
    m = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))
    issues: List[LintIssue] = []
    for imp in m.opset_import:
        if imp.domain in ("", "ai.onnx"):
            if opset is not None and imp.version != opset:
                issues.append(LintIssue("opset", "<model>", f"default-domain opset {imp.version}, expected {opset}"))
        elif imp.domain != "ai.onnx.ml":
            issues.append(LintIssue("custom-domain", "<model>", f"imports custom domain {imp.domain!r}"))
    consts = _constants(m.graph)
    seen_unknown: Set[str] = set()
    for i, n in enumerate(m.graph.node):
        name = n.name or f"{n.op_type}_{i}"
        if n.domain not in ("", "ai.onnx"):
            issues.append(LintIssue("custom-op", name, f"{n.domain}::{n.op_type} needs a plugin"))
            continue
        if n.op_type not in SUPPORTED_OPS:
            if n.op_type not in seen_unknown:
                issues.append(LintIssue("unsupported-op", name, f"{n.op_type} is not imported by onnx-tensorrt"))
                seen_unknown.add(n.op_type)
            continue
        idx = CONSTANT_INPUTS.get(n.op_type)
        if idx is not None and len(n.input) > idx and n.input[idx] and n.input[idx] not in consts:
            what = "K" if n.op_type == "TopK" else ("pads" if n.op_type == "Pad" else "axes")
            issues.append(LintIssue("constant-input", name, f"{n.op_type} {what} must be a constant"))
        if n.op_type == "TopK" and len(n.input) > 1 and n.input[1] in consts:
            k = int(np.asarray(consts[n.input[1]]).reshape(-1)[0])
            if k >= TOPK_MAX:
                issues.append(LintIssue("topk-k", name, f"TopK K={k} must be < {TOPK_MAX}"))
        if n.op_type == "MaxPool":
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            if any(d != 1 for d in attrs.get("dilations", [])):
                issues.append(LintIssue("maxpool", name, "MaxPool with dilations"))
            if len(n.output) > 1 and n.output[1]:
                issues.append(LintIssue("maxpool", name, "MaxPool with an Indices output"))
        if n.op_type == "Resize":
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            mode = attrs.get("mode", b"nearest")
            mode = mode.decode() if isinstance(mode, bytes) else mode
            if mode not in RESIZE_MODES:
                issues.append(LintIssue("resize", name, f"Resize mode {mode!r}"))
            if attrs.get("antialias", 0):
                issues.append(LintIssue("resize", name, "Resize with antialias"))
    return issues
