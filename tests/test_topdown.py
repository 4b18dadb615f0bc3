"""Top-down preprocessing against the mmpose references (tests/fixtures/pose) and closed-form geometry."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import FIXTURE_IMAGES
from hypothesis import given, settings
from hypothesis import strategies as st
from pose3d_rt.rtmpose.topdown import (
    RTMPOSE_MEAN_RGB,
    RTMPOSE_STD_RGB,
    apply_affine,
    bbox_xyxy2cs,
    crop_to_image,
    fix_aspect_ratio,
    get_warp_matrix,
    image_to_crop,
    invert_affine,
    normalize_crops,
    preprocess,
    warp_crops,
    warp_matrices,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
POSE = FIXTURES / "pose"
IMAGES = FIXTURE_IMAGES
POSE_FILES = sorted(POSE.glob("*/*.npz"))
MEAN = np.asarray(RTMPOSE_MEAN_RGB, np.float32)
STD = np.asarray(RTMPOSE_STD_RGB, np.float32)
log = logging.getLogger(__name__)


def _case(path: Path):
    d = dict(np.load(path))
    img = cv2.imread(str(FIXTURES / IMAGES[path.stem.split("__")[0]]), cv2.IMREAD_COLOR)
    return d, img


def _ids(p: Path) -> str:
    return f"{p.parent.name}/{p.stem}"


def test_all_pose_fixtures_present():
    assert len(POSE_FILES) == 15  # 10 RTMPose-m + 5 RTMPose-t files copied into tests/fixtures
    assert {p.parent.name for p in POSE_FILES} == {"rtmpose_m_body8_256x192", "rtmpose_t_body8_256x192"}


@pytest.mark.parametrize("path", POSE_FILES, ids=_ids)
def test_preprocess_matches_mmpose(path):
    d, img = _case(path)
    w, h = (int(v) for v in d["input_size"])
    nobox = path.stem.endswith("__nobox")
    boxes = d["bboxes_in"]
    if nobox:
        assert boxes.shape[0] == 0
    b = preprocess(img, boxes, (w, h), whole_image_if_empty=True, keep_crops=True)
    # boxes: the whole image for __nobox, else the given boxes
    np.testing.assert_array_equal(b.boxes, d["bboxes_out"])
    if nobox:
        np.testing.assert_array_equal(b.boxes, [[0, 0, img.shape[1], img.shape[0]]])
    # centre/scale bit-exact (float32)
    assert b.centers.dtype == np.float32 and b.scales.dtype == np.float32
    np.testing.assert_array_equal(b.centers, d["input_center"])
    np.testing.assert_array_equal(b.scales, d["input_scale"])
    np.testing.assert_array_equal(b.scales, d["bbox_scales"])
    # crops: bit-exact with the OpenCV 4.11 crops of the reference (fixed-point warp emulated via cv2.remap)
    ref = d["crop_uint8"].transpose(0, 2, 3, 1)
    diff = np.abs(b.crops.astype(np.int16) - ref)
    assert diff.max() == 0, f"max {diff.max()} grey levels, {np.mean(diff > 0):.4%} pixels differ"
    # the float network input: the fixture's documented formula, bit-exact
    expected = (d["crop_uint8"][:, ::-1].astype(np.float32) - MEAN[:, None, None]) / STD[:, None, None]
    assert b.inputs.dtype == np.float32 and b.inputs.shape == (len(ref), 3, h, w)
    np.testing.assert_array_equal(b.inputs, expected)


def test_opencv_warp_method_vs_references():
    """``warp_method='opencv'`` calls cv2.warpAffine; OpenCV 5 interpolates in float, 4.x in fixed point."""
    worst, differ, total = 0, 0, 0
    for path in POSE_FILES:
        d, img = _case(path)
        b = preprocess(img, d["bboxes_out"], (192, 256), warp_method="opencv", keep_crops=True)
        diff = np.abs(b.crops.astype(np.int16) - d["crop_uint8"].transpose(0, 2, 3, 1))
        worst, differ, total = max(worst, int(diff.max())), differ + int((diff > 0).sum()), total + diff.size
    log.info("cv2 %s warpAffine vs mmpose crops: max %d grey levels, %.4f%% of values differ",
             cv2.__version__, worst, 100 * differ / total)
    if int(cv2.__version__.split(".")[0]) < 5:
        assert worst == 0
    else:  # measured with OpenCV 5.0: max 4, 6.25 %
        assert worst <= 4 and differ / total < 0.10


def test_bbox_center_scale_and_aspect_fix_closed_form():
    boxes = np.array([[10, 20, 110, 420], [0, 0, 300, 100], [5, 5, 5 + 75, 5 + 100]], np.float32)
    c, s = bbox_xyxy2cs(boxes)
    np.testing.assert_array_equal(c, [[60, 220], [150, 50], [42.5, 55]])
    np.testing.assert_array_equal(s, [[125, 500], [375, 125], [93.75, 125]])
    f = fix_aspect_ratio(s, 192 / 256)
    # tall box: width grows to h*0.75; wide box: height grows to w/0.75; exact ratio: unchanged
    np.testing.assert_allclose(f, [[375, 500], [375, 500], [93.75, 125]], rtol=1e-7)
    assert f.dtype == np.float32
    assert np.all(f >= s)


def test_warp_matrix_close_to_closed_form():
    rng = np.random.default_rng(0)
    for _ in range(50):
        c = rng.uniform(-100, 2000, 2).astype(np.float32)
        sw = np.float32(rng.uniform(5, 3000))
        s = np.array([sw, sw / np.float32(0.75)], np.float32)
        m = get_warp_matrix(c, s, (192, 256))
        k = 192 / float(sw)
        cx, cy = float(c[0]), float(c[1])
        closed = np.array([[k, 0, 96 - k * cx], [0, k, 128 - k * cy]])
        # float32 rounding of the 3 points (about |c| * 2**-24 image pixels each) perturbs the solved matrix
        # slightly (docs/MMPOSE_BEHAVIOUR.md, RTMPose): compare the crop positions of points near the box, in crop pixels
        np.testing.assert_allclose(m[:, :2], closed[:, :2], rtol=1e-5, atol=1e-9)
        pts = np.array([[[cx, cy], [cx - sw / 2, cy - sw / 1.5], [cx + sw / 2, cy + sw / 1.5]]])
        err = np.abs(apply_affine(pts, m) - apply_affine(pts, closed)).max()
        assert err <= 4 * k * (abs(cx) + abs(cy) + sw) * 2.0**-24 + 1e-9
        assert m.dtype == np.float64


@settings(max_examples=200, deadline=None)
@given(
    cx=st.floats(-500, 3000), cy=st.floats(-500, 3000), sw=st.floats(4, 4000),
    px=st.floats(-1000, 4000), py=st.floats(-1000, 4000),
)
def test_warp_then_inverse_warp_returns_the_point(cx, cy, sw, px, py):
    c = np.array([cx, cy], np.float32)
    s = np.array([sw, sw / 0.75], np.float32)
    m = get_warp_matrix(c, s, (192, 256))
    minv = get_warp_matrix(c, s, (192, 256), inv=True)
    p = np.array([[[px, py]]])
    q = apply_affine(p, m)
    mag = abs(px) + abs(py) + abs(cx) + abs(cy) + sw  # image-pixel magnitude; float32 ulp ~ mag * 2**-23
    ulp = mag * 2.0**-23
    k = 192 / float(s[0])
    # the exact algebraic inverse
    np.testing.assert_allclose(apply_affine(q, invert_affine(m)), p, atol=1e-9 * mag)
    # mmpose's own inverse matrix (solved from the same float32 points), up to float32 point rounding
    np.testing.assert_allclose(apply_affine(q, minv), p, atol=8 * ulp)
    # the decoder's crop -> image formula agrees with the inverse warp (float32 points, float32 result)
    fixed = fix_aspect_ratio(s[None], 0.75)
    back = crop_to_image(q.astype(np.float32), c[None], fixed, (192, 256))
    # mmpose's matrix takes its scale from float32 points near c: relative error ~ |c| * 2**-23 / sw, which
    # grows with the distance |p - c| (the closed-form decoder formula has none of it)
    scale_err = (abs(cx) + abs(cy) + sw) * 2.0**-23 / sw
    tol = 8 * ulp + 4 * (abs(px - cx) + abs(py - cy) + sw) * scale_err
    np.testing.assert_allclose(back, p, atol=tol)
    np.testing.assert_allclose(image_to_crop(back, c[None], fixed, (192, 256)), q, atol=k * tol + 1e-9)


def test_fixed_point_warp_identity_translation_and_border():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    ident = np.array([[[1.0, 0, 0], [0, 1.0, 0]]])
    np.testing.assert_array_equal(warp_crops(img, ident, (30, 40))[0], img)
    shift = np.array([[[1.0, 0, 5], [0, 1.0, -3]]])  # crop(x, y) = img(x - 5, y + 3)
    out = warp_crops(img, shift, (30, 40))[0]
    np.testing.assert_array_equal(out[:37, 5:], img[3:, :25])
    assert not out[:, :5].any() and not out[37:].any()  # constant 0 border
    # scale 2: crop pixel (2x, 2y) samples image pixel (x, y) exactly
    up = warp_crops(img, np.array([[[2.0, 0, 0], [0, 2.0, 0]]]), (60, 80))[0]
    np.testing.assert_array_equal(up[::2, ::2][:39, :29], img[:39, :29])


def test_fixed_point_warp_close_to_float_bilinear():
    """Against an independent float bilinear sampler, OpenCV's 1/32-pixel fixed point stays within a few levels."""
    yy, xx = np.mgrid[0:120, 0:160]
    img = np.stack([(127 + 120 * np.sin(xx / 9.0) * np.cos(yy / 7.0)),
                    (xx * 1.5) % 256, (yy * 2.0) % 256], -1).astype(np.uint8)
    c, s = np.array([[80.3, 60.7]], np.float32), np.array([[60.0, 80.0]], np.float32)  # inside the image
    m = warp_matrices(c, s, (48, 64))
    crop = warp_crops(img, m, (48, 64))[0].astype(np.float64)
    inv = invert_affine(m[0])
    gy, gx = np.mgrid[0:64, 0:48].astype(np.float64)
    sx = inv[0, 0] * gx + inv[0, 1] * gy + inv[0, 2]
    sy = inv[1, 0] * gx + inv[1, 1] * gy + inv[1, 2]
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    ax, ay = (sx - x0)[..., None], (sy - y0)[..., None]
    f = img.astype(np.float64)
    ref = (f[y0, x0] * (1 - ax) * (1 - ay) + f[y0, x0 + 1] * ax * (1 - ay)
           + f[y0 + 1, x0] * (1 - ax) * ay + f[y0 + 1, x0 + 1] * ax * ay)
    assert np.abs(crop - ref).max() <= 3.0
    assert np.mean(np.abs(crop - np.round(ref)) > 1) < 0.02


def test_degenerate_boxes_give_black_crops():
    img = np.full((50, 60, 3), 200, np.uint8)
    boxes = np.array([[10, 10, 10, 10], [np.nan, 0, 5, 5], [5, 5, 40, 45]], np.float32)
    b = preprocess(img, boxes, (48, 64), keep_crops=True)
    assert not b.crops[0].any() and not b.crops[1].any()
    assert b.crops[2].max() == 200


DEGENERATE_SIZES = [(1, 1), (1, 2000), (2000, 1), (1, 37), (37, 1), (5, 5), (16, 16), (2000, 3), (3, 2000)]


@pytest.mark.parametrize("hw", DEGENERATE_SIZES)
@pytest.mark.parametrize("warp_method", ["fixed_point", "opencv"])
def test_degenerate_frames_and_boxes_warp_without_error(hw, warp_method):
    """Frames a pixel wide, a single row, smaller than the crop; boxes of zero area, a few pixels, far larger
    than the frame, outside it, non-finite or huge: crops come out (black where there is nothing to sample),
    no exception and no numpy warning."""
    img = np.random.default_rng(1).integers(1, 256, hw + (3,), dtype=np.uint8)
    h, w = hw
    boxes = np.array([[0, 0, w, h], [0, 0, 0, 0], [1, 1, 1, 1], [0, 0, w, 0], [0, 0, 0, h], [0, 0, 1e-6, 1e-6],
                      [-1e4, -1e4, 1e4, 1e4], [w + 5, h + 5, w + 50, h + 90], [5, 5, -5, -5],
                      [np.inf, 0, 1, 1], [-np.inf, -np.inf, np.inf, np.inf], [np.nan, 0, 1, 1],
                      [0, 0, 3e38, 3e38]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = preprocess(img, boxes, (48, 64), warp_method=warp_method, keep_crops=True)
        back = crop_to_image(np.full((len(boxes), 1, 2), 10.0, np.float32), b.centers, b.scales, b.input_size)
        whole = preprocess(img, None, (48, 64), whole_image_if_empty=True, warp_method=warp_method)
    assert b.inputs.shape == (len(boxes), 3, 64, 48) and np.isfinite(b.inputs).all()
    assert b.crops[0].any()  # the whole frame is sampled, however thin
    for i in (1, 2, 9, 10, 11, 12):  # no extent, non-finite or overflowing: black crops
        assert not b.crops[i].any(), i
    assert np.isfinite(back[:3]).all() and back.shape == (len(boxes), 1, 2)
    np.testing.assert_array_equal(whole.boxes, [[0, 0, w, h]])
    np.testing.assert_array_equal(whole.inputs, b.inputs[:1])


def test_empty_boxes():
    img = np.zeros((50, 60, 3), np.uint8)
    b = preprocess(img, np.zeros((0, 4)), (48, 64))
    assert len(b) == 0 and b.inputs.shape == (0, 3, 64, 48)
    b = preprocess(img, None, (48, 64), whole_image_if_empty=True)
    np.testing.assert_array_equal(b.boxes, [[0, 0, 60, 50]])
    np.testing.assert_array_equal(b.centers, [[30, 25]])


def test_normalize_crops_channel_orders():
    crops = np.zeros((2, 4, 5, 3), np.uint8)
    crops[..., 0], crops[..., 1], crops[..., 2] = 10, 20, 30  # B, G, R
    rgb = normalize_crops(crops, (1, 2, 3), (2, 4, 8), "rgb")
    np.testing.assert_allclose(rgb[:, :, 0, 0], [[(30 - 1) / 2, (20 - 2) / 4, (10 - 3) / 8]] * 2, rtol=1e-6)
    bgr = normalize_crops(crops, (1, 2, 3), (2, 4, 8), "bgr")
    np.testing.assert_allclose(bgr[:, :, 0, 0], [[(10 - 1) / 2, (20 - 2) / 4, (30 - 3) / 8]] * 2, rtol=1e-6)
    raw = normalize_crops(crops, (1, 2, 3), (2, 4, 8), "rgb", normalize=False)
    np.testing.assert_array_equal(raw[0, :, 0, 0], [30, 20, 10])
    with pytest.raises(ValueError, match="channel_order"):
        normalize_crops(crops, (1, 2, 3), (2, 4, 8), "rgba")


def test_bad_inputs():
    img = np.zeros((50, 60, 3), np.uint8)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        preprocess(img, np.zeros((3, 3)), (48, 64))
    with pytest.raises(ValueError, match="uint8"):
        preprocess(img.astype(np.float32), np.zeros((1, 4)), (48, 64))
    with pytest.raises(ValueError, match="warp_method"):
        warp_crops(img, np.zeros((1, 2, 3)), (4, 4), "nearest")
