"""SimCC decoding / flip merging against the mmpose references and independent closed-form checks."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from pose3d_rt.keypoint_sets import COCO17
from pose3d_rt.rtmpose.simcc import decode_simcc, flip_back_simcc, get_simcc_maximum, merge_flip
from pose3d_rt.rtmpose.topdown import crop_to_image, invert_affine, warp_matrices

FIXTURES = Path(__file__).resolve().parent / "fixtures"
POSE_FILES = sorted((FIXTURES / "pose").glob("*/*.npz"))
log = logging.getLogger(__name__)


def _ids(p: Path) -> str:
    return f"{p.parent.name}/{p.stem}"


def _reference_decode(sx: np.ndarray, sy: np.ndarray, ratio: float):
    """Independent scalar implementation of docs/MMPOSE_BEHAVIOUR.md, RTMPose (pure Python per keypoint)."""
    n, k = sx.shape[:2]
    locs = np.zeros((n, k, 2), np.float64)
    scores = np.zeros((n, k), np.float32)
    for i in range(n):
        for j in range(k):
            xs, ys = sx[i, j].tolist(), sy[i, j].tolist()
            vx, vy = max(xs), max(ys)
            ix, iy = xs.index(vx), ys.index(vy)  # first maximum
            score = min(vx, vy)
            if score <= 0:
                ix = iy = -1
            locs[i, j] = (ix / ratio, iy / ratio)
            scores[i, j] = score
    return locs, scores


@pytest.mark.parametrize("path", POSE_FILES, ids=_ids)
def test_flip_merge_and_decode_match_mmpose(path):
    d = np.load(path)
    fi = d["flip_indices"]
    assert list(fi) == list(COCO17.flip_indices)
    mx, my = merge_flip(d["simcc_x"], d["simcc_y"], d["simcc_x_flipinput"], d["simcc_y_flipinput"], COCO17.flip_indices)
    assert mx.dtype == np.float32
    np.testing.assert_array_equal(mx, d["simcc_x_merged"])  # (a + b) * 0.5 in float32, as torch
    np.testing.assert_array_equal(my, d["simcc_y_merged"])
    kc, scores = decode_simcc(mx, my, 2.0)
    np.testing.assert_array_equal(kc, d["keypoints_crop"])
    err_s = np.abs(scores - d["keypoint_scores"]).max()
    assert err_s <= 1e-5
    kp = crop_to_image(kc, d["input_center"], d["input_scale"], tuple(d["input_size"]))
    err = np.abs(kp - d["keypoints"]).max()
    log.info("%s: keypoints max err %.3g px, scores max err %.3g", _ids(path), err, err_s)
    assert err <= 1e-3


@pytest.mark.parametrize("path", POSE_FILES, ids=_ids)
def test_no_flip_decode_against_independent_formula(path):
    """No fixture has non-flip keypoints: decode the raw non-flip SimCC and check it against a scalar reference
    and against the inverse of the crop warp (the keypoints_crop -> image consistency)."""
    d = np.load(path)
    kc, scores = decode_simcc(d["simcc_x"], d["simcc_y"], 2.0)
    ref_locs, ref_scores = _reference_decode(d["simcc_x"], d["simcc_y"], 2.0)
    np.testing.assert_array_equal(kc, ref_locs.astype(np.float32))
    np.testing.assert_array_equal(scores, ref_scores)
    c, s, size = d["input_center"], d["input_scale"], tuple(int(v) for v in d["input_size"])
    kp = crop_to_image(kc, c, s, size)
    # closed form of docs/MMPOSE_BEHAVIOUR.md, RTMPose in float64
    w, h = size
    closed = np.stack([kc[..., 0] / w * s[:, None, 0] + c[:, None, 0] - 0.5 * s[:, None, 0],
                       kc[..., 1] / h * s[:, None, 1] + c[:, None, 1] - 0.5 * s[:, None, 1]], -1)
    np.testing.assert_allclose(kp, closed, atol=1e-4)
    # the same crop points through the inverse of mmpose's warp matrix land at the same image pixels
    inv = invert_affine(warp_matrices(c, s, size))
    via_matrix = np.einsum("nij,nkj->nki", inv[..., :2], kc.astype(np.float64)) + inv[:, None, :, 2]
    assert np.abs(via_matrix - kp).max() <= 1e-2
    # and the fixture's flip-test keypoints_crop is consistent with its image keypoints in the same way
    kp_flip = crop_to_image(d["keypoints_crop"], c, s, size)
    np.testing.assert_allclose(kp_flip, d["keypoints"], atol=1e-3)


def test_invalid_keypoints_set_to_minus_one_before_split():
    sx = np.full((2, 3, 8), -1.0, np.float32)
    sy = np.full((2, 3, 10), -1.0, np.float32)
    sx[0, 0, 5], sy[0, 0, 7] = 0.8, 0.6   # valid: score = 0.6
    sx[0, 1, 2], sy[0, 1, 3] = 0.8, -0.2  # min <= 0: invalid
    sx[0, 2, 4], sy[0, 2, 1] = 0.0, 0.3   # score exactly 0: invalid (<=)
    sx[1, :, 6], sy[1, :, 9] = 2.5, 1.5   # scores may exceed 1
    locs, vals = get_simcc_maximum(sx, sy)
    np.testing.assert_array_equal(locs[0], [[5, 7], [-1, -1], [-1, -1]])
    np.testing.assert_array_equal(vals[0], np.float32([0.6, -0.2, 0.0]))
    kc, scores = decode_simcc(sx, sy, 2.0)
    np.testing.assert_array_equal(kc[0], [[2.5, 3.5], [-0.5, -0.5], [-0.5, -0.5]])  # -1 / 2
    np.testing.assert_array_equal(kc[1], [[3.0, 4.5]] * 3)
    np.testing.assert_array_equal(scores[1], [1.5] * 3)
    # another split ratio
    kc3, _ = decode_simcc(sx, sy, 3.0)
    np.testing.assert_allclose(kc3[0, 0], [5 / 3, 7 / 3], rtol=1e-6)


def test_ties_take_the_first_maximum_and_single_instance_shape():
    sx = np.zeros((2, 6), np.float32)
    sy = np.zeros((2, 4), np.float32)
    sx[:, [1, 4]] = 0.5
    sy[:, [2, 3]] = 0.7
    locs, vals = get_simcc_maximum(sx, sy)  # (K, W) input -> one instance
    assert locs.shape == (1, 2, 2) and vals.shape == (1, 2)
    np.testing.assert_array_equal(locs[0], [[1, 2], [1, 2]])


def test_flip_back_closed_form():
    k, wx, wy = 17, 12, 9
    sx = np.zeros((1, k, wx), np.float32)
    sy = np.zeros((1, k, wy), np.float32)
    for j in range(k):  # keypoint j of the flipped crop peaks at x-bin j % wx and y-bin j % wy
        sx[0, j, j % wx] = 1
        sy[0, j, j % wy] = 1
    bx, by = flip_back_simcc(sx, sy, COCO17.flip_indices)
    for j in range(k):
        src = COCO17.flip_indices[j]
        assert np.argmax(bx[0, j]) == wx - 1 - (src % wx)  # reversed bins, no shift
        assert np.argmax(by[0, j]) == src % wy
    # merging a vector with its own flip-back is symmetric
    mx, _ = merge_flip(sx, sy, sx, sy, COCO17.flip_indices)
    np.testing.assert_array_equal(mx, (sx + bx) * np.float32(0.5))
    with pytest.raises(ValueError, match="keypoints"):
        flip_back_simcc(sx, sy, [0, 1])


def test_shape_errors():
    with pytest.raises(ValueError, match="SimCC"):
        get_simcc_maximum(np.zeros((2, 17, 8)), np.zeros((3, 17, 8)))
