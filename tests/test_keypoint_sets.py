"""Dataset metadata against mmpose's parsed metainfo stored in the reference fixtures and the spec tables."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pose3d_rt.keypoint_sets import COCO17, H36M17, KeypointDataset, get_dataset

FIXTURES = Path(__file__).resolve().parent / "fixtures"

# rtmpose.md §10 table
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
