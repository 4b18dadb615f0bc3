"""`pose3d-rt run` and `pose3d-rt demo` end to end on the fixture checkpoints (.pth exported on first use):
the outputs exist and agree with each other, and the demo command applies what its config files say."""
from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest
from conftest import FIXTURES, frames_folder, read_frames, requires_torch
from pose3d_rt.cli import main

pytestmark = [requires_torch, pytest.mark.slow]

FRAMES = 10


@pytest.fixture(scope="module")
def setup(checkpoints, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_e2e")
    frames = frames_folder(root / "frames", FRAMES)  # a folder of images is processed as a video, in name order
    pose_cfg = root / "pose_cfg.py"  # hand-written: only the field the pipeline takes from it
    pose_cfg.write_text("model = dict(type='TopdownPoseEstimator', test_cfg=dict(flip_test=False))\n")
    models = (checkpoints["rtmdet_nano_person"], checkpoints["rtmpose_t_body8_256x192"],
              checkpoints["videopose3d_27f_supv"])
    return root, frames, pose_cfg, models


def _json(path):
    return json.loads(path.read_text())["instance_info"]


def test_demo_applies_configs_and_equals_run_with_the_same_settings(setup, monkeypatch, caplog):
    root, frames, pose_cfg, (det, pose, lift) = setup
    monkeypatch.setenv("POSE3D_RT_HOME", str(root / "home"))
    out_demo, out_run = root / "demo", root / "run"
    with caplog.at_level(logging.WARNING):
        code = main(["demo", str(root / "missing_det_cfg.py"), str(det), str(pose_cfg), str(pose),
                     str(root / "missing_lift_cfg.py"), str(lift), "--input", str(frames),
                     "--output-root", str(out_demo), "--save-predictions", "--mode", "mmpose", "--no-progress"])
    assert code == 0
    missing = [r.getMessage() for r in caplog.records if "not found locally" in r.getMessage()]
    assert len(missing) == 2 and "missing_det_cfg.py" in missing[0] and "missing_lift_cfg.py" in missing[1]
    code = main(["run", str(frames), "--det", str(det), "--pose2d", str(pose), "--lifter", str(lift),
                 "--output-root", str(out_run), "--save-predictions", "--mode", "mmpose", "--no-flip-test",
                 "--no-progress"])
    assert code == 0
    a, b = _json(out_demo / "results_frames.json"), _json(out_run / "results_frames.json")
    assert [r["frame_id"] for r in a] == list(range(1, FRAMES + 1))
    assert a == b  # the pose config's flip_test=False reached the pipeline
    code = main(["run", str(frames), "--det", str(det), "--pose2d", str(pose), "--lifter", str(lift),
                 "--output-root", str(root / "flip"), "--save-predictions", "--mode", "mmpose", "--no-progress"])
    assert code == 0
    c = _json(root / "flip" / "results_frames.json")
    assert len(c) == len(a) and c != a  # flip test on (mmpose mode's default) gives other numbers


def test_run_default_mode_writes_video_json_and_npz(setup, monkeypatch):
    root, frames, _, (det, pose, lift) = setup
    monkeypatch.setenv("POSE3D_RT_HOME", str(root / "home"))
    out = root / "default"
    code = main(["run", str(frames), "--det", str(det), "--pose2d", str(pose), "--lifter", str(lift),
                 "--output-root", str(out), "--save-predictions", "--save-npz", "--no-progress"])
    assert code == 0
    info = _json(out / "results_frames.json")
    assert [r["frame_id"] for r in info] == list(range(FRAMES))
    npz = np.load(out / "results_frames.npz")
    assert len(npz["track_id"]) == sum(len(r["instances"]) for r in info)
    for r in info:
        for inst in r["instances"]:
            assert inst["track_id"] >= 0 and len(inst["bbox"]) == 4 and len(inst["keypoints_2d"]) == 17
    cap = cv2.VideoCapture(str(out / "frames.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == FRAMES


def test_export_causal_lifter_and_refuse_causal_detector(setup, capsys):
    from pose3d_rt.engines import load_engine
    from pose3d_rt.lifters import EngineLifter

    root, _, _, (det, _, lift) = setup
    out = root / "causal27.onnx"
    assert main(["export", str(lift), "-o", str(out), "--causal"]) == 0
    engine = load_engine(str(out))
    assert engine.metadata["causal"] == "true"
    spec = EngineLifter(engine).spec
    assert spec.alignment == "causal" and spec.receptive_field == 27  # target = last frame: no right context
    capsys.readouterr()
    assert main(["export", str(det), "-o", str(root / "x.onnx"), "--causal"]) == 2
    err = capsys.readouterr().err
    assert "pose3d-rt: error:" in err and "lifters only" in err and not (root / "x.onnx").exists()


def test_sigterm_mid_video_leaves_valid_json_and_playable_video(setup, tmp_path):
    """`kill` (SIGTERM) ends a run like Ctrl-C: the JSON is valid and the video plays, with the frames done."""
    import os
    import signal
    import subprocess
    import sys
    import time

    root, _, _, (det, pose, lift) = setup
    src = tmp_path / "long.mp4"  # the fixture video three times: long enough to be stopped half-way
    frames = read_frames(FIXTURES / "inputs" / "synthetic_video.avi")
    vw = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (frames[0].shape[1], frames[0].shape[0]))
    for f in frames * 3:
        vw.write(f)
    vw.release()
    out = tmp_path / "out"
    env = dict(os.environ, POSE3D_RT_HOME=str(root / "home"))
    proc = subprocess.Popen([sys.executable, "-m", "pose3d_rt", "run", str(src), "--det", str(det), "--pose2d",
                             str(pose), "--lifter", str(lift), "--output-root", str(out), "--save-predictions",
                             "--no-progress", "--online"], env=env, stderr=subprocess.PIPE, text=True)
    json_path = out / "results_long.json"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if json_path.exists() and len(_json(json_path)) >= 3:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    done = len(_json(json_path))
    assert 3 <= done < 3 * len(frames)
    assert len(read_frames(out / "long.mp4")) == done  # playable: the mp4 index was written
