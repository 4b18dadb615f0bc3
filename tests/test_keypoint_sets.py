"""Keypoint sets: the metadata against mmpose's parsed metainfo stored in the reference fixtures and mmpose's
tables, and the conversion of 2D keypoint sets to H36M-17."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import FIXTURES
from pose3d_rt.errors import InputError
from pose3d_rt.keypoint_sets import (
    COCO17,
    H36M17,
    SUPPORTED_SOURCES,
    KeypointDataset,
    convert_keypoint_definition,
    convert_keypoint_scores,
    get_dataset,
)

# the COCO table of mmpose's configs/_base_/datasets/coco.py (docs/MMPOSE_BEHAVIOUR.md, RTMPose)
SPEC_COCO_SIGMAS = [0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
                    0.107, 0.107, 0.087, 0.087, 0.089, 0.089]
SPEC_COCO_FLIP = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]


def _untag(obj):
    """Undo the tagged JSON of the fixtures (``__ndarray__``, ``__tuple__``, ``__dict__``)."""
    if isinstance(obj, dict):
        if "__ndarray__" in obj:
            return np.asarray(obj["__ndarray__"], dtype=obj["dtype"]).reshape(obj["shape"])
        if "__tuple__" in obj:
            return tuple(_untag(v) for v in obj["__tuple__"])
        if "__dict__" in obj:
            return {k: _untag(v) for k, v in obj["__dict__"]}
        return {k: _untag(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_untag(v) for v in obj]
    return obj


@pytest.fixture(scope="module")
def coco_meta():
    meta = json.loads((FIXTURES / "weights" / "rtmpose_m_body8_256x192.meta.json").read_text())
    return _untag(meta["dataset_meta"])


@pytest.fixture(scope="module")
def h36m_meta():
    res = json.loads((FIXTURES / "e2e" / "video_default" / "results_synthetic_video.json").read_text())
    return _untag(res["meta_info"])


def _check_against_mmpose(ds: KeypointDataset, meta: dict) -> None:
    assert ds.name == meta["dataset_name"]
    assert ds.num_keypoints == meta["num_keypoints"]
    names = meta["keypoint_id2name"]
    assert ds.keypoint_names == tuple(names[i] if i in names else names[str(i)] for i in range(ds.num_keypoints))
    assert list(ds.flip_indices) == list(meta["flip_indices"])
    assert [tuple(p) for p in ds.flip_pairs] == [tuple(p) for p in meta["flip_pairs"]]
    assert list(ds.upper_body_ids) == list(meta["upper_body_ids"])
    assert list(ds.lower_body_ids) == list(meta["lower_body_ids"])
    assert [tuple(p) for p in ds.skeleton] == [tuple(p) for p in meta["skeleton_links"]]
    assert ds.num_links == meta["num_skeleton_links"]
    np.testing.assert_array_equal(np.asarray(ds.keypoint_colors_rgb, np.uint8), meta["keypoint_colors"])
    np.testing.assert_array_equal(np.asarray(ds.link_colors_rgb, np.uint8), meta["skeleton_link_colors"])
    # the BGR tuples are mmpose's triplets reversed
    np.testing.assert_array_equal(np.asarray(ds.keypoint_colors, np.uint8), meta["keypoint_colors"][:, ::-1])
    np.testing.assert_array_equal(np.asarray(ds.link_colors, np.uint8), meta["skeleton_link_colors"][:, ::-1])
    np.testing.assert_array_equal(ds.joint_weights, meta["dataset_keypoint_weights"])
    assert ds.joint_weights.dtype == np.float32


def test_coco17_equals_mmpose_parsed_metainfo(coco_meta):
    _check_against_mmpose(COCO17, coco_meta)
    np.testing.assert_array_equal(COCO17.sigmas, coco_meta["sigmas"])  # float32, bit-equal


def test_h36m17_equals_mmpose_parsed_metainfo(h36m_meta):
    _check_against_mmpose(H36M17, h36m_meta)
    assert h36m_meta["sigmas"].size == 0 and H36M17.sigmas is None  # mmpose defines none
    stats = h36m_meta["stats_info"]
    np.testing.assert_array_equal(H36M17.stats_info.center_array, stats["bbox_center"])
    np.testing.assert_array_equal(H36M17.stats_info.scale_array, stats["bbox_scale"])
    assert H36M17.stats_info.center_array.dtype == np.float32
    assert H36M17.stats_info.bbox_center == (528.0, 427.0) and H36M17.stats_info.bbox_scale == 400.0


def test_coco_sigmas_and_flip_against_spec_table():
    assert COCO17.sigmas.dtype == np.float32
    np.testing.assert_array_equal(COCO17.sigmas, np.asarray(SPEC_COCO_SIGMAS, np.float32))
    assert list(COCO17.flip_indices) == SPEC_COCO_FLIP
    assert COCO17.index("left_hip") == 11 and COCO17.index("right_ankle") == 16


@pytest.mark.parametrize("ds", [COCO17, H36M17], ids=lambda d: d.name)
def test_flip_indices_involution_and_left_right_names(ds):
    f = ds.flip_index_array
    np.testing.assert_array_equal(f[f], np.arange(ds.num_keypoints))
    for i, j in enumerate(ds.flip_indices):
        a, b = ds.keypoint_names[i], ds.keypoint_names[j]
        if a.startswith("left_"):
            assert b == "right_" + a[len("left_"):]
        elif a.startswith("right_"):
            assert b == "left_" + a[len("right_"):]
        else:
            assert i == j
    for left, right in ds.symmetric_pairs:
        assert ds.flip_indices[left] == right and left < right


@pytest.mark.parametrize("ds", [COCO17, H36M17], ids=lambda d: d.name)
def test_skeleton_in_range_and_colors_valid(ds):
    sk = ds.skeleton_array
    assert sk.min() >= 0 and sk.max() < ds.num_keypoints
    assert len(ds.link_colors) == len(ds.skeleton)
    for c in ds.keypoint_colors + ds.link_colors:
        assert len(c) == 3 and all(0 <= v <= 255 for v in c)
    assert sorted(ds.upper_body_ids + ds.lower_body_ids) == list(range(ds.num_keypoints))


def test_left_is_green_right_is_orange_in_bgr():
    # mmpose draws [0,255,0] (left) and [255,128,0] (right) onto RGB images -> BGR (0,255,0) and (0,128,255)
    assert COCO17.keypoint_colors[COCO17.index("left_wrist")] == (0, 255, 0)
    assert COCO17.keypoint_colors[COCO17.index("right_wrist")] == (0, 128, 255)
    assert H36M17.keypoint_colors[H36M17.index("right_hip")] == (0, 128, 255)


def test_arrays_are_read_only():
    with pytest.raises(ValueError):
        COCO17.sigmas[0] = 1.0


def test_get_dataset():
    assert get_dataset("coco") is COCO17
    assert get_dataset("COCO") is COCO17
    assert get_dataset("h36m") is H36M17
    assert get_dataset("Human36M") is H36M17
    assert get_dataset("body8") is COCO17
    with pytest.raises(KeyError, match="known: coco, h36m"):
        get_dataset("mpii")


def test_bad_swap_table_rejected():
    with pytest.raises(ValueError, match="not symmetric"):
        KeypointDataset("x", ("a", "b", "c"), (), ((0, 0, 0),) * 3, (), ("b", "c", "a"), (0, 1, 2), (),
                        np.ones(3))
    with pytest.raises(ValueError, match="outside"):
        KeypointDataset("x", ("a", "b"), ((0, 2),), ((0, 0, 0),) * 2, ((0, 0, 0),), ("", ""), (0, 1), (),
                        np.ones(2))


# ---------------------------------------------------------------------------------------------------------------
# conversion to H36M-17
# ---------------------------------------------------------------------------------------------------------------

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
