"""The VideoPose3D codec: norm_pose_2d, the screen normalisation and the 3D post-processing."""
from __future__ import annotations

import numpy as np
import pytest
from pose3d_rt.errors import InputError
from pose3d_rt.lifters.codec import (
    denormalize_screen_coordinates,
    norm_pose_2d,
    normalize_screen_coordinates,
    postprocess_3d,
)


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
