"""`run --det-letterbox` and `run --no-overlap` end to end: the flags reach the pipeline and the job, the
single-threaded run writes exactly what the overlapped one writes, and mmpose mode refuses the rect letterbox."""
from __future__ import annotations

import json

import pytest
from conftest import frames_folder, requires_torch
from pose3d_rt.cli import main
from pose3d_rt.cli.parser import build_parser
from pose3d_rt.cli.run import run_job

pytestmark = [requires_torch, pytest.mark.slow]

FRAMES = 6


@pytest.fixture(scope="module")
def setup(checkpoints, tmp_path_factory):
    root = tmp_path_factory.mktemp("speed_flags")
    frames = frames_folder(root / "frames", FRAMES)
    models = ["--det", str(checkpoints["rtmdet_nano_person"]), "--pose2d", str(checkpoints["rtmpose_t_body8_256x192"]),
              "--lifter", str(checkpoints["videopose3d_27f_supv"])]
    return root, frames, models


def _run(setup, out, *flags):
    root, frames, models = setup
    code = main(["run", str(frames), *models, "--output-root", str(root / out), "--save-predictions",
                 "--no-progress", *flags])
    assert code == 0
    return json.loads((root / out / "results_frames.json").read_text())["instance_info"]


def test_no_overlap_writes_the_same_predictions(setup, monkeypatch):
    monkeypatch.setenv("POSE3D_RT_HOME", str(setup[0] / "home"))
    overlapped = _run(setup, "overlap")
    single = _run(setup, "single", "--no-overlap")
    assert len(single) == FRAMES
    assert single == overlapped


@pytest.mark.parametrize("letterbox", ["rect", "square"])
def test_det_letterbox_reaches_the_detector(setup, monkeypatch, letterbox):
    root, frames, models = setup
    monkeypatch.setenv("POSE3D_RT_HOME", str(root / "home"))
    args = build_parser().parse_args(["run", str(frames), *models, "--no-progress", "--det-letterbox", letterbox,
                                      "--output-root", str(root / letterbox)])
    seen = {}

    def check(pipe):
        seen["letterbox"] = pipe.detector.letterbox

    assert run_job(args, (args.det, args.pose2d, args.lifter), check_pipe=check) == 0
    assert seen["letterbox"] == letterbox


def test_det_letterbox_rect_is_refused_in_mmpose_mode(setup, capsys):
    root, frames, models = setup
    code = main(["run", str(frames), *models, "--mode", "mmpose", "--det-letterbox", "rect", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "--det-letterbox rect" in err[0] and "mmpose" in err[0]
