"""End-to-end parity: ``mode="mmpose"`` reproduces the mmpose demo's prediction JSONs (tests/fixtures/e2e).

Each run below is one command of tests/fixtures/e2e/commands.txt, executed by the real mmpose 1.3.2 demo on the
rebuilt checkpoints. We compare: the same frames, the same number of instances in the same order (ascending track
id), 3D keypoints within 1e-3 and, from ``tracks.npz``, the 2D keypoints (1e-2 px), boxes and track ids.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import FIXTURES, requires_torch

pytestmark = [requires_torch, pytest.mark.slow]

HEAVY = ("rtmdet_m_person", "rtmpose_m_body8_256x192", "videopose3d_243f_supv_cpn_ft")
LIGHT = ("rtmdet_nano_person", "rtmpose_t_body8_256x192", "videopose3d_27f_supv")

RUNS = {
    "video_default": (HEAVY, "synthetic_video.avi", {}),
    "video_oks": (HEAVY, "synthetic_video.avi", {"use_oks_tracking": True}),
    "video_nonorm": (HEAVY, "synthetic_video.avi", {"norm_pose_2d": False}),
    "video_light_default": (LIGHT, "synthetic_video.avi", {}),
    "still_group_default": (HEAVY, "still_group_960x600.png", {}),
}


def _load_reference(run: str, input_name: str):
    stem = input_name.rsplit(".", 1)[0]
    ref = json.loads((FIXTURES / "e2e" / run / f"results_{stem}.json").read_text())
    tracks = np.load(FIXTURES / "e2e" / run / "tracks.npz")
    return ref, tracks


@pytest.fixture(scope="module")
def pipelines(onnx_models):
    from pose3d_rt.pipeline import Pose3DPipeline

    cache = {}

    def get(models, **opts):
        key = (models, tuple(sorted(opts.items())))
        if key not in cache:
            det, pose, lift = (onnx_models[m] for m in models)
            cache[key] = Pose3DPipeline(det, pose, lift, mode="mmpose", **opts)
        return cache[key]

    return get


@pytest.mark.parametrize("run", sorted(RUNS))
def test_mmpose_mode_reproduces_demo(run, pipelines):
    models, input_name, opts = RUNS[run]
    ref, tracks = _load_reference(run, input_name)
    pipe = pipelines(models, **opts)
    src = FIXTURES / "inputs" / input_name
    results = list(pipe.stream(str(src)))
    info = ref["instance_info"]
    if input_name.endswith(".png"):
        frames = [(0, info)]
        assert len(results) == 1
    else:
        frames = [(rec["frame_id"], rec["instances"]) for rec in info]
        assert [r.frame_index + 1 for r in results] == [f for f, _ in frames]  # Q15: 1-based frame_id
    max3d = max2d = 0.0
    for res, (frame_id, instances) in zip(results, frames):
        assert len(res) == len(instances), f"frame {frame_id}: {len(res)} persons, reference {len(instances)}"
        if not instances:
            continue
        ref3d = np.array([inst["keypoints"] for inst in instances], np.float64)
        np.testing.assert_allclose(res.keypoints_3d, ref3d, atol=1e-3, err_msg=f"frame {frame_id}")
        max3d = max(max3d, float(np.abs(res.keypoints_3d - ref3d).max()))
        # 2D and track ids from tracks.npz (detector order there; ours is sorted by track id, stable)
        sel = np.flatnonzero(tracks["frame_id"] == frame_id)
        sel = sel[np.argsort(tracks["det_order"][sel], kind="stable")]
        order = sel[np.argsort(tracks["track_id"][sel], kind="stable")]
        np.testing.assert_array_equal(res.track_ids, tracks["track_id"][order])
        np.testing.assert_allclose(res.boxes, tracks["bboxes"][order], atol=1e-2)
        np.testing.assert_allclose(res.keypoints_2d, tracks["keypoints"][order], atol=1e-2)
        np.testing.assert_allclose(res.scores_2d, tracks["keypoint_scores"][order], atol=1e-4)
        max2d = max(max2d, float(np.abs(res.keypoints_2d - tracks["keypoints"][order]).max()))
    print(f"{run}: {len(results)} frames, max |d3D| = {max3d:.2e}, max |d2D| = {max2d:.2e} px")
