"""pose3d_rt.visualize: virtual camera in closed form, composite layout and sizes, pixel colours (docs/MMPOSE_BEHAVIOUR.md, Visualisation)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from pose3d_rt.errors import InputError
from pose3d_rt.keypoint_sets import COCO17, H36M17
from pose3d_rt.results import FrameResult
from pose3d_rt.visualize import (
    BOX_COLOR,
    GRID_LINE,
    Visualizer,
    ground_height,
    pad_offsets,
    project,
    view_basis,
    view_limits,
)

from benchmarks.fakes import STANDING_COCO_OFFSETS, STANDING_H36M_3D

# Colours from the spec (mmpose RGB triplets), reversed to BGR for our canvas.
BLUE_BGR = (255, 153, 51)  # RGB [51, 153, 255]
GREEN_BGR = (0, 255, 0)  # RGB [0, 255, 0]
ORANGE_BGR = (0, 128, 255)  # RGB [255, 128, 0]

STANDING_3D, COCO_OFFSETS = STANDING_H36M_3D, STANDING_COCO_OFFSETS


def make_result(n: int = 1, *, track_ids=None, scores_2d=None, keypoints_2d=None, keypoints_3d="standing",
                boxes=None) -> FrameResult:
    if keypoints_2d is None:
        keypoints_2d = np.stack([COCO_OFFSETS + [150 + 200 * i, 250] for i in range(n)]) if n else np.zeros((0, 17, 2))
    kp2 = keypoints_2d
    if boxes is None:
        boxes = np.concatenate([kp2.min(axis=1) - 10, kp2.max(axis=1) + 10], axis=1) if n else np.zeros((0, 4))
    sc = np.full((n, 17), 0.9, np.float32) if scores_2d is None else scores_2d
    if isinstance(keypoints_3d, str):
        keypoints_3d = np.stack([STANDING_3D + [0.5 * i, 0.0, 0.0] for i in range(n)]) if n else np.zeros((0, 17, 3))
    tid = np.arange(n) if track_ids is None else track_ids
    return FrameResult(0, boxes, np.ones(n), tid, kp2, sc, keypoints_3d, image_size=(640, 480))


def gray_frame(h: int = 480, w: int = 640, value: int = 60) -> np.ndarray:
    return np.full((h, w, 3), value, np.uint8)


def px(img: np.ndarray, x: int, y: int) -> tuple:
    return tuple(int(c) for c in img[y, x])


def is_gray(img: np.ndarray) -> bool:
    return bool(np.all(img[..., 0] == img[..., 1]) and np.all(img[..., 1] == img[..., 2]))


# ---------------------------------------------------------------------------------------------- virtual camera
def test_view_basis_matches_matplotlib_axes():
    b = view_basis(0.0, 0.0)
    np.testing.assert_allclose(b, [[0, 1, 0], [0, 0, 1], [1, 0, 0]], atol=1e-12)
    np.testing.assert_allclose(view_basis(-90.0, 0.0)[0], [1, 0, 0], atol=1e-12)  # camera at -Y: X to the right
    a, e = math.radians(70), math.radians(15)
    b = view_basis(70, 15)
    np.testing.assert_allclose(b[0], [-math.sin(a), math.cos(a), 0], atol=1e-12)
    np.testing.assert_allclose(b[1], [-math.sin(e) * math.cos(a), -math.sin(e) * math.sin(a), math.cos(e)],
                               atol=1e-12)
    np.testing.assert_allclose(b @ b.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(np.cross(b[0], b[1]), b[2], atol=1e-12)  # right-handed


def test_centre_projects_to_origin():
    c = np.array([0.3, -1.2, 0.9])
    u, v = project(c, c, scale=200.0, origin=(320.0, 240.0))
    assert (float(u), float(v)) == pytest.approx((320.0, 240.0), abs=1e-9)


@pytest.mark.parametrize("azim,elev", [(70, 15), (0, 0), (-60, 30), (135, -20), (10, 89)])
def test_point_on_view_axis_projects_to_origin(azim, elev):
    c = np.array([1.0, 2.0, 0.5])
    eye = view_basis(azim, elev)[2]
    pts = c + np.outer([-3.0, -0.5, 0.7, 5.0], eye)
    u, v = project(pts, c, azimuth=azim, elev=elev, scale=150.0, origin=(100.0, 80.0))
    np.testing.assert_allclose(u, 100.0, atol=1e-9)
    np.testing.assert_allclose(v, 80.0, atol=1e-9)


def test_offsets_at_azim0_elev0():
    # Camera on +X looking at -X: +Y is screen right, +Z screen up (v decreases), X is depth.
    c = np.zeros(3)
    s, o = 100.0, (50.0, 60.0)
    u, v = project(np.array([[0, 0.25, 0], [0, 0, 0.4], [0.7, 0, 0], [0, -0.1, -0.2]]), c, azimuth=0, elev=0,
                   scale=s, origin=o)
    np.testing.assert_allclose(u, [75.0, 50.0, 50.0, 40.0], atol=1e-9)
    np.testing.assert_allclose(v, [60.0, 20.0, 60.0, 80.0], atol=1e-9)


def test_offsets_at_demo_view():
    # elev 15: a vertical offset dz moves the pixel straight up by scale*dz*cos(15 deg), whatever the azimuth.
    c = np.array([0.2, 0.1, 1.0])
    u, v = project(c + [0, 0, 0.5], c, azimuth=70, elev=15, scale=200.0, origin=(0.0, 0.0))
    assert float(u) == pytest.approx(0.0, abs=1e-9)
    assert float(v) == pytest.approx(-200.0 * 0.5 * math.cos(math.radians(15)), abs=1e-9)
    # azim 90: camera on +Y, +X goes to the screen's left
    u, v = project(c + [0.3, 0, 0], c, azimuth=90, elev=0, scale=10.0)
    assert (float(u), float(v)) == pytest.approx((-3.0, 0.0), abs=1e-9)


def test_view_limits_and_ground():
    valid = np.ones(17, bool)
    centre, zlim = view_limits(STANDING_3D, valid, 1.7)
    np.testing.assert_allclose(centre, STANDING_3D.astype(np.float64).mean(axis=0), atol=1e-6)
    zc = centre[2]
    assert zlim == pytest.approx((min(0.0, zc - 0.85), zc + 0.85))
    assert ground_height(zlim) == 0.0
    # only joint 10 valid: centre is that joint
    only = np.zeros(17, bool)
    only[10] = True
    centre, zlim = view_limits(STANDING_3D, only, 1.7)
    np.testing.assert_allclose(centre, STANDING_3D[10], atol=1e-6)
    assert zlim == pytest.approx((0.0, 1.7 + 0.85))
    # no valid joint: centre 0, z in [-0.85, 0.85]
    centre, zlim = view_limits(STANDING_3D, np.zeros(17, bool), 1.7)
    np.testing.assert_array_equal(centre, 0.0)
    assert zlim == pytest.approx((-0.85, 0.85))
    assert ground_height(zlim) == 0.0
    # a person far below the floor: the grid goes to the lower limit
    assert ground_height((-1.85, -0.15)) == -1.85


def test_pad_offsets():
    assert pad_offsets(480, 640, 640, 640) == (80, 80, 0, 0)
    assert pad_offsets(480, 640, 640, 1280) == (80, 80, 320, 320)
    assert pad_offsets(480, 641, 641, 641) == (80, 81, 0, 0)
    assert pad_offsets(641, 480, 641, 1923) == (0, 0, 721, 722)
    assert pad_offsets(700, 700, 500, 500) == (0, 0, 0, 0)


# ---------------------------------------------------------------------------------------------- sizes
@pytest.mark.parametrize("w,h", [(640, 480), (480, 640), (1920, 1080), (100, 100), (333, 201)])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_output_size_and_render_shape(w, h, n):
    vis = Visualizer(num_instances=n)
    s = max(w, h)
    assert vis.output_size(w, h) == (2 * s * n, s)
    out = vis.render(gray_frame(h, w), make_result(2))
    assert out.shape == (s, 2 * s * n, 3) and out.dtype == np.uint8
    assert vis.output_size(w, h, has_3d=False) == (w, h)


def test_2d_only_outputs():
    frame = gray_frame()
    res = make_result(1)
    assert Visualizer(show_3d=False).output_size(640, 480) == (640, 480)
    assert Visualizer(show_3d=False).render(frame, res).shape == (480, 640, 3)
    assert Visualizer(num_instances=0).render(frame, res).shape == (480, 640, 3)
    no3d = make_result(1, keypoints_3d=None)
    assert Visualizer().render(frame, no3d).shape == (480, 640, 3)


def test_negative_num_instances_frozen_at_first_frame():
    vis = Visualizer(num_instances=-1)
    with pytest.raises(ValueError):
        vis.output_size(640, 480)
    out = vis.render(gray_frame(), make_result(3))
    assert out.shape == (640, 2 * 640 * 3, 3)
    assert vis.output_size(640, 480) == (2 * 640 * 3, 640)
    assert vis.render(gray_frame(), make_result(1)).shape == (640, 2 * 640 * 3, 3)  # constant video size


def test_invalid_inputs():
    with pytest.raises(ValueError):
        Visualizer().render(np.zeros((48, 64), np.uint8), make_result(0))
    with pytest.raises(ValueError):
        Visualizer(dataset_2d="aic")  # no colour table for it
    with pytest.raises(InputError):
        Visualizer(dataset_2d="nonsense")
    with pytest.raises(ValueError):
        Visualizer(axis_limit=0.0)


# ---------------------------------------------------------------------------------------------- 2D panel
def _sparse_person(points: dict, thr_scores: dict | None = None) -> FrameResult:
    """One person whose keypoints all sit at (5, 5) with score 0 except ``points`` {k: (x, y)} at score 0.9."""
    kp = np.full((1, 17, 2), 5.0, np.float32)
    sc = np.zeros((1, 17), np.float32)
    for k, xy in points.items():
        kp[0, k] = xy
        sc[0, k] = 0.9
    for k, s in (thr_scores or {}).items():
        sc[0, k] = s
    return make_result(1, keypoints_2d=kp, scores_2d=sc, boxes=np.zeros((1, 4)))


def test_keypoint_colours_bgr_reversed_from_rgb_table():
    # nose (blue), left wrist (green), right knee (orange): no link between them
    pts = {0: (100, 100), 9: (200, 150), 14: (300, 300), 15: (400, 400), 16: (450, 100)}
    res = _sparse_person(pts, {15: 0.29, 16: 0.3})  # left ankle below the threshold, right ankle at it
    frame = gray_frame(value=60)
    out = Visualizer(alpha=1.0, show_3d=False, draw_bbox=False).render(frame, res)
    assert px(out, 100, 100) == BLUE_BGR
    assert px(out, 200, 150) == GREEN_BGR
    assert px(out, 300, 300) == ORANGE_BGR
    assert px(out, 400, 400) == (60, 60, 60)  # 0.29 < kpt_thr: not drawn
    assert px(out, 450, 100) == ORANGE_BGR  # == kpt_thr: drawn
    assert px(out, 103, 100) == BLUE_BGR and px(out, 104, 100) == (60, 60, 60)  # radius 3
    for k, (x, y) in pts.items():  # the dataset tables agree with the spec's colours
        if k != 15:
            assert px(out, x, y) == tuple(reversed(COCO17.keypoint_colors_rgb[k]))


def test_keypoint_alpha_blend():
    res = _sparse_person({9: (200, 150), 14: (300, 300)})
    out = Visualizer(show_3d=False, draw_bbox=False).render(gray_frame(value=60), res)  # alpha 0.8
    for (x, y), c in (((200, 150), GREEN_BGR), ((300, 300), ORANGE_BGR)):
        want = tuple(int(round(0.8 * ci + 0.2 * 60)) for ci in c)
        assert px(out, x, y) == pytest.approx(want, abs=1)


def test_links_drawn_only_inside_and_above_threshold():
    # right shoulder (6) - right elbow (8): link 9, orange; left shoulder (5) - left elbow (7) with the elbow at
    # x = 0 (not strictly inside): no link; left hip (11) - left knee (13) with the knee below threshold: no link.
    pts = {6: (100, 200), 8: (160, 200), 5: (60, 300), 7: (0, 300), 11: (300, 100), 13: (300, 160)}
    res = _sparse_person(pts, {13: 0.1})
    out = Visualizer(alpha=1.0, show_3d=False, draw_bbox=False).render(gray_frame(value=60), res)
    assert COCO17.skeleton[9] == (6, 8)
    assert px(out, 130, 200) == ORANGE_BGR
    assert px(out, 30, 300) == (60, 60, 60)
    assert px(out, 300, 130) == (60, 60, 60)


def test_box_green_and_optional():
    res = make_result(1, boxes=np.array([[50.5, 60.9, 300.2, 400.0]]))
    out = Visualizer(show_3d=False).render(gray_frame(value=60), res)
    assert BOX_COLOR == (0, 255, 0)
    assert px(out, 50, 200) == BOX_COLOR and px(out, 300, 200) == BOX_COLOR  # int() of the corners
    assert px(out, 120, 60) == BOX_COLOR and px(out, 120, 400) == BOX_COLOR
    assert px(out, 52, 200) == (60, 60, 60)
    out = Visualizer(show_3d=False, draw_bbox=False).render(gray_frame(value=60), res)
    assert px(out, 50, 200) == (60, 60, 60)


# ---------------------------------------------------------------------------------------------- composite
@pytest.mark.parametrize("w,h,n", [(640, 480, 1), (640, 480, 2), (481, 640, 1), (333, 201, 3)])
def test_padding_white_and_frame_placed(w, h, n):
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 250, (h, w, 3), dtype=np.uint8)
    out = Visualizer(num_instances=n).render(frame, make_result(0))
    s = max(w, h)
    top, bottom, left, right = pad_offsets(h, w, s, s * n)
    assert top + h + bottom == s and left + w + right == s * n
    np.testing.assert_array_equal(out[top:top + h, left:left + w], frame)
    panel = out[:, : s * n]
    assert np.all(panel[:top] == 255) and np.all(panel[top + h:] == 255)
    assert np.all(panel[:, :left] == 255) and np.all(panel[:, left + w:] == 255)
    assert np.all(out[:, s * n:] == 255)  # no person: blank 3D panel


def test_empty_result():
    frame = gray_frame()
    empty = FrameResult(0, np.zeros((0, 4)), np.zeros(0), np.zeros(0), np.zeros((0, 17, 2)), np.zeros((0, 17)),
                        np.zeros((0, 17, 3)))
    out = Visualizer().render(frame, empty)
    assert out.shape == (640, 1280, 3)
    np.testing.assert_array_equal(out[80:560, :640], frame)
    assert np.all(out[:, 640:] == 255)
    empty2d = FrameResult(0, np.zeros((0, 4)), np.zeros(0), np.zeros(0), np.zeros((0, 17, 2)), np.zeros((0, 17)))
    np.testing.assert_array_equal(Visualizer().render(frame, empty2d), frame)


def test_deterministic_and_input_untouched():
    frame = gray_frame()
    before = frame.copy()
    res = make_result(2)
    vis = Visualizer(num_instances=2)
    a = vis.render(frame, res)
    b = vis.render(frame, res)
    c = Visualizer(num_instances=2).render(frame, res)
    assert a is not b
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(frame, before)


# ---------------------------------------------------------------------------------------------- 3D panel
def _only(k: int, n: int = 1) -> np.ndarray:
    sc = np.zeros((n, 17), np.float32)
    sc[:, k] = 0.9
    return sc


def test_single_valid_joint_at_slot_centre():
    # Only COCO right ankle (16) above threshold -> only H36M right foot (3) valid -> it is the view centre.
    res = make_result(1, scores_2d=_only(16))
    out = Visualizer().render(gray_frame(), res)
    s = 640
    assert px(out, s + s // 2, s // 2) == ORANGE_BGR
    assert tuple(reversed(H36M17.keypoint_colors_rgb[3])) == ORANGE_BGR


def test_3d_instances_sorted_by_track_id_with_their_own_scores():
    # Q12: person 0 (track 5) has only its right ankle visible, person 1 (track 2) only its left ankle.
    sc = np.zeros((2, 17), np.float32)
    sc[0, 16] = 0.9
    sc[1, 15] = 0.9
    res = make_result(2, track_ids=np.array([5, 2]), scores_2d=sc)
    out = Visualizer(num_instances=2).render(gray_frame(), res)
    s = 640
    base = 2 * s
    assert px(out, base + s // 2, s // 2) == GREEN_BGR  # slot 0: track 2, H36M left foot
    assert px(out, base + s + s // 2, s // 2) == ORANGE_BGR  # slot 1: track 5, H36M right foot
    # num_instances 1: only track 2
    out1 = Visualizer(num_instances=1).render(gray_frame(), res)
    assert px(out1, s + s // 2, s // 2) == GREEN_BGR


def test_joint_pixels_follow_project():
    vis = Visualizer()
    res = make_result(1)
    out = vis.render(gray_frame(), res)
    scale, origin = vis.slot_camera(640, 480)
    centre = STANDING_3D.astype(np.float64).mean(axis=0)
    u, v = project(STANDING_3D, centre, azimuth=70, elev=15, scale=scale, origin=origin)
    slot = out[:, 640:]
    for j in range(17):
        assert px(slot, int(np.rint(u[j])), int(np.rint(v[j]))) == H36M17.keypoint_colors[j], j
    # the standing person fills a sensible part of the slot
    assert 0.4 * 640 < (v[3] - v[10]) < 0.8 * 640


def test_grid_follows_ground():
    # One valid joint at height z: the grid's centre (x_c, y_c, 0) is scale*z*cos(elev) below the slot centre.
    vis = Visualizer()
    scale, (u0, v0) = vis.slot_camera(640, 480)
    kp3 = np.zeros((1, 17, 3), np.float32)
    kp3[0, 3] = (0.0, 0.0, 0.9)
    out = vis.render(gray_frame(), make_result(1, scores_2d=_only(16), keypoints_3d=kp3))
    slot = out[:, 640:]
    gy = int(round(v0 + scale * 0.9 * math.cos(math.radians(15))))
    # the grid lines x = x_c and y = y_c cross there (LINE_8, grey 205)
    near = slot[gy - 1:gy + 2, int(u0) - 1:int(u0) + 2]
    assert np.any(np.all(near == GRID_LINE, axis=-1))
    far = slot[gy - 1 - 20:gy + 2 - 20, int(u0) - 1:int(u0) + 2]  # 20 px higher: inside the square, off the lines
    assert not np.any(np.all(far == GRID_LINE, axis=-1)) and np.all(far[..., 0] < 250)
    assert px(slot, int(u0), gy - 80) == (255, 255, 255)  # nothing between the joint and the grid


def test_nan_person_draws_only_grid_and_title():
    kp3 = np.stack([STANDING_3D, np.full((17, 3), np.nan, np.float32)])
    res = make_result(2, keypoints_3d=kp3)
    out = Visualizer(num_instances=2).render(gray_frame(), res)
    s = 640
    good, nan = out[:, 2 * s:3 * s], out[:, 3 * s:]
    assert not is_gray(good)  # coloured skeleton
    assert is_gray(nan)  # grid and title only
    assert np.any(nan[s // 2:] < 250)  # the grid is there


def test_nan_joint_not_drawn_and_missing_slot_blank():
    kp3 = STANDING_3D.copy()[None]
    kp3[0, 10] = np.nan  # head
    res = make_result(1, keypoints_3d=kp3)
    vis = Visualizer(num_instances=2)
    out = vis.render(gray_frame(), res)
    assert np.all(out[:, 3 * 640:] == 255)  # second slot: no person
    scale, origin = vis.slot_camera(640, 480)
    centre = np.nanmean(kp3[0].astype(np.float64), axis=0)
    u, v = project(STANDING_3D[10], centre, scale=scale, origin=origin)
    assert px(out[:, 1280:1920], int(np.rint(u)), int(np.rint(v))) == (255, 255, 255)


def test_coco_wholebody_uses_body_joints():
    kp = np.zeros((1, 133, 2), np.float32)
    kp[0, :17] = COCO_OFFSETS + [200, 250]
    sc = np.zeros((1, 133), np.float32)
    sc[0, 16] = 0.9
    res = make_result(1, keypoints_2d=kp, scores_2d=sc)
    out = Visualizer(dataset_2d="coco_wholebody", alpha=1.0).render(gray_frame(), res)
    assert px(out, 640 + 320, 320) == ORANGE_BGR
    x, y = (COCO_OFFSETS[16] + [200, 250]).astype(int)
    assert px(out, x, y + 80) == ORANGE_BGR  # 2D panel, 80 rows of top padding


def test_render_into_reused_buffer():
    frame = gray_frame()
    res = make_result(2)
    vis = Visualizer(num_instances=2)
    fresh = vis.render(frame, res)
    dirty = np.random.default_rng(3).integers(0, 256, fresh.shape, dtype=np.uint8)
    out = vis.render(frame, res, out=dirty)
    assert out is dirty  # drawn in place, every pixel rewritten
    np.testing.assert_array_equal(out, fresh)
    wrong = np.zeros((10, 10, 3), np.uint8)
    other = vis.render(frame, res, out=wrong)
    assert other is not wrong and other.shape == fresh.shape
    np.testing.assert_array_equal(other, fresh)
    only2d = Visualizer(show_3d=False)
    buf = np.zeros_like(frame)
    assert only2d.render(frame, res, out=buf) is buf
    np.testing.assert_array_equal(buf, only2d.render(frame, res))
