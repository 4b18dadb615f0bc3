"""INT8 quantization: ``pose3d-rt quantize``, :mod:`pose3d_rt.calibration`, :mod:`pose3d_rt.fidelity`,
:mod:`pose3d_rt.export.quantize` and ``run --precision int8``.

Fast tests use tiny hand-made graphs (onnx only, no torch); the slow ones quantize exported fixture models
(RTMDet-nano, RTMPose-t) on the fixture video. The fixture checkpoints have random weights: a random network is
chaotic (a small perturbation grows layer by layer), so INT8 fidelity figures on them are far worse than on the
trained models; the tests check consistency, never accuracy or speed.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, REPO, requires_torch
from pose3d_rt.cli import main
from pose3d_rt.errors import Pose3DError
from pose3d_rt.fidelity import DetectorComparison, PoseComparison, QuantizeReport, match_boxes
from pose3d_rt.rtmdet import Detections

onnx = pytest.importorskip("onnx", reason="quantizing needs the onnx package")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

VIDEO = FIXTURES / "inputs" / "synthetic_video.avi"
RNG = np.random.default_rng(7)
QDQ = ("QuantizeLinear", "DequantizeLinear")


def _save(graph, path: Path, meta) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _conv_net(path: Path, meta=None) -> Path:
    """x (N, 3, 8, 8) -> Conv3x3 -> Relu -> Conv1x1 -> Relu -> Conv1x1 ("head") -> y (N, 2, 8, 8)."""
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2, 8, 8])
    ws = {"w1": (8, 3, 3, 3), "w2": (8, 8, 1, 1), "w3": (2, 8, 1, 1)}
    inits = [numpy_helper.from_array(RNG.standard_normal(s).astype(np.float32) * 0.3, n) for n, s in ws.items()]
    inits += [numpy_helper.from_array(RNG.standard_normal(s[0]).astype(np.float32) * 0.1, f"b{n[1]}")
              for n, s in ws.items()]
    nodes = [helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1] * 4, name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2"),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("Conv", ["r2", "w3", "b3"], ["y"], name="head")]
    return _save(helper.make_graph(nodes, "convnet", [x], [y], inits), path,
                 meta or {"family": "testnet", "mean": "1,2,3", "input_size": "8,8"})


def _lifter_like(path: Path) -> Path:
    x = helper.make_tensor_value_info("keypoints", TensorProto.FLOAT, ["batch", 27, 17, 2])
    y = helper.make_tensor_value_info("keypoints_3d", TensorProto.FLOAT, ["batch", 27, 17, 2])
    g = helper.make_graph([helper.make_node("Identity", ["keypoints"], ["keypoints_3d"])], "lift", [x], [y])
    return _save(g, path, {"family": "tcn", "receptive_field": "27"})


def _feeds(n: int = 6):
    for _ in range(n):
        yield {"input": RNG.standard_normal((2, 3, 8, 8)).astype(np.float32)}


def qdq_violations(model) -> list:
    """QDQ nodes that are not around a Conv/MatMul: each QuantizeLinear must read a Conv/MatMul output or feed
    (through its DequantizeLinear) a Conv/MatMul input; each weight DequantizeLinear must feed Conv/MatMul only.
    (ONNX Runtime puts one QDQ pair on a tensor: its other readers, e.g. a residual Add, read it dequantized.)"""
    nodes = list(model.graph.node)
    producer = {o: n for n in nodes for o in n.output}
    consumers = {}
    for n in nodes:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    bad = []
    for q in (n for n in nodes if n.op_type == "QuantizeLinear"):
        src = producer.get(q.input[0])
        after = [c for dq in consumers.get(q.output[0], []) for c in consumers.get(dq.output[0], [])]
        if not ((src is not None and src.op_type in ("Conv", "MatMul"))
                or any(c.op_type in ("Conv", "MatMul") for c in after)):
            bad.append((q.name, src.op_type if src else "input", [c.op_type for c in after]))
    weights = {i.name for i in model.graph.initializer}
    for dq in (n for n in nodes if n.op_type == "DequantizeLinear" and n.input[0] in weights):
        users = [c.op_type for c in consumers.get(dq.output[0], [])]
        if not all(u in ("Conv", "MatMul") for u in users):
            bad.append((dq.name, "weight", users))
    return bad


# -- fidelity numbers ----------------------------------------------------------------------------------------
def test_match_boxes_is_one_to_one_and_thresholded():
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]], np.float32)
    b = np.array([[21, 21, 31, 31], [0, 0, 10, 11], [100, 100, 110, 110]], np.float32)
    ia, ib, iou = match_boxes(a, b)
    assert sorted(zip(ia.tolist(), ib.tolist())) == [(0, 1), (1, 0)]
    assert np.all((iou >= 0.5) & (iou <= 1))
    assert match_boxes(a, b[:0])[0].size == 0


def test_detector_comparison_counts():
    comp = DetectorComparison()
    fp32 = Detections(np.array([[0, 0, 10, 10], [50, 50, 60, 60]], np.float32), np.array([0.9, 0.5], np.float32),
                      np.zeros(2, np.int64))
    int8 = Detections(np.array([[0, 0, 10, 10], [200, 200, 210, 210]], np.float32), np.array([0.8, 0.4], np.float32),
                      np.zeros(2, np.int64))
    comp.add(fp32, int8)
    comp.add(fp32, fp32)
    r = comp.result()
    assert (r.frames, r.boxes_fp32, r.boxes_int8, r.matched, r.missed, r.extra) == (2, 4, 4, 3, 1, 1)
    assert r.iou_min == pytest.approx(1.0) and r.iou_mean == pytest.approx(1.0)
    assert r.score_diff_max == pytest.approx(0.1, abs=1e-6)
    assert r.score_diff_mean == pytest.approx(0.1 / 3, abs=1e-6)
    assert DetectorComparison().result().iou_mean is None  # nothing matched: no statistic


def test_pose_comparison_statistics():
    comp = PoseComparison()
    a = np.zeros((2, 17, 2), np.float32)
    b = a.copy()
    b[0, :, 0] = 3.0  # one person 3 px off, the other exact
    comp.add(a, b)
    comp.add(np.zeros((0, 17, 2)), np.zeros((0, 17, 2)))
    r = comp.result()
    assert (r.frames, r.persons, r.keypoints) == (2, 2, 34)
    assert r.px_error_max == pytest.approx(3.0) and r.px_error_mean == pytest.approx(1.5)
    assert r.within_2px == pytest.approx(0.5)


def test_report_table_and_atomic_json(tmp_path):
    rep = QuantizeReport("m.onnx", "m.int8.onnx", "detector", "uint8", "v.mp4", 4, 4, 2, {"Conv": 3},
                         detector=DetectorComparison().result(), fp32_ms=10.0, int8_ms=5.0)
    text = rep.table()
    assert "box IoU" in text and "2.00x" in text
    path = rep.save(tmp_path / "r.json")
    assert json.loads(path.read_text())["quantized_nodes"] == {"Conv": 3}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


# -- the torch-free quantizer on a tiny graph ----------------------------------------------------------------
def test_quantize_onnx_qdq_around_conv_only_metadata_kept(tmp_path):
    from pose3d_rt.engines import load_engine
    from pose3d_rt.export.quantize import output_heads, quantize_onnx, quantized_node_types

    src = _conv_net(tmp_path / "net.onnx")
    res = quantize_onnx(src, tmp_path / "net.int8.onnx", _feeds(), metadata={"quant_calibration_input": "x"})
    model = onnx.load(str(res.path))
    assert qdq_violations(model) == []
    assert quantized_node_types(model) == {"Conv": 2} == res.quantized  # the head stays FP32
    assert output_heads(onnx.load(str(src))) == ["head"]
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["family"] == "testnet" and meta["mean"] == "1,2,3" and meta["input_size"] == "8,8"
    assert meta["precision"] == "int8" and meta["quant_op_types"] == "Conv,MatMul"
    assert meta["quant_calibration_samples"] == "6" and meta["quant_calibration_input"] == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.int8.onnx", "net.onnx"]  # no temporary left
    x = RNG.standard_normal((1, 3, 8, 8)).astype(np.float32)
    ref = load_engine(src).run({"input": x})["y"]
    got = load_engine(res.path).run({"input": x})["y"]
    assert np.abs(got - ref).max() < 0.1 * np.abs(ref).max()


def _quantized_tensors(model) -> dict:
    """``{op type of the producer: QuantizeLinear count}`` (``input`` for graph inputs)."""
    producer = {o: n.op_type for n in model.graph.node for o in n.output}
    return dict(Counter(producer.get(n.input[0], "input") for n in model.graph.node if n.op_type == "QuantizeLinear"))


def test_qdq_layouts_onnxruntime_quantizes_conv_outputs_openvino_only_inputs(tmp_path):
    from pose3d_rt.engines import load_engine
    from pose3d_rt.export.quantize import quantize_onnx, quantized_node_types

    src = _conv_net(tmp_path / "net.onnx")
    ort_file = quantize_onnx(src, tmp_path / "net.int8.onnx", _feeds()).path
    ov_file = quantize_onnx(src, tmp_path / "net.int8-openvino.onnx", _feeds(), layout="openvino").path
    ort_model, ov_model = onnx.load(str(ort_file)), onnx.load(str(ov_file))
    # onnxruntime: Q on the input and on both INT8 Convs' outputs (QLinearConv fusion), and on the Relu feeding
    # conv2; openvino: Q only where a quantized Conv reads (the network input, relu1's output)
    assert _quantized_tensors(ort_model) == {"input": 1, "Conv": 2, "Relu": 1}
    assert _quantized_tensors(ov_model) == {"input": 1, "Relu": 1}
    for model in (ort_model, ov_model):
        assert qdq_violations(model) == [] and quantized_node_types(model) == {"Conv": 2}
    assert _meta(ort_file)["quant_layout"] == "onnxruntime" and _meta(ov_file)["quant_layout"] == "openvino"
    x = RNG.standard_normal((1, 3, 8, 8)).astype(np.float32)
    ref = load_engine(src).run({"input": x})["y"]
    for path in (ort_file, ov_file):
        got = load_engine(path).run({"input": x})["y"]
        assert np.abs(got - ref).max() < 0.1 * np.abs(ref).max(), path.name
    with pytest.raises(Pose3DError, match="layout must be one of onnxruntime, openvino"):
        quantize_onnx(src, tmp_path / "a.onnx", _feeds(), layout="tensorrt")


def test_quantize_onnx_refusals(tmp_path):
    from pose3d_rt.errors import ModelError, Pose3DError
    from pose3d_rt.export.quantize import quantize_onnx

    src = _conv_net(tmp_path / "net.onnx")
    with pytest.raises(Pose3DError, match="no calibration data"):
        quantize_onnx(src, tmp_path / "a.onnx", iter(()))
    with pytest.raises(Pose3DError, match="overwrite"):
        quantize_onnx(src, src, _feeds())
    with pytest.raises(Pose3DError, match="activations"):
        quantize_onnx(src, tmp_path / "a.onnx", _feeds(), activations="int4")
    q = quantize_onnx(src, tmp_path / "q.onnx", _feeds(2)).path
    with pytest.raises(ModelError, match="already quantized"):
        quantize_onnx(q, tmp_path / "qq.onnx", _feeds(2))
    assert not (tmp_path / "a.onnx").exists()


def test_export_quantize_imports_without_torch():
    from test_import_no_torch import BLOCK_TORCH

    code = BLOCK_TORCH + textwrap.dedent("""
        import sys
        import pose3d_rt.export.quantize
        import pose3d_rt.calibration
        assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch imported"
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=str(REPO), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]


def test_int8_cache_path(tmp_path, monkeypatch):
    from pose3d_rt.hub import cache

    monkeypatch.setenv("POSE3D_RT_HOME", str(tmp_path / "home"))
    exported = tmp_path / "home" / "onnx" / "rtmdet_m.0123456789abcdef.dynamic_hw-True.onnx"
    exported.parent.mkdir(parents=True)
    exported.write_bytes(b"x")
    assert cache.int8_path(exported) == exported.with_name("rtmdet_m.0123456789abcdef.dynamic_hw-True.int8.onnx")
    user = tmp_path / "mine.onnx"
    user.write_bytes(b"x")
    assert cache.int8_path(user) == tmp_path / "home" / "onnx" / f"mine.{cache.file_sha256(user)[:16]}.int8.onnx"
    assert cache.int8_path(exported, layout="openvino") == exported.with_name(
        "rtmdet_m.0123456789abcdef.dynamic_hw-True.int8-openvino.onnx")


def test_parser_choices_are_the_library_names():
    from pose3d_rt import calibration
    from pose3d_rt.cli.parser import build_parser

    parser = build_parser()
    args = parser.parse_args(["quantize", "m.onnx"])
    assert (args.frames, args.holdout, args.activations) == (
        calibration.DEFAULT_CALIB_FRAMES, calibration.DEFAULT_HOLDOUT_FRAMES, calibration.DEFAULT_ACTIVATIONS)
    assert parser.parse_args(["run", "x.mp4"]).precision == "fp32"
    for name, choices in (("--precision", calibration.PRECISIONS), ("--activations", calibration.ACTIVATIONS)):
        sub = "run" if name == "--precision" else "quantize"
        for c in choices:
            assert getattr(parser.parse_args([sub, "m.onnx", name, c]), name[2:]) == c


# -- one-line argument errors ---------------------------------------------------------------------------------
def _one_line_error(capsys, argv, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pose3d-rt: error: "), err
    for n in needles:
        assert n in err[0], err[0]
    return err[0]


def test_cli_argument_errors(tmp_path, capsys):
    net = _conv_net(tmp_path / "net.onnx")
    video = str(VIDEO)
    _one_line_error(capsys, ["quantize", str(net)], "--calib")
    _one_line_error(capsys, ["quantize", str(net), "--calib", str(tmp_path / "missing.mp4")], "missing.mp4")
    _one_line_error(capsys, ["quantize", str(net), "--calib", video, "--frames", "0"], "--frames")
    _one_line_error(capsys, ["quantize", str(net), "--calib", video, "--holdout", "-1"], "--holdout")
    pth = tmp_path / "model.pth"
    pth.write_bytes(b"not a model")
    _one_line_error(capsys, ["quantize", str(pth), "--calib", video], "model.pth", "not an .onnx")
    _one_line_error(capsys, ["quantize", str(tmp_path / "nope.onnx"), "--calib", video], "nope.onnx")
    lifter = _lifter_like(tmp_path / "lift.onnx")
    _one_line_error(capsys, ["quantize", str(lifter), "--calib", video], "lifter", "not quantized")
    _one_line_error(capsys, ["quantize", str(net), "--calib", video], "neither an RTMDet detector nor an RTMPose")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lift.onnx", "model.pth", "net.onnx"]


def test_pipeline_precision_errors(tmp_path):
    from pose3d_rt.errors import InputError
    from pose3d_rt.pipeline import Pose3DPipeline

    with pytest.raises(InputError, match="precision"):
        Pose3DPipeline("d.onnx", "p.onnx", precision="fp16")
    with pytest.raises(InputError, match="bf16 runs on OpenVINO only: use --device openvino"):
        Pose3DPipeline("d.onnx", "p.onnx", precision="bf16", device="cpu")


def test_bf16_is_an_openvino_precision(tmp_path, capsys):
    from pose3d_rt.calibration import precision_engine_options

    assert precision_engine_options("bf16", "openvino:CPU") == {"precision": "bf16"}
    assert precision_engine_options("fp32", "cpu") == precision_engine_options("int8", "openvino") == {}
    # the command line refuses it on ONNX Runtime before loading anything
    _one_line_error(capsys, ["run", str(VIDEO), "--precision", "bf16", "--output-root", str(tmp_path / "o")],
                    "--precision: bf16 runs on OpenVINO only", "'cpu'")
    assert not (tmp_path / "o").exists()


@requires_torch
@pytest.mark.slow
def test_pipeline_bf16_on_openvino(exported, checkpoints, short_clip):
    pytest.importorskip("openvino")
    from pose3d_rt.pipeline import Pose3DPipeline

    lifter = checkpoints["videopose3d_27f_supv"]
    pipe = Pose3DPipeline(str(exported["det"]), str(exported["pose"]), str(lifter), precision="bf16",
                          device="openvino", threads=2)
    assert (pipe.detector.engine.precision, pipe.pose2d.engine.precision) == ("bf16", "bf16")
    assert pipe.lifter_engine.precision == "f32"  # the lifter stays FP32
    results = list(pipe.stream(str(short_clip)))
    assert len(results) == 8 and all(np.isfinite(r.keypoints_2d).all() for r in results)


# -- fixture models, end to end ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def exported(checkpoints, tmp_path_factory):
    from pose3d_rt.export import export_onnx

    out = tmp_path_factory.mktemp("quant")
    return {"det": export_onnx(checkpoints["rtmdet_nano_person"], out / "rtmdet_nano.onnx"),
            "pose": export_onnx(checkpoints["rtmpose_t_body8_256x192"], out / "rtmpose_t.onnx"), "dir": out}


@pytest.fixture(scope="module")
def quantized(exported):
    """Both fixture models quantized through the command line (8 calibration frames, 8 held out)."""
    out = {}
    for key in ("det", "pose"):
        dst = exported["dir"] / f"{exported[key].stem}.int8.onnx"
        argv = ["quantize", str(exported[key]), "--calib", str(VIDEO), "--frames", "8", "--holdout", "8", "-o",
                str(dst), "--threads", "2"] + (["--det", str(exported["det"])] if key == "pose" else [])
        assert main(argv) == 0
        out[key] = dst
    return out


def _meta(path: Path) -> dict:
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


@requires_torch
@pytest.mark.slow
def test_int8_files_qdq_and_metadata(exported, quantized):
    from pose3d_rt.export.quantize import quantized_node_types

    for key in ("det", "pose"):
        model = onnx.load(str(quantized[key]))
        assert qdq_violations(model) == [], key
        kinds = quantized_node_types(model)
        assert set(kinds) <= {"Conv", "MatMul"} and kinds.get("Conv", 0) > 10, kinds
        fp32, int8 = _meta(exported[key]), _meta(quantized[key])
        assert {k: int8[k] for k in fp32} == fp32  # every FP32 key kept unchanged
        assert int8["precision"] == "int8" and int8["quant_activations"] == "uint8"
    assert "MatMul" in quantized_node_types(onnx.load(str(quantized["pose"])))  # RTMPose's GAU


@requires_torch
@pytest.mark.slow
def test_reports_are_consistent(quantized):
    from pose3d_rt.calibration import report_path

    for key in ("det", "pose"):
        rep = json.loads(report_path(quantized[key]).read_text())
        assert rep["calibration_frames"] == 8 and rep["holdout_frames"] == 8 and rep["activations"] == "uint8"
        assert rep["calibration_samples"] >= 1 and rep["fp32_ms"] > 0 and rep["int8_ms"] > 0
    det = json.loads(report_path(quantized["det"]).read_text())["detector"]
    assert det["frames"] == 8 and det["matched"] + det["missed"] == det["boxes_fp32"]
    assert det["matched"] + det["extra"] == det["boxes_int8"]
    if det["matched"]:
        assert 0.5 <= det["iou_min"] <= det["iou_mean"] <= 1.0
        assert 0.0 <= det["score_diff_mean"] <= det["score_diff_max"] <= 1.0
    pose = json.loads(report_path(quantized["pose"]).read_text())["pose2d"]
    assert pose["frames"] == 8 and pose["keypoints"] == 17 * pose["persons"] > 0
    assert 0.0 <= pose["px_error_mean"] <= pose["px_error_p95"] <= pose["px_error_max"]
    assert 0.0 <= pose["within_2px"] <= 1.0


@requires_torch
@pytest.mark.slow
@pytest.mark.parametrize("device", ["cpu", "openvino"])
def test_int8_files_load_and_run_like_fp32(quantized, device):
    import cv2
    from pose3d_rt.engines import load_engine
    from pose3d_rt.rtmdet import Detector
    from pose3d_rt.rtmpose import PoseEstimator

    if device == "openvino":
        pytest.importorskip("openvino")
    cap = cv2.VideoCapture(str(VIDEO))
    frame = cap.read()[1]
    cap.release()
    det = Detector(load_engine(quantized["det"], device=device, threads=2))
    dets = det(frame)
    assert dets.boxes.ndim == 2 and np.isfinite(dets.boxes).all()
    pose = PoseEstimator(load_engine(quantized["pose"], device=device, threads=2))
    poses = pose(frame, np.array([[100, 50, 220, 330]], np.float32))
    assert poses.keypoints.shape == (1, 17, 2) and np.isfinite(poses.keypoints).all()


@pytest.fixture()
def short_clip(tmp_path) -> Path:
    """The first 8 frames of the fixture video as a folder of PNG images."""
    import cv2
    from conftest import read_frames

    folder = tmp_path / "clip"
    folder.mkdir()
    for i, frame in enumerate(read_frames(VIDEO)[:8]):
        cv2.imwrite(str(folder / f"{i:03d}.png"), frame)
    return folder


@requires_torch
@pytest.mark.slow
def test_pipeline_and_run_with_int8(exported, quantized, short_clip, tmp_path, monkeypatch):
    from pose3d_rt.calibration import int8_models
    from pose3d_rt.hub import cache
    from pose3d_rt.pipeline import Pose3DPipeline

    # INT8 files given directly
    pipe = Pose3DPipeline(str(quantized["det"]), str(quantized["pose"]), None, threads=2)
    results = list(pipe.stream(str(short_clip)))
    assert len(results) == 8 and all(np.isfinite(r.keypoints_2d).all() for r in results)
    # precision="int8": made once in the cache (keyed by the FP32 file), reused afterwards
    monkeypatch.setenv("POSE3D_RT_HOME", str(tmp_path / "home"))
    det8, pose8 = int8_models(str(exported["det"]), str(exported["pose"]), str(short_clip), frames=4, threads=2)
    assert det8 == cache.int8_path(exported["det"]) and pose8 == cache.int8_path(exported["pose"])
    assert _meta(det8)["quant_calibration_samples"] == "4"
    stamps = (det8.stat().st_mtime_ns, pose8.stat().st_mtime_ns)
    assert int8_models(str(exported["det"]), str(exported["pose"]), None) == (det8, pose8)
    pipe = Pose3DPipeline(str(exported["det"]), str(exported["pose"]), None, precision="int8", threads=2)
    assert pipe.detector.engine.metadata["precision"] == "int8"
    assert pipe.pose2d.engine.metadata["precision"] == "int8"
    # an INT8 file passed with precision="int8" is used as is
    assert int8_models(str(quantized["det"]), str(quantized["pose"]), None) == (quantized["det"], quantized["pose"])
    # the command line: run --precision int8 with the cached files
    out = tmp_path / "out"
    argv = ["run", str(short_clip), "--det", str(exported["det"]), "--pose2d", str(exported["pose"]), "--lifter",
            "none", "--precision", "int8", "--output-root", str(out), "--save-predictions", "--no-progress",
            "--threads", "2"]
    assert main(argv) == 0
    assert len(json.loads((out / "results_clip.json").read_text())["instance_info"]) == 8
    assert (det8.stat().st_mtime_ns, pose8.stat().st_mtime_ns) == stamps


@requires_torch
@pytest.mark.slow
def test_int8_on_openvino_makes_openvino_layout_files(exported, short_clip, tmp_path, monkeypatch):
    pytest.importorskip("openvino")
    from pose3d_rt.calibration import int8_models
    from pose3d_rt.hub import cache
    from pose3d_rt.pipeline import Pose3DPipeline

    monkeypatch.setenv("POSE3D_RT_HOME", str(tmp_path / "home"))
    det8, pose8 = int8_models(str(exported["det"]), str(exported["pose"]), str(short_clip), frames=4, threads=2,
                              device="openvino")
    assert det8 == cache.int8_path(exported["det"], layout="openvino") != cache.int8_path(exported["det"])
    assert pose8 == cache.int8_path(exported["pose"], layout="openvino")
    assert not cache.int8_path(exported["pose"]).exists()  # the ONNX Runtime layout is made only for onnxruntime
    for path in (det8, pose8):
        model = onnx.load(str(path))
        assert _meta(path)["quant_layout"] == "openvino" and qdq_violations(model) == []
        assert "Conv" not in _quantized_tensors(model) and "MatMul" not in _quantized_tensors(model)
    pipe = Pose3DPipeline(str(exported["det"]), str(exported["pose"]), None, precision="int8", device="openvino",
                          threads=2)
    assert Path(pipe.detector.engine.path) == det8 and Path(pipe.pose2d.engine.path) == pose8
    assert len(list(pipe.stream(str(short_clip)))) == 8
    # fidelity on the same crops (FP32 boxes of the clip): the OpenVINO layout rounds fewer tensors than the
    # ONNX Runtime one (no Q on Conv outputs), so its keypoints are at least as close to FP32's
    from conftest import read_frames
    from pose3d_rt.engines import load_engine
    from pose3d_rt.rtmpose import PoseEstimator

    frames = read_frames(VIDEO)[:4]
    fp32_det = Pose3DPipeline(str(exported["det"]), str(exported["pose"]), None, device="openvino", threads=2)
    boxes = [fp32_det.detector(f).boxes[:4] for f in frames]
    assert sum(len(b) for b in boxes) > 0

    def keypoints(path):
        est = PoseEstimator(load_engine(path, device="openvino", threads=2))
        return np.concatenate([est(f, b).keypoints for f, b in zip(frames, boxes) if len(b)])

    ref = keypoints(exported["pose"])
    err_ov = np.linalg.norm(keypoints(pose8) - ref, axis=-1)
    ort8 = cache.int8_path(exported["pose"])
    int8_models(str(exported["det"]), str(exported["pose"]), str(short_clip), frames=4, threads=2)  # ORT layout
    err_ort = np.linalg.norm(keypoints(ort8) - ref, axis=-1)
    # measured (random-weight rtmpose-t, so large): mean 75 px against 90 px, median 44 against 60 px
    assert err_ov.mean() <= 1.1 * err_ort.mean() and np.median(err_ov) <= 1.1 * np.median(err_ort)


@requires_torch
@pytest.mark.slow
def test_run_precision_int8_makes_the_files_beside_the_cached_exports(checkpoints, exported, short_clip, tmp_path,
                                                                      monkeypatch):
    from pose3d_rt.engines import load_engine
    from pose3d_rt.hub import cache
    from pose3d_rt.rtmdet import Detector

    home = tmp_path / "home"
    monkeypatch.setenv("POSE3D_RT_HOME", str(home))
    out = tmp_path / "out"
    argv = ["run", str(short_clip), "--det", str(checkpoints["rtmdet_nano_person"]), "--pose2d",
            str(exported["pose"]), "--lifter", "none", "--precision", "int8", "--output-root", str(out),
            "--save-predictions", "--no-progress", "--threads", "2"]
    assert main(argv) == 0
    assert (out / "results_clip.json").is_file()
    # the detector .pth was exported for default mode (any H x W), its INT8 version sits beside the export
    (det_fp32,) = [p for p in (home / "onnx").glob("rtmdet_nano_person.*.onnx") if ".int8." not in p.name]
    det8 = cache.int8_path(det_fp32)
    assert det8.parent == det_fp32.parent and det8.name == det_fp32.name[:-5] + ".int8.onnx"
    meta = _meta(det8)
    assert meta["precision"] == "int8" and meta["dynamic_hw"] == "true" and meta["quant_calibration_input"] == "clip"
    assert Detector(load_engine(det8)).letterbox == "rect"
    pose8 = cache.int8_path(exported["pose"])
    assert pose8.parent == home / "onnx" and _meta(pose8)["precision"] == "int8"


# -- the lifter: dynamic INT8 (no calibration) ------------------------------------------------------------------
LIFTER_INT8_RTOL = 0.06  # max |INT8 - FP32| / max |FP32| (measured 1.7e-2 here; 5e-2 to 6.2e-2 on other windows)


@requires_torch
def test_int8_lifter_is_dynamic_cached_and_close_to_fp32(checkpoints, tmp_path, monkeypatch):
    """`run --precision int8` / `Pose3DPipeline(precision="int8")` also quantize a VideoPose3D lifter: its stream
    export (time-major GEMMs) in dynamic INT8 beside the cached FP32 file, made once, equal to FP32 up to INT8
    rounding on real 2D sequences (the mmpose fixture's normalised windows)."""
    from pose3d_rt.calibration import int8_lifter
    from pose3d_rt.engines import load_engine
    from pose3d_rt.hub import cache, lifter_export_options
    from pose3d_rt.lifters.tcn_stream import StreamingTCNEngine

    monkeypatch.setenv("POSE3D_RT_HOME", str(tmp_path))
    opts = lifter_export_options(mode="default")
    path = int8_lifter(checkpoints["videopose3d_243f_supv_cpn_ft"], opts, progress=False)
    (fp32,) = [p for p in (tmp_path / "onnx").glob("videopose3d_243f*.onnx") if ".int8." not in p.name]
    assert path == cache.int8_path(fp32) and "form-stream" in path.name
    meta = _meta(path)
    assert (meta["precision"], meta["quant_format"], meta["form"], meta["family"]) == ("int8", "dynamic", "stream",
                                                                                       "tcn")
    import onnx

    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops
    stamp = path.stat().st_mtime_ns
    assert int8_lifter(checkpoints["videopose3d_243f_supv_cpn_ft"], opts, progress=False) == path
    assert path.stat().st_mtime_ns == stamp  # reused, not redone
    assert int8_lifter(path, None, progress=False) == path  # an INT8 file is taken as it is
    assert int8_lifter(fp32, None, device="openvino", progress=False) == fp32  # OpenVINO: FP32 is faster

    ref = np.load(FIXTURES / "lift" / "videopose3d_243f_supv_cpn_ft" / "gtvideo_f050.npz")["norm__model_input"]
    seq = ref.reshape(len(ref), 17, 2, -1).transpose(0, 3, 1, 2)  # (N, 243, 17, 2)
    y32 = StreamingTCNEngine(load_engine(fp32, threads=2)).lift_offline(seq)
    y8 = StreamingTCNEngine(load_engine(path, threads=2)).lift_offline(seq)
    rel = np.abs(y8 - y32).max() / np.abs(y32).max()
    assert 0 < rel <= LIFTER_INT8_RTOL
