"""TensorRT-compatibility lint on every export, and the GPU-free parts of the engine builder."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from conftest import requires_torch

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from pose3d_rt.export.lint import lint_onnx  # noqa: E402


def _model(nodes, inits=(), opset=17, inputs=None, outputs=None, domain_imports=()):
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])]
    outputs = outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    ops = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domain_imports]
    return helper.make_model(g, opset_imports=ops)


def _k(value):
    return numpy_helper.from_array(np.array([value], np.int64), "k")


@pytest.mark.parametrize("case,rule", [
    ("topk_5000", "topk-k"), ("topk_dynamic", "constant-input"), ("axes_dynamic", "constant-input"),
    ("unknown_op", "unsupported-op"), ("opset_11", "opset"), ("custom_domain", "custom-op"),
    ("maxpool_indices", "maxpool"),
])
def test_lint_flags_each_rule(case, rule):
    if case == "topk_5000":
        m = _model([helper.make_node("TopK", ["x", "k"], ["y", "i"])], [_k(5000)])
    elif case == "topk_dynamic":
        m = _model([helper.make_node("Shape", ["x"], ["s"]), helper.make_node("TopK", ["x", "s"], ["y", "i"])])
    elif case == "axes_dynamic":
        m = _model([helper.make_node("Shape", ["x"], ["s"]), helper.make_node("ReduceSum", ["x", "s"], ["y"])])
    elif case == "unknown_op":
        m = _model([helper.make_node("StringNormalizer", ["x"], ["y"])])
    elif case == "opset_11":
        m = _model([helper.make_node("Relu", ["x"], ["y"])], opset=11)
    elif case == "custom_domain":
        m = _model([helper.make_node("TRTBatchedNMS", ["x"], ["y"], domain="mmdeploy")], domain_imports=["mmdeploy"])
    else:
        m = _model([helper.make_node("MaxPool", ["x"], ["y", "idx"], kernel_shape=[2])])
    rules = {i.rule for i in lint_onnx(m)}
    assert rule in rules, rules


def test_lint_passes_a_clean_graph():
    m = _model([helper.make_node("TopK", ["x", "k"], ["y", "i"])], [_k(100)])
    assert lint_onnx(m) == []


@requires_torch
@pytest.mark.parametrize("name,form", [("rtmdet_m_person", None), ("rtmdet_nano_person", None),
                                       ("rtmpose_m_body8_256x192", None), ("rtmpose_t_body8_256x192", None),
                                       ("videopose3d_27f_supv", "strided"), ("videopose3d_27f_supv", "dilated"),
                                       ("videopose3d_243f_supv_cpn_ft", "strided"),
                                       ("videopose3d_243f_supv_cpn_ft", "dilated")])
def test_every_export_passes_the_lint(checkpoints, tmp_path, name, form):
    from pose3d_rt.export import export_onnx

    path = export_onnx(checkpoints[name], tmp_path / "m.onnx", form=form)
    assert lint_onnx(path) == []


@requires_torch
def test_profiles_fp32_selection_and_header(checkpoints, tmp_path):
    from pose3d_rt.engines.trt_header import read_engine_file, validate_header, write_engine_file
    from pose3d_rt.export import export_onnx
    from pose3d_rt.export.trt_build import fp32_layer_names, make_header, onnx_profiles

    pose = export_onnx(checkpoints["rtmpose_t_body8_256x192"], tmp_path / "p.onnx")
    m = onnx.load(str(pose))
    prof = onnx_profiles(m, max_batch=32, opt_batch=8)
    assert prof == {"input": [[1, 3, 256, 192], [8, 3, 256, 192], [32, 3, 256, 192]]}
    names = [n.name for n in m.graph.node]
    pinned = fp32_layer_names(names)
    assert any("ReduceL2" in n and "/head/mlp/mlp.0/" in n for n in pinned)  # ScaleNorm of the head MLP
    assert any("/head/gau/Relu" in n for n in pinned) and any("/head/gau/ln/" in n for n in pinned)
    assert not any(n.startswith("/backbone/") for n in pinned)
    lift = export_onnx(checkpoints["videopose3d_27f_supv"], tmp_path / "l.onnx", form="dilated")
    lp = onnx_profiles(onnx.load(str(lift)), max_batch=16, max_time=200)
    assert lp["keypoints"] == [[1, 27, 17, 2], [4, 90, 17, 2], [16, 200, 17, 2]]
    header = make_header(pose, m, prof, "fp16", "10.3.0", "Test GPU", "8.6")
    validate_header(header)
    write_engine_file(tmp_path / "p.engine", header, b"plan-bytes")
    got, plan = read_engine_file(tmp_path / "p.engine")
    assert plan == b"plan-bytes" and got["onnx_metadata"]["family"] == "rtmpose"


def test_build_engine_without_tensorrt_is_a_clear_error(tmp_path):
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt is installed; the real build is exercised on a GPU machine")
    from pose3d_rt.engines.errors import BackendUnavailableError
    from pose3d_rt.export.trt_build import build_engine

    m = _model([helper.make_node("Relu", ["x"], ["y"])])
    onnx.save(m, str(tmp_path / "r.onnx"))
    with pytest.raises(BackendUnavailableError, match=r"pose3d-rt\[trt\]"):
        build_engine(tmp_path / "r.onnx", tmp_path / "r.engine")
    assert not (tmp_path / "r.engine").exists()
