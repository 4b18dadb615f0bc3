"""The pose3d-rt command line: bad inputs end in one line on stderr and exit code 2, with nothing half-written."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES
from pose3d_rt.cli import main

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402


def _pose_like_onnx(path: Path) -> Path:
    """A tiny graph with the signature of an RTMPose model (input N×3×256×192 -> simcc_x, simcc_y)."""
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 256, 192])
    ox = helper.make_tensor_value_info("simcc_x", TensorProto.FLOAT, ["batch", 17, 384])
    oy = helper.make_tensor_value_info("simcc_y", TensorProto.FLOAT, ["batch", 17, 512])
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["m"], keepdims=1, axes=[1, 2, 3]),
        helper.make_node("Expand", ["m", "sx"], ["simcc_x"]),
        helper.make_node("Expand", ["m", "sy"], ["simcc_y"]),
    ]
    inits = [helper.make_tensor("sx", TensorProto.INT64, [3], [1, 17, 384]),
             helper.make_tensor("sy", TensorProto.INT64, [3], [1, 17, 512])]
    g = helper.make_graph(nodes, "pose_like", [inp], [ox, oy], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(m, str(path))
    return path


@pytest.fixture()
def models(tmp_path):
    pose = _pose_like_onnx(tmp_path / "pose.onnx")
    return {"det": pose, "pose": pose}


def _run(args, capsys):
    code = main(args)
    err = capsys.readouterr().err
    return code, err


def _assert_one_line_error(code, err, needle):
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("pose3d-rt: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert needle in lines[0], lines[0]


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert "pose3d-rt" in capsys.readouterr().out
    for cmd in ("run", "demo", "models", "bench", "export", "build-engine"):
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
        assert "examples:" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["missing_file", "folder_without_images", "corrupt_video", "zero_frame_video",
                                  "unwritable_output_root", "output_equal_to_input", "wrong_role_model",
                                  "missing_model", "bad_device", "bad_threshold"])
def test_bad_inputs_exit_2_with_one_line(case, tmp_path, models, capsys):
    out = tmp_path / "out"
    inp = str(FIXTURES / "inputs" / "still_portrait_480x640.png")
    extra = []
    det = str(models["det"])
    if case == "missing_file":
        inp, needle = str(tmp_path / "nope.mp4"), "no such file"
    elif case == "folder_without_images":
        (tmp_path / "empty").mkdir()
        inp, needle = str(tmp_path / "empty"), "contains no images"
    elif case == "corrupt_video":
        p = tmp_path / "corrupt.mp4"
        p.write_bytes(os.urandom(4096))
        inp, needle = str(p), "corrupt.mp4"
    elif case == "zero_frame_video":
        p = tmp_path / "zero.avi"
        p.write_bytes(b"")
        inp, needle = str(p), "empty file"
    elif case == "unwritable_output_root":
        blocker = tmp_path / "file"
        blocker.write_text("x")
        out, needle = blocker / "sub", "--output-root"
    elif case == "output_equal_to_input":
        src = tmp_path / "clip.avi"
        src.write_bytes((FIXTURES / "inputs" / "synthetic_video.avi").read_bytes())
        inp, out, needle = str(src), tmp_path, "overwrite the input"
    elif case == "wrong_role_model":
        needle = "pose.onnx"
    elif case == "missing_model":
        det, needle = str(tmp_path / "det.onnx"), "det.onnx"
    elif case == "bad_device":
        extra, needle = ["--device", "gpu-please"], "--device"
    else:
        extra, needle = ["--bbox-thr", "-1"], None
    args = ["run", inp, "--det", det, "--pose2d", str(models["pose"]), "--lifter", "none", "--output-root", str(out),
            "--save-predictions", "--no-progress", *extra]
    if needle is None:
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code == 2
        return
    before = set(tmp_path.rglob("*"))
    code, err = _run(args, capsys)
    _assert_one_line_error(code, err, needle)
    created = {p for p in set(tmp_path.rglob("*")) - before if p.is_file()}
    assert not created, f"half-written files: {created}"


def test_export_without_a_checkpoint_is_a_clear_error(tmp_path, capsys):
    code, err = _run(["export", str(tmp_path / "missing.pth"), "-o", str(tmp_path / "x.onnx")], capsys)
    _assert_one_line_error(code, err, "missing.pth")
    assert not (tmp_path / "x.onnx").exists()


def test_console_script_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "pose3d_rt", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("pose3d-rt ")


def test_demo_warns_when_the_lifter_config_disagrees_with_the_checkpoint(caplog):
    """The config says 27 frames, the model's receptive field is 9: the model wins, with a warning."""
    import logging

    from pose3d_rt.cli.demo import config_check
    from pose3d_rt.mmconfig import ModelConfig
    from pose3d_rt.pipeline import Pose3DPipeline

    from benchmarks.fakes import LinearLifter, ScriptedDetector, TemplatePose, walking_boxes

    pipe = Pose3DPipeline(ScriptedDetector(walking_boxes(1, 320), 320), TemplatePose(), LinearLifter(9))
    assert pipe.lifter_spec.receptive_field == 9
    with caplog.at_level(logging.WARNING):
        config_check({"lifter": ModelConfig(role="lifter", source="lift.py", seq_len=27)})(pipe)
        config_check({"lifter": ModelConfig(role="lifter", source="ok.py", seq_len=9)})(pipe)
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 1 and "lift.py says 27 frames" in msgs[0] and "receptive field is 9" in msgs[0]
