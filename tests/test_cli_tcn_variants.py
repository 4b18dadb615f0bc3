"""The other VideoPose3D variants end to end through the CLI: random-init 1-frame and 81-frame TCNs in the official
checkpoint layout, `pose3d-rt run` in both modes. Each run's JSON equals the Python API's results on the same
frames with the same models (the CLI adds nothing and loses nothing), and the exports the CLI picked are the
right form for the mode (default: stream, mmpose: strided windows)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import frames_folder, requires_torch
from pose3d_rt.cli import main

pytestmark = [requires_torch, pytest.mark.slow]

FRAMES = 8


@pytest.fixture(scope="module")
def setup(checkpoints, tmp_path_factory):
    import torch
    from pose3d_rt.export.models import tcn

    root = tmp_path_factory.mktemp("tcn_variants")
    frames = frames_folder(root / "frames", FRAMES)
    lifters = {}
    for variant in ("videopose3d_1f", "videopose3d_81f"):
        torch.manual_seed(7)
        model = tcn.build_model(variant)
        path = root / f"{variant}.pth"
        torch.save({"meta": {"mmpose_version": "1.3.2"}, "state_dict": model.state_dict()}, path)
        lifters[variant] = path
    return root, frames, (checkpoints["rtmdet_nano_person"], checkpoints["rtmpose_t_body8_256x192"]), lifters


@pytest.mark.parametrize("mode", ["default", "mmpose"])
@pytest.mark.parametrize("variant,rf", [("videopose3d_1f", 1), ("videopose3d_81f", 81)])
def test_tcn_variant_through_the_cli_equals_the_api(setup, monkeypatch, mode, variant, rf):
    from pose3d_rt.pipeline import Pose3DPipeline

    root, frames, (det, pose), lifters = setup
    monkeypatch.setenv("POSE3D_RT_HOME", str(root / "home"))
    out = root / f"{variant}-{mode}"
    code = main(["run", str(frames), "--det", str(det), "--pose2d", str(pose), "--lifter", str(lifters[variant]),
                 "--mode", mode, "--output-root", str(out), "--save-predictions", "--no-progress"])
    assert code == 0
    info = json.loads((out / "results_frames.json").read_text())["instance_info"]
    assert len(info) == FRAMES
    pipe = Pose3DPipeline(str(det), str(pose), str(lifters[variant]), mode=mode)
    assert pipe._lifter.spec.receptive_field == rf
    forms = {p.name.split("form-")[1].split(".")[0] for p in (root / "home" / "onnx").glob(f"{variant}.*form-*")}
    assert ("stream" if mode == "default" else "strided") in forms
    api = list(pipe.stream(str(frames)))
    assert len(api) == FRAMES
    assert sum(len(r) for r in api) >= FRAMES // 2  # persons were found and lifted (not a vacuous comparison)
    for frame, res in zip(info, api):
        got = np.array([inst["keypoints"] for inst in frame["instances"]], np.float32).reshape(-1, 17, 3)
        assert got.shape[0] == len(res)
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, res.keypoints_3d, atol=1e-5)
