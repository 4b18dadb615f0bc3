"""Keypoint conversion to H36M-17, norm_pose_2d, the codec's screen normalisation and the 3D post-processing."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import FIXTURES
from pose3d_rt.errors import InputError
from pose3d_rt.keypoints import (
    SUPPORTED_SOURCES,
    convert_keypoint_definition,
    convert_keypoint_scores,
    denormalize_screen_coordinates,
    norm_pose_2d,
    normalize_screen_coordinates,
    postprocess_3d,
)

COCO = ["nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_sho", "r_sho", "l_elb", "r_elb", "l_wri", "r_wri",
        "l_hip", "r_hip", "l_knee", "r_knee", "l_ank", "r_ank"]


def _int_kps(n: int, k: int, c: int = 2, seed: int = 0) -> np.ndarray:
    # integer-valued float32 keypoints: every mean below is exact, so == comparisons are meaningful
    return np.random.default_rng(seed).integers(0, 1000, size=(n, k, c)).astype(np.float32)


def test_coco_to_h36m_named_rules():
    kp = _int_kps(4, 17)
    c = {name: kp[:, i] for i, name in enumerate(COCO)}
    h = convert_keypoint_definition(kp, "coco")
    assert h.shape == (4, 17, 2) and h.dtype == np.float32
    pelvis = (c["l_hip"] + c["r_hip"]) / 2
    thorax = (c["l_sho"] + c["r_sho"]) / 2
    expected = {
        0: pelvis, 1: c["r_hip"], 2: c["r_knee"], 3: c["r_ank"], 4: c["l_hip"], 5: c["l_knee"], 6: c["l_ank"],
        7: (pelvis + thorax) / 2, 8: thorax, 9: c["nose"], 10: (c["l_eye"] + c["r_eye"]) / 2,
        11: c["l_sho"], 12: c["l_elb"], 13: c["l_wri"], 14: c["r_sho"], 15: c["r_elb"], 16: c["r_wri"],
    }
    for j, v in expected.items():
        np.testing.assert_array_equal(h[:, j], v, err_msg=f"h36m joint {j}")


def test_posetrack18_and_wholebody_use_the_coco_rule():
    kp = _int_kps(3, 17, seed=1)
    ref = convert_keypoint_definition(kp, "coco")
    np.testing.assert_array_equal(convert_keypoint_definition(kp, "posetrack18"), ref)
    wb = np.concatenate([kp, _int_kps(3, 116, seed=2)], axis=1)  # 133 joints, body first
    np.testing.assert_array_equal(convert_keypoint_definition(wb, "coco_wholebody"), ref)
    np.testing.assert_array_equal(convert_keypoint_definition(kp, "CocoDataset"), ref)  # mmpose 0.x class name


@pytest.mark.parametrize("source,root,thorax,copies", [
    # AIC: 0 r_sho 1 r_elb 2 r_wri 3 l_sho 4 l_elb 5 l_wri 6 r_hip 7 r_knee 8 r_ank 9 l_hip 10 l_knee 11 l_ank
    #      12 head_top 13 neck
    ("aic", (9, 6), (3, 0), {1: 6, 2: 7, 3: 8, 4: 9, 5: 10, 6: 11, 11: 3, 12: 4, 13: 5, 14: 0, 15: 1, 16: 2}),
    # CrowdPose: 0 l_sho 1 r_sho 2 l_elb 3 r_elb 4 l_wri 5 r_wri 6 l_hip 7 r_hip 8 l_knee 9 r_knee 10 l_ank
    #            11 r_ank 12 head_top 13 neck
    ("crowdpose", (6, 7), (0, 1), {1: 7, 2: 9, 3: 11, 4: 6, 5: 8, 6: 10, 11: 0, 12: 2, 13: 4, 14: 1, 15: 3, 16: 5}),
])
def test_14_joint_sources(source, root, thorax, copies):
    kp = _int_kps(2, 14, seed=3) * 12  # multiples of 12: the /4 and /12 means are exact
    h = convert_keypoint_definition(kp, source)
    r = (kp[:, root[0]] + kp[:, root[1]]) / 2
    t = (kp[:, thorax[0]] + kp[:, thorax[1]]) / 2
    np.testing.assert_array_equal(h[:, 0], r)
    np.testing.assert_array_equal(h[:, 8], t)
    np.testing.assert_array_equal(h[:, 7], (r + t) / 2)
    neck, top = kp[:, 13], kp[:, 12]
    np.testing.assert_array_equal(h[:, 9], neck + (top - neck) / 4)  # neck base: 1/4 of neck -> head top
    np.testing.assert_array_equal(h[:, 10], neck + (top - neck) * 7 / 12)  # head: 7/12 of the way
    for j, s in copies.items():
        np.testing.assert_array_equal(h[:, j], kp[:, s], err_msg=f"{source} h36m joint {j}")


def test_scores_and_score_channel():
    kp = _int_kps(2, 17, c=3, seed=4)  # (x, y, score): the score channel follows the same rule
    h = convert_keypoint_definition(kp, "coco")
    np.testing.assert_array_equal(h[..., :2], convert_keypoint_definition(kp[..., :2], "coco"))
    s = convert_keypoint_scores(kp[..., 2], "coco")
    np.testing.assert_array_equal(s, h[..., 2])
    np.testing.assert_array_equal(s[:, 0], (kp[:, 11, 2] + kp[:, 12, 2]) / 2)  # derived joint: mean score
    np.testing.assert_array_equal(s[:, 9], kp[:, 0, 2])


def test_leading_axes_are_vectorised():
    kp = _int_kps(5 * 3, 17, seed=5).reshape(5, 3, 17, 2)
    out = convert_keypoint_definition(kp, "coco")
    assert out.shape == (5, 3, 17, 2)
    for t in range(5):
        np.testing.assert_array_equal(out[t], convert_keypoint_definition(kp[t], "coco"))
    np.testing.assert_array_equal(convert_keypoint_definition(kp[0, 0], "coco"), out[0, 0])  # (K, C) too


def test_h36m_passthrough_is_a_copy():
    kp = _int_kps(2, 17, seed=6)
    out = convert_keypoint_definition(kp, "h36m")
    np.testing.assert_array_equal(out, kp)
    out[0, 0, 0] = -1
    assert kp[0, 0, 0] != -1


def test_unknown_dataset_lists_supported_ones():
    with pytest.raises(InputError) as e:
        convert_keypoint_definition(_int_kps(1, 17), "mpii")
    for name in SUPPORTED_SOURCES:
        assert name in str(e.value)
    with pytest.raises(InputError, match="17 joints"):
        convert_keypoint_definition(_int_kps(1, 14), "coco")
    with pytest.raises(InputError, match="14 joints"):
        convert_keypoint_definition(_int_kps(1, 17), "aic")


def test_conversion_matches_mmpose_on_the_fixtures():
    """The lift fixtures' one-frame windows are mmpose's conversion of the RTMPose-m output: bit-exact."""
    cases = sorted((FIXTURES / "lift" / "videopose3d_27f_supv").glob("pose_*.npz"))
    assert len(cases) == 9
    for f in cases:
        pose = np.load(FIXTURES / "pose" / "rtmpose_m_body8_256x192" / (f.stem[len("pose_"):] + ".npz"))
        ref = np.load(f)["seq_keypoints_2d"][0]
        np.testing.assert_array_equal(convert_keypoint_definition(pose["keypoints"], "coco"), ref, err_msg=f.name)


def test_norm_pose_2d_closed_form():
    boxes = np.array([[0, 100, 200, 300], [50, 50, 150, 450]], np.float32)  # centres (100,200), (100,250)
    kp = np.zeros((2, 17, 2), np.float32)
    kp[0, 0] = (100, 200)  # box centre -> stats centre
    kp[0, 1] = (200, 200)  # half a side right of it -> + bbox_scale / 2 in x
    kp[1, 0] = (100, 50)  # top edge of a 100x400 box: max side 400 -> -200 px in y
    out = norm_pose_2d(kp, boxes)
    assert out.dtype == np.float32 and out.shape == (2, 17, 2)
    np.testing.assert_array_equal(out[0, 0], [528, 427])
    np.testing.assert_array_equal(out[0, 1], [728, 427])
    np.testing.assert_array_equal(out[1, 0], [528, 227])
    np.testing.assert_allclose(norm_pose_2d(kp, boxes, (10, 20), 100)[0, 1], [60, 20])


def test_norm_pose_2d_degenerate_box():
    kp = np.full((1, 17, 2), 5.0, np.float32)
    box = np.array([[5, 5, 5, 5]], np.float32)
    assert not np.isfinite(norm_pose_2d(kp, box)).all()  # mmpose parity: division by zero
    assert np.isfinite(norm_pose_2d(kp, box, min_box_size=1.0)).all()
    with pytest.raises(InputError):
        norm_pose_2d(kp, np.zeros((2, 4), np.float32))


def test_screen_normalisation_closed_form_and_round_trip():
    w, h = 640.0, 384.0
    kp = np.array([[[0, 0], [640, 384], [320, 192], [160, 96]]], np.float32)
    n = normalize_screen_coordinates(kp, w, h)
    np.testing.assert_allclose(n[0], [[-1, -h / w], [1, h / w], [0, 0], [-0.5, -0.5 * h / w]], rtol=0, atol=1e-7)
    assert n.dtype == np.float32
    x = np.random.default_rng(0).uniform(-100, 900, (3, 17, 2)).astype(np.float32)
    np.testing.assert_allclose(denormalize_screen_coordinates(normalize_screen_coordinates(x, w, h), w, h), x,
                               atol=1e-3)
    with pytest.raises(InputError):
        normalize_screen_coordinates(kp, 0, h)


def test_postprocess_axes_flips_and_rebase():
    rng = np.random.default_rng(1)
    cam = rng.normal(size=(3, 17, 3)).astype(np.float32)
    out = postprocess_3d(cam, rebase=False)
    np.testing.assert_array_equal(out[..., 0], -cam[..., 0])
    np.testing.assert_array_equal(out[..., 1], cam[..., 2])
    np.testing.assert_array_equal(out[..., 2], -cam[..., 1])
    rb = postprocess_3d(cam)
    np.testing.assert_allclose(rb[..., 2], out[..., 2] - out[..., 2].min(axis=-1, keepdims=True))
    np.testing.assert_array_equal(rb[..., 2].min(axis=-1), 0)  # lowest joint on the floor, per person
    floor = np.array([-1.0, -2.0, 0.5], np.float32)
    np.testing.assert_allclose(postprocess_3d(cam, floor=floor)[..., 2], out[..., 2] - floor[:, None])
    # (N, 1, 17, 3) results (mmpose's per-person layout) rebase per person and frame too
    np.testing.assert_allclose(postprocess_3d(cam[:, None])[:, 0], rb)
    np.testing.assert_array_equal(cam, cam.copy())  # input untouched
