"""Tests of pose3d_rt.engines: OrtEngine on tiny ONNX graphs built here with onnx.helper, input validation,
bad files, providers, the spec helpers the stages use in messages, the TensorRT engine-file header, and TrtEngine (against a simulated
tensorrt/pycuda here; on a real GPU when one is present)."""
from __future__ import annotations

import importlib.util
import json
import struct
import sys
import types
from pathlib import Path
from typing import Dict

import numpy as np
import pytest
from pose3d_rt.engines import (
    BackendUnavailableError,
    Engine,
    EngineInputError,
    ModelError,
    TensorSpec,
    describe_io,
    load_engine,
    static_dim,
)
from pose3d_rt.engines.onnxruntime import OrtEngine, parse_device, providers_for
from pose3d_rt.engines.tensorrt import TrtEngine
from pose3d_rt.engines.trt_header import (
    MAGIC,
    REQUIRED_KEYS,
    check_engine_compatibility,
    engine_compatibility_problem,
    read_engine_file,
    read_engine_header,
    write_engine_file,
)

RNG = np.random.default_rng(0)

# --------------------------------------------------------------------------------------------------------------
# tiny ONNX models


@pytest.fixture(scope="module")
def onnx():
    return pytest.importorskip("onnx", reason="building test graphs needs onnx (the [export] extra)")


CONV_W = RNG.standard_normal((3, 2, 3, 3)).astype(np.float32)
CONV_B = RNG.standard_normal(3).astype(np.float32)
MM_BIAS = RNG.standard_normal(4).astype(np.float32)
CONV_META = {"family": "testconv", "input_size": "5,6", "note": "ünïcode ok"}


def _save(onnx, graph, path: Path, meta: Dict[str, str]) -> Path:
    h = onnx.helper
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], producer_name="pose3d-rt-tests")
    model.ir_version = 8
    h.set_model_props(model, meta)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def conv_onnx(onnx, tmp_path_factory) -> Path:
    """input (unnamed dynamic, 2, 5, 6) -> feat = Conv3x3(pad 1) (batch, 3, 5, 6), pooled = GAP (batch, 3, 1, 1)."""
    h, T = onnx.helper, onnx.TensorProto
    x = h.make_tensor_value_info("input", T.FLOAT, [None, 2, 5, 6])
    feat = h.make_tensor_value_info("feat", T.FLOAT, ["batch", 3, 5, 6])
    pooled = h.make_tensor_value_info("pooled", T.FLOAT, ["batch", 3, 1, 1])
    nodes = [
        h.make_node("Conv", ["input", "W", "B"], ["feat"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        h.make_node("GlobalAveragePool", ["feat"], ["pooled"]),
    ]
    inits = [onnx.numpy_helper.from_array(CONV_W, "W"), onnx.numpy_helper.from_array(CONV_B, "B")]
    graph = h.make_graph(nodes, "conv", [x], [feat, pooled], inits)
    return _save(onnx, graph, tmp_path_factory.mktemp("onnx") / "conv.onnx", CONV_META)


@pytest.fixture(scope="module")
def matmul_onnx(onnx, tmp_path_factory) -> Path:
    """a (n, 4) float32, b (4, 3) float32 -> prod = a @ b, total = a + bias, best = argmax(prod, 1) int64."""
    h, T = onnx.helper, onnx.TensorProto
    ins = [h.make_tensor_value_info("a", T.FLOAT, ["n", 4]), h.make_tensor_value_info("b", T.FLOAT, [4, 3])]
    outs = [h.make_tensor_value_info("prod", T.FLOAT, ["n", 3]), h.make_tensor_value_info("total", T.FLOAT, ["n", 4]),
            h.make_tensor_value_info("best", T.INT64, ["n"])]
    nodes = [h.make_node("MatMul", ["a", "b"], ["prod"]), h.make_node("Add", ["a", "bias"], ["total"]),
             h.make_node("ArgMax", ["prod"], ["best"], axis=1, keepdims=0)]
    graph = h.make_graph(nodes, "mm", ins, outs, [onnx.numpy_helper.from_array(MM_BIAS, "bias")])
    return _save(onnx, graph, tmp_path_factory.mktemp("onnx") / "mm.onnx", {"family": "testmm"})


@pytest.fixture(scope="module")
def conv_engine(conv_onnx) -> OrtEngine:
    return load_engine(conv_onnx)


def conv_numpy(x: np.ndarray) -> np.ndarray:
    """Cross-correlation with zero padding 1, in float64 (what ONNX Conv computes)."""
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))  # (N, C, H, W, 3, 3)
    return np.einsum("nchwij,ocij->nohw", win, CONV_W.astype(np.float64)) + CONV_B[None, :, None, None]


# --------------------------------------------------------------------------------------------------------------
# OrtEngine: numbers, signatures, metadata


@pytest.mark.parametrize("batch", [1, 4])
def test_conv_outputs_equal_numpy(conv_engine, batch):
    x = RNG.standard_normal((batch, 2, 5, 6)).astype(np.float32)
    out = conv_engine.run({"input": x})
    assert list(out) == ["feat", "pooled"]
    ref = conv_numpy(x)
    assert out["feat"].shape == (batch, 3, 5, 6) and out["feat"].dtype == np.float32
    np.testing.assert_allclose(out["feat"], ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["pooled"], ref.mean(axis=(2, 3), keepdims=True), rtol=1e-5, atol=1e-5)
    # single-array call and __call__ give the same result
    single = conv_engine(x)
    for k in out:
        np.testing.assert_array_equal(single[k], out[k])


def test_conv_signature_and_metadata(conv_engine, conv_onnx):
    (inp,) = conv_engine.inputs
    assert inp == TensorSpec("input", (None, 2, 5, 6), np.dtype(np.float32))
    assert inp.is_dynamic(0) and not inp.is_dynamic(1) and inp.static_dim(3) == 6
    assert conv_engine.output_names == ("feat", "pooled")
    assert conv_engine.outputs[0].shape == ("batch", 3, 5, 6)
    assert conv_engine.outputs[1].describe() == "pooled[batch,3,1,1]:float32"
    assert conv_engine.metadata == CONV_META
    assert conv_engine.path == str(conv_onnx)
    assert conv_engine.providers == ["CPUExecutionProvider"]


def test_multi_input_two_dtypes(matmul_onnx):
    eng = load_engine(matmul_onnx)
    assert eng.input_names == ("a", "b")
    assert [(s.name, s.shape, s.dtype) for s in eng.outputs] == [
        ("prod", ("n", 3), np.dtype(np.float32)), ("total", ("n", 4), np.dtype(np.float32)),
        ("best", ("n",), np.dtype(np.int64))]
    a = RNG.standard_normal((5, 4)).astype(np.float32)
    b = RNG.standard_normal((4, 3)).astype(np.float32)
    out = eng.run({"b": b, "a": a})  # any key order in; graph order out
    assert list(out) == ["prod", "total", "best"]
    np.testing.assert_allclose(out["prod"], a.astype(np.float64) @ b, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out["total"], a + MM_BIAS)
    assert out["best"].dtype == np.int64
    np.testing.assert_array_equal(out["best"], np.argmax(out["prod"], axis=1))
    assert eng.metadata == {"family": "testmm"}


def test_float64_is_cast_when_safe(conv_engine):
    x = RNG.standard_normal((2, 2, 5, 6))
    out64 = conv_engine(x)
    out32 = conv_engine(x.astype(np.float32))
    np.testing.assert_array_equal(out64["feat"], out32["feat"])
    # lists are accepted as arrays too
    np.testing.assert_array_equal(conv_engine(x.astype(np.float32).tolist())["feat"], out32["feat"])


def test_threads_and_optimization_level_reach_the_session(conv_onnx):
    import onnxruntime as ort

    eng = load_engine(conv_onnx, threads=2)
    opts = eng.session.get_session_options()
    assert opts.intra_op_num_threads == 2
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert load_engine(conv_onnx).session.get_session_options().intra_op_num_threads == 0  # ORT default
    with pytest.raises(EngineInputError, match="threads"):
        load_engine(conv_onnx, threads=-1)


def test_intra_op_threads_do_not_spin_unless_asked(conv_onnx):
    key = "session.intra_op.allow_spinning"
    assert load_engine(conv_onnx).session.get_session_options().get_session_config_entry(key) == "0"
    assert load_engine(conv_onnx, spin=True).session.get_session_options().get_session_config_entry(key) == "1"


# --------------------------------------------------------------------------------------------------------------
# input validation: clear errors naming the input, before onnxruntime sees anything


@pytest.mark.parametrize("value, pattern", [
    (np.zeros((1, 2, 5), np.float32), r"'input': expected rank 4 \(\?, 2, 5, 6\) float32, got shape \(1, 2, 5\)"),
    (np.zeros((1, 3, 5, 6), np.float32), r"'input': expected shape \(\?, 2, 5, 6\) \(axis 1 must be 2\)"),
    (np.zeros((1, 2, 7, 8), np.float32), r"axis 2 must be 5, axis 3 must be 6"),
    (np.zeros((1, 2, 5, 6), np.uint8), r"'input': expected dtype float32 .*got shape \(1, 2, 5, 6\) uint8"),
    (np.zeros((1, 2, 5, 6), np.int64), r"'input': expected dtype float32 .* int64"),
    (np.full((1, 2, 5, 6), 1e300), r"'input': expected dtype float32 .*float32 range"),
    ({"image": np.zeros((1, 2, 5, 6), np.float32)}, r"missing input\(s\) 'input'; unknown input name\(s\) 'image'"),
    ({"input": np.zeros((1, 2, 5, 6), np.float32), "extra": np.zeros(1)}, r"unknown input name\(s\) 'extra'"),
])
def test_bad_inputs_are_named(conv_engine, value, pattern):
    with pytest.raises(EngineInputError, match=pattern) as info:
        conv_engine.run(value)
    assert str(conv_engine.path) in str(info.value)
    assert "ONNXRuntimeError" not in str(info.value)


def test_single_array_for_multi_input_is_refused(matmul_onnx):
    eng = load_engine(matmul_onnx)
    with pytest.raises(EngineInputError, match=r"single array .* 2 inputs \[a\[n,4\]:float32, b\[4,3\]:float32\]"):
        eng.run(np.zeros((2, 4), np.float32))
    with pytest.raises(EngineInputError, match=r"missing input\(s\) 'b'"):
        eng.run({"a": np.zeros((2, 4), np.float32)})
    with pytest.raises(EngineInputError, match=r"'b': expected shape \(4, 3\) \(axis 1 must be 3\)"):
        eng.run({"a": np.zeros((2, 4), np.float32), "b": np.zeros((4, 2), np.float32)})


def test_runtime_failure_is_a_short_model_error(onnx, tmp_path):
    """Inputs that pass the per-input checks but clash inside the graph (two dynamic dims that must agree)."""
    h, T = onnx.helper, onnx.TensorProto
    ins = [h.make_tensor_value_info("p", T.FLOAT, ["n", 3]), h.make_tensor_value_info("q", T.FLOAT, ["m", 3])]
    graph = h.make_graph([h.make_node("Add", ["p", "q"], ["r"])], "add", ins,
                         [h.make_tensor_value_info("r", T.FLOAT, [None, 3])])
    path = _save(onnx, graph, tmp_path / "add.onnx", {})
    eng = load_engine(path)
    np.testing.assert_array_equal(eng.run({"p": np.ones((2, 3)), "q": np.ones((1, 3))})["r"], np.full((2, 3), 2.0))
    with pytest.raises(ModelError, match=r"add\.onnx: onnxruntime failed on inputs p\(2, 3\), q\(3, 3\)") as info:
        eng.run({"p": np.ones((2, 3), np.float32), "q": np.ones((3, 3), np.float32)})
    assert "\n" not in str(info.value) and "[ONNXRuntimeError]" not in str(info.value)


# --------------------------------------------------------------------------------------------------------------
# bad model files


def test_bad_onnx_files(conv_onnx, tmp_path):
    good = conv_onnx.read_bytes()
    cases = {
        "missing.onnx": (None, "no such ONNX model file"),
        "empty.onnx": (b"", r"not a valid ONNX model \(empty file\)"),
        "truncated.onnx": (good[: len(good) // 2], r"not a valid ONNX model \(truncated or corrupt\): \S"),
        "garbage.onnx": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, r"not a valid ONNX model \(truncated or corrupt\)"),
    }
    for name, (data, pattern) in cases.items():
        path = tmp_path / name
        if data is not None:
            path.write_bytes(data)
        with pytest.raises(ModelError, match=pattern) as info:
            load_engine(path)
        msg = str(info.value)
        assert msg.startswith(str(path) + ":"), msg
        assert "[ONNXRuntimeError]" not in msg and len(msg) < 400, msg
    folder = tmp_path / "folder.onnx"
    folder.mkdir()
    with pytest.raises(ModelError, match=r"folder\.onnx: is a directory"):
        load_engine(folder)


def test_suffixes(tmp_path):
    with pytest.raises(ModelError, match=r"model\.pth: a training checkpoint.*pose3d-rt export"):
        load_engine(tmp_path / "model.pth")
    with pytest.raises(ModelError, match=r"weights\.bin: unknown model file type '\.bin'; expected one of "
                                         r"\.onnx, \.engine, \.plan, \.trt"):
        load_engine(tmp_path / "weights.bin")
    # a TensorRT suffix goes to the engine-file reader, which fails on the file before needing tensorrt
    for suffix in (".engine", ".plan", ".trt"):
        path = tmp_path / f"m{suffix}"
        path.write_bytes(b"not an engine")
        with pytest.raises(ModelError, match=rf"m\{suffix}: not a pose3d-rt engine file"):
            load_engine(path, device="cuda")


# --------------------------------------------------------------------------------------------------------------
# devices and providers


def test_parse_device():
    assert parse_device("cpu") == ("cpu", 0)
    assert parse_device(None) == ("cpu", 0)
    assert parse_device("CUDA:1") == ("cuda", 1)
    assert parse_device("gpu") == ("cuda", 0)
    assert parse_device("tensorrt:2") == ("tensorrt", 2)
    assert parse_device("trt") == ("tensorrt", 0)
    for bad in ("cuda:x", "mps", "cpu:1", "cuda0"):
        with pytest.raises(EngineInputError, match="device"):
            parse_device(bad)


@pytest.mark.skipif("CUDAExecutionProvider" in __import__("onnxruntime").get_available_providers(),
                    reason="onnxruntime-gpu is installed here")
@pytest.mark.parametrize("device, provider", [("cuda", "CUDAExecutionProvider"), ("cuda:1", "CUDAExecutionProvider"),
                                              ("tensorrt", "TensorrtExecutionProvider")])
def test_gpu_device_without_onnxruntime_gpu(conv_onnx, device, provider):
    with pytest.raises(BackendUnavailableError) as info:
        load_engine(conv_onnx, device=device)
    msg = str(info.value)
    assert provider in msg and "onnxruntime-gpu" in msg and 'pose3d-rt[gpu]' in msg
    assert "available: " in msg and "CPUExecutionProvider" in msg


def test_provider_lists(monkeypatch, tmp_path):
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers",
                        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
    assert providers_for("cpu") == ["CPUExecutionProvider"]
    assert providers_for("cuda:1") == [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]
    trt = providers_for("tensorrt:1", fp16=True, trt_cache_dir=tmp_path / "cache", trt_workspace_bytes=1 << 30)
    assert [p if isinstance(p, str) else p[0] for p in trt] == [
        "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert trt[0][1] == {"device_id": 1, "trt_fp16_enable": True, "trt_engine_cache_enable": True,
                         "trt_engine_cache_path": str(tmp_path / "cache"), "trt_max_workspace_size": 1 << 30}
    assert trt[1][1] == {"device_id": 1}
    monkeypatch.setenv("POSE3D_RT_HOME", str(tmp_path / "home"))
    assert providers_for("tensorrt")[0][1]["trt_engine_cache_path"] == str(tmp_path / "home" / "trt_cache")
    assert providers_for("tensorrt")[0][1]["trt_fp16_enable"] is False


def test_provider_that_fails_to_initialise_is_reported(conv_onnx, monkeypatch):
    """onnxruntime lists CUDA but the session silently falls back to CPU (e.g. cuDNN missing): we raise."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("a real CUDA provider is present")
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    with pytest.warns(UserWarning):  # onnxruntime's own "not in available provider names" warning
        with pytest.raises(BackendUnavailableError, match=r"conv\.onnx: device 'cuda'.*could not initialise"):
            load_engine(conv_onnx, device="cuda")


def test_closed_engine(conv_onnx):
    with load_engine(conv_onnx) as eng:
        assert eng.run(np.zeros((1, 2, 5, 6), np.float32))["feat"].shape == (1, 3, 5, 6)
    with pytest.raises(ModelError, match="closed"):
        eng.run(np.zeros((1, 2, 5, 6), np.float32))


# --------------------------------------------------------------------------------------------------------------
# spec helpers the runtime stages use for their model checks


class SpecEngine(Engine):
    """Signature-only engine."""

    def run(self, inputs):  # pragma: no cover - never run
        raise AssertionError


F32, I64 = np.dtype(np.float32), np.dtype(np.int64)
DETECTOR = SpecEngine("det.onnx", (TensorSpec("input", (None, 3, 640, 640), F32),),
                      (TensorSpec("dets", (None, None, 5), F32), TensorSpec("labels", (None, None), I64)),
                      {"family": "rtmdet"})


def test_static_dim():
    assert [static_dim(d) for d in (3, np.int64(640), 0, -1, None, "batch", True)] == [3, 640, 0, None, None,
                                                                                      None, None]
    spec = TensorSpec("input", ("N", 3, -1, 192), F32)
    assert [spec.static_dim(ax) for ax in range(4)] == [None, 3, None, 192]


def test_describe_io():
    assert describe_io(DETECTOR) == \
        "inputs [input[?,3,640,640]:float32], outputs [dets[?,?,5]:float32, labels[?,?]:int64]"
    duck = types.SimpleNamespace(inputs=[types.SimpleNamespace(name="x", shape=(1, 2))], outputs=())
    assert describe_io(duck) == "inputs [x[1, 2]], outputs []"


# --------------------------------------------------------------------------------------------------------------
# TensorRT engine file header (pure python)


def make_header(**over) -> dict:
    h = {
        "tensorrt_version": "10.3.0",
        "gpu_name": "NVIDIA GeForce RTX 4090",
        "compute_capability": "8.9",
        "precision": "fp16",
        "profiles": {"input": [[1, 3, 256, 192], [8, 3, 256, 192], [32, 3, 256, 192]]},
        "onnx_sha256": "ab" * 32,
        "onnx_metadata": {"family": "rtmpose", "input_size": "256,192"},
        "created_by": "pose3d-rt 0.1.0",
    }
    h.update(over)
    return h


def test_engine_file_round_trip(tmp_path):
    plan = bytes(range(256)) * 40
    header = make_header(extra_key={"kept": True})
    path = write_engine_file(tmp_path / "sub" / "m.engine", header, plan)
    assert path == tmp_path / "sub" / "m.engine"
    raw = path.read_bytes()
    assert raw[:8] == MAGIC == b"P3RTENG1"
    (n,) = struct.unpack("<I", raw[8:12])
    assert json.loads(raw[12:12 + n].decode("utf-8")) == header and raw[12 + n:] == plan
    got_header, got_plan = read_engine_file(path)
    assert got_header == header and got_plan == plan
    assert read_engine_header(path) == header
    # memoryview plans (TensorRT's IHostMemory exposes the buffer protocol) and atomic overwrite
    write_engine_file(path, make_header(precision="fp32"), memoryview(b"\x01\x02\x03"))
    assert read_engine_file(path) == (make_header(precision="fp32"), b"\x01\x02\x03")
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.engine"]  # no temp file left behind


def test_engine_file_write_refuses_bad_input(tmp_path):
    with pytest.raises(ModelError, match="empty plan"):
        write_engine_file(tmp_path / "a.engine", make_header(), b"")
    bad = make_header()
    del bad["onnx_sha256"], bad["gpu_name"]
    with pytest.raises(ModelError, match="lacks gpu_name, onnx_sha256"):
        write_engine_file(tmp_path / "a.engine", bad, b"plan")
    assert not (tmp_path / "a.engine").exists()


@pytest.mark.parametrize("key", REQUIRED_KEYS)
def test_every_header_key_is_required(tmp_path, key):
    header = make_header()
    del header[key]
    body = json.dumps(header).encode()
    path = tmp_path / "m.engine"
    path.write_bytes(MAGIC + struct.pack("<I", len(body)) + body + b"plan")
    with pytest.raises(ModelError, match=rf"m\.engine: engine header lacks {key} "):
        read_engine_file(path)


@pytest.mark.parametrize("over, pattern", [
    ({"precision": "int8"}, r"precision 'int8' is not one of"),
    ({"compute_capability": "sm89"}, r"compute_capability 'sm89' is not 'major.minor'"),
    ({"profiles": {"input": [[1, 3], [2, 3]]}}, r"profiles\['input'\] must be \[min, opt, max\]"),
    ({"profiles": {"input": [[4, 3], [2, 3], [8, 3]]}}, r"min <= opt <= max"),
    ({"onnx_metadata": {"family": 3}}, r"onnx_metadata must map strings to strings"),
    ({"gpu_name": ""}, r"gpu_name must be a non-empty string"),
])
def test_engine_header_fields_are_validated(tmp_path, over, pattern):
    path = tmp_path / "m.engine"
    body = json.dumps(make_header(**over)).encode()
    path.write_bytes(MAGIC + struct.pack("<I", len(body)) + body + b"plan")
    with pytest.raises(ModelError, match=pattern) as info:
        read_engine_file(path)
    assert str(info.value).startswith(f"{path}: bad engine header")


def test_bad_engine_files(tmp_path):
    good = tmp_path / "good.engine"
    write_engine_file(good, make_header(), b"PLAN" * 10)
    raw = good.read_bytes()
    (n,) = struct.unpack("<I", raw[8:12])
    old_header = dict(make_header())
    del old_header["onnx_metadata"]
    body = json.dumps(old_header).encode()
    cases = {
        "missing.engine": (None, "no such engine file"),
        "empty.engine": (b"", "empty file"),
        "bare_plan.engine": (b"ftrt\x00\x00\x00\x00" + b"\x00" * 64, r"not a pose3d-rt engine file \(no P3RTENG1 header"),
        "short_magic.engine": (b"P3RT", "not a pose3d-rt engine file"),
        "no_length.engine": (MAGIC + b"\x10", r"truncated engine file \(9 bytes"),
        "cut_header.engine": (raw[: 12 + n // 2], rf"truncated engine file \(header declares {n} bytes, only {n // 2}"),
        "no_plan.engine": (raw[: 12 + n], "serialized plan missing"),
        "bad_json.engine": (MAGIC + struct.pack("<I", 5) + b"{oops" + b"plan", "corrupt engine header"),
        "not_object.engine": (MAGIC + struct.pack("<I", 2) + b"[]" + b"plan", "header is a JSON list"),
        "old.engine": (MAGIC + struct.pack("<I", len(body)) + body + b"plan", r"lacks onnx_metadata .*build-engine"),
    }
    for name, (data, pattern) in cases.items():
        path = tmp_path / name
        if data is not None:
            path.write_bytes(data)
        with pytest.raises(ModelError, match=pattern) as info:
            read_engine_file(path)
        assert str(info.value).startswith(f"{path}: "), name
    with pytest.raises(ModelError, match="is a directory"):
        read_engine_file(tmp_path)


def test_engine_compatibility():
    header = make_header(tensorrt_version="10.3.0", gpu_name="RTX 4090", compute_capability="8.9")
    assert engine_compatibility_problem(header, "10.3.0", "RTX 4090", "8.9") is None
    check_engine_compatibility(header, "10.3.0", "RTX 4090", "8.9")
    with pytest.raises(ModelError) as info:
        check_engine_compatibility(header, "10.0.1", "Orin", "8.7", source="pose.engine")
    msg = str(info.value)
    assert msg.startswith("pose.engine: built for TensorRT 10.3 on 'RTX 4090' (sm 8.9); this machine has "
                          "TensorRT 10.0 on 'Orin' (sm 8.7)")
    assert "TensorRT version and GPU architecture differ" in msg and "pose3d-rt build-engine" in msg
    # same minor, different patch: the full versions are shown so the difference is visible
    assert "TensorRT 10.3.0 on" in engine_compatibility_problem(header, "10.3.1", "RTX 4090", "8.9")
    # another card of the same architecture is fine unless strict
    assert engine_compatibility_problem(header, "10.3.0", "RTX 4080", "8.9") is None
    assert "GPU model differ" in engine_compatibility_problem(header, "10.3.0", "RTX 4080", "8.9",
                                                              strict_gpu_name=True)
    assert "GPU architecture differ" in engine_compatibility_problem(header, "10.3.0", "RTX 4090", "8.6")


# --------------------------------------------------------------------------------------------------------------
# TrtEngine against a simulated tensorrt + pycuda (exercises the API calls, buffers, chunking and checks)

FAKE_PLAN = b"fake-plan:y=2x+1"


def _fake_backend(version="10.3.0", gpu="NVIDIA GeForce RTX 4090", cc=(8, 9)):
    """Minimal stand-ins for the parts of tensorrt 10 / pycuda.driver TrtEngine uses. The network:
    x (-1, 3) float32 [profile 1..4] -> y = 2x + 1 (-1, 3) float32, k = argmax(x, 1) (-1,) int32."""
    memory: Dict[int, bytearray] = {}
    stats = {"alloc": 0, "exec": 0, "freed": 0, "push": 0, "pop": 0}

    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.Logger = type("Logger", (), {"WARNING": 2, "INFO": 1, "ERROR": 3, "VERBOSE": 0,
                                     "__init__": lambda self, level=2: None})
    trt.TensorIOMode = types.SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")
    trt.nptype = lambda dt: dt  # the fake's "DataType" is the numpy type itself
    io = {"x": ("INPUT", np.float32, (-1, 3)), "y": ("OUTPUT", np.float32, (-1, 3)), "k": ("OUTPUT", np.int32, (-1,))}
    profile = ((1, 3), (2, 3), (4, 3))

    class Context:
        def __init__(self):
            self.shapes, self.addr = {}, {}

        def set_input_shape(self, name, shape):
            assert io[name][0] == "INPUT"
            ok = len(shape) == 2 and profile[0][0] <= shape[0] <= profile[2][0] and shape[1] == 3
            if ok:
                self.shapes[name] = tuple(shape)
            return ok

        def get_tensor_shape(self, name):
            n = self.shapes["x"][0]
            return {"x": (n, 3), "y": (n, 3), "k": (n,)}[name]

        def set_tensor_address(self, name, ptr):
            assert isinstance(ptr, int)
            self.addr[name] = ptr

        def execute_async_v3(self, handle):
            assert handle == 1234
            stats["exec"] += 1
            n = self.shapes["x"][0]
            x = np.frombuffer(bytes(memory[self.addr["x"]][: n * 12]), np.float32).reshape(n, 3)
            memory[self.addr["y"]][: n * 12] = (2 * x + 1).astype(np.float32).tobytes()
            memory[self.addr["k"]][: n * 4] = np.argmax(x, axis=1).astype(np.int32).tobytes()
            return True

    class CudaEngine:
        num_io_tensors = 3

        def get_tensor_name(self, i):
            return list(io)[i]

        def get_tensor_mode(self, name):
            return io[name][0]

        def get_tensor_dtype(self, name):
            return io[name][1]

        def get_tensor_shape(self, name):
            return io[name][2]

        def get_tensor_profile_shape(self, name, index):
            assert name == "x" and index == 0
            return list(profile)

        def create_execution_context(self):
            return Context()

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, plan):
            return CudaEngine() if bytes(plan) == FAKE_PLAN else None

    trt.Runtime = Runtime

    class Alloc:
        def __init__(self, nbytes):
            self.ptr = 0x1000 * (len(memory) + 1)
            memory[self.ptr] = bytearray(nbytes)
            stats["alloc"] += 1

        def __int__(self):
            return self.ptr

        def free(self):
            stats["freed"] += 1

    class Ctx:
        def push(self):
            stats["push"] += 1

        def pop(self):
            stats["pop"] += 1

        def detach(self):
            pass

    class Device:
        def __init__(self, index):
            self.index = index

        @staticmethod
        def count():
            return 1

        def name(self):
            return gpu

        def compute_capability(self):
            return cc

        def retain_primary_context(self):
            return Ctx()

    def htod(dst, src, stream):
        memory[int(dst)][: src.nbytes] = src.tobytes()

    def dtoh(dst, src, stream):
        dst[...] = np.frombuffer(bytes(memory[int(src)][: dst.nbytes]), dst.dtype)

    driver = types.ModuleType("pycuda.driver")
    driver.init = lambda: None
    driver.Device = Device
    driver.mem_alloc = Alloc
    driver.pagelocked_empty = lambda n, dtype: np.empty(n, dtype)
    driver.Stream = lambda: types.SimpleNamespace(handle=1234, synchronize=lambda: None)
    driver.memcpy_htod_async = htod
    driver.memcpy_dtoh_async = dtoh
    pycuda = types.ModuleType("pycuda")
    pycuda.driver = driver
    return {"tensorrt": trt, "pycuda": pycuda, "pycuda.driver": driver}, stats


@pytest.fixture
def fake_trt(monkeypatch):
    def install(**kw):
        mods, stats = _fake_backend(**kw)
        for name, mod in mods.items():
            monkeypatch.setitem(sys.modules, name, mod)
        return stats
    return install


def _engine_file(tmp_path, plan=FAKE_PLAN, **over) -> Path:
    header = make_header(profiles={"x": [[1, 3], [2, 3], [4, 3]]}, onnx_metadata={"family": "affine", "k": "v"},
                         precision="fp32", **over)
    return write_engine_file(tmp_path / "affine.engine", header, plan)


def test_trt_engine_on_simulated_backend(fake_trt, tmp_path):
    stats = fake_trt()
    eng = load_engine(_engine_file(tmp_path), device="cuda:0")
    assert isinstance(eng, TrtEngine)
    assert eng.inputs == (TensorSpec("x", (None, 3), np.dtype(np.float32)),)
    assert eng.output_names == ("y", "k") and eng.outputs[1].dtype == np.int32
    assert eng.metadata == {"family": "affine", "k": "v"} and eng.header["precision"] == "fp32"
    assert eng.profiles == {"x": ((1, 3), (2, 3), (4, 3))} and eng.max_batch == 4
    allocs = stats["alloc"]
    assert allocs == 3
    for n in (1, 3, 4, 2):
        x = RNG.standard_normal((n, 3)).astype(np.float32)
        out = eng(x)
        assert list(out) == ["y", "k"]
        np.testing.assert_array_equal(out["y"], 2 * x + 1)
        np.testing.assert_array_equal(out["k"], np.argmax(x, axis=1))
    assert stats["alloc"] == allocs  # buffers allocated once, reused
    # larger than the profile's max batch: run in chunks of 4 and concatenated
    execs = stats["exec"]
    x = RNG.standard_normal((10, 3))  # float64 -> cast
    out = eng.run({"x": x})
    assert stats["exec"] - execs == 3
    np.testing.assert_allclose(out["y"], 2 * x.astype(np.float32) + 1, rtol=1e-6)
    np.testing.assert_array_equal(out["k"], np.argmax(x.astype(np.float32), axis=1))
    with pytest.raises(EngineInputError, match=r"'x': expected shape \(\?, 3\) \(axis 1 must be 3\)"):
        eng(np.zeros((2, 5), np.float32))
    with pytest.raises(EngineInputError, match=r"'x' shape \(0, 3\): axis 0 must be in \[1, 4\]"):
        eng(np.zeros((0, 3), np.float32))
    assert stats["push"] == stats["pop"]
    eng.close()
    assert stats["freed"] == 3
    with pytest.raises(ModelError, match="closed"):
        eng(np.zeros((1, 3), np.float32))


def test_trt_engine_refuses_mismatched_or_corrupt_engines(fake_trt, tmp_path):
    fake_trt(version="10.0.1", gpu="Orin", cc=(8, 7))
    path = _engine_file(tmp_path, gpu_name="RTX 4090", tensorrt_version="10.3.0")
    with pytest.raises(ModelError, match=r"affine\.engine: built for TensorRT 10.3 on 'RTX 4090' \(sm 8.9\); "
                                         r"this machine has TensorRT 10.0 on 'Orin' \(sm 8.7\)"):
        load_engine(path, device="cuda")
    stats = fake_trt()
    bad = _engine_file(tmp_path, plan=b"corrupted plan bytes")
    with pytest.raises(ModelError, match="could not deserialize"):
        load_engine(bad, device="tensorrt")
    assert stats["push"] == stats["pop"] and stats["alloc"] == 0
    with pytest.raises(BackendUnavailableError, match=r"only 1 CUDA device"):
        load_engine(_engine_file(tmp_path), device="cuda:3")


def test_trt_engine_without_tensorrt(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError
    with pytest.raises(BackendUnavailableError, match=r'pose3d-rt\[trt\]'):
        load_engine(_engine_file(tmp_path), device="cuda")


def _has_gpu_trt() -> str:
    for mod in ("tensorrt", "pycuda"):
        if importlib.util.find_spec(mod) is None:
            return f"needs {mod} (pip install 'pose3d-rt[trt]') and an NVIDIA GPU"
    try:
        import pycuda.driver as cuda

        cuda.init()
        if cuda.Device.count() == 0:
            return "no CUDA device"
    except Exception as exc:  # noqa: BLE001
        return f"no usable CUDA driver ({exc})"
    return ""


@pytest.mark.gpu
@pytest.mark.skipif(bool(_has_gpu_trt()), reason=_has_gpu_trt() or "gpu")
def test_trt_engine_on_gpu_matches_onnxruntime(conv_onnx, conv_engine, tmp_path):
    import hashlib

    import pycuda.driver as cuda
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(conv_onnx.read_bytes()), [parser.get_error(i) for i in range(parser.num_errors)]
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("input", (1, 2, 5, 6), (2, 2, 5, 6), (4, 2, 5, 6))
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    cuda.init()
    dev = cuda.Device(0)
    header = make_header(tensorrt_version=trt.__version__, gpu_name=dev.name(),
                         compute_capability="{}.{}".format(*dev.compute_capability()), precision="fp32",
                         profiles={"input": [[1, 2, 5, 6], [2, 2, 5, 6], [4, 2, 5, 6]]},
                         onnx_sha256=hashlib.sha256(conv_onnx.read_bytes()).hexdigest(), onnx_metadata=CONV_META)
    path = write_engine_file(tmp_path / "conv.engine", header, plan)
    eng = load_engine(path, device="cuda:0")
    assert eng.metadata == CONV_META and eng.output_names == ("feat", "pooled")
    for n in (1, 4, 6):
        x = RNG.standard_normal((n, 2, 5, 6)).astype(np.float32)
        ref, got = conv_engine(x), eng(x)
        for k in ref:
            np.testing.assert_allclose(got[k], ref[k], rtol=1e-3, atol=1e-3)
    eng.close()


def test_engine_module_imports_without_gpu_packages():
    """Importing the TensorRT backend must not import tensorrt/pycuda (lazy imports)."""
    import subprocess

    code = ("import sys; import pose3d_rt.engines.tensorrt, pose3d_rt.engines.onnxruntime, pose3d_rt.engines; "
            "bad = [m for m in ('tensorrt', 'pycuda', 'onnxruntime') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
