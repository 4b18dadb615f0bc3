"""The one frame check (pose3d_rt.frames.check_frame) and degenerate frames through the whole pipeline: with the
synthetic engines (fakes) and with the real networks exported from the fixture checkpoints (slow). A frame either
runs (no person, or what the models find) or fails with one InputError line, never a numpy/OpenCV traceback."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import requires_torch
from pose3d_rt.errors import InputError
from pose3d_rt.frames import MAX_SIDE, check_frame
from pose3d_rt.io.sources import FrameSource, open_source
from pose3d_rt.pipeline import Pose3DPipeline

from benchmarks.fakes import LinearLifter, ScriptedDetector, TemplatePose, walking_boxes

# (height, width): a few pixels, one row, one column, one pixel, smaller than a crop / the detector's stride,
# very elongated both ways, the largest side OpenCV's warps take
DEGENERATE = [(3, 4), (1, 640), (480, 1), (1, 1), (5, 5), (16, 16), (2000, 3), (3, 2000), (1, MAX_SIDE)]


def _ids(sizes):
    return [f"{h}x{w}" for h, w in sizes]


# -- check_frame -----------------------------------------------------------------------------------------------
def test_a_bgr_frame_passes_unchanged_without_a_copy():
    frame = np.zeros((4, 6, 3), np.uint8)
    assert check_frame(frame) is frame


@pytest.mark.parametrize("shape", [(4, 6), (4, 6, 1)], ids=["HxW", "HxWx1"])
def test_gray_becomes_bgr(shape):
    gray = np.arange(24, dtype=np.uint8).reshape(shape)
    out = check_frame(gray)
    assert out.shape == (4, 6, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray.reshape(4, 6))


def test_bgra_drops_alpha_and_views_become_contiguous():
    bgra = np.random.default_rng(0).integers(0, 255, (4, 6, 4), np.uint8)
    out = check_frame(bgra)
    assert out.shape == (4, 6, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, bgra[..., :3])
    flipped = bgra[:, ::-1, :3]  # a view with negative strides (what cv2 refuses)
    out = check_frame(flipped)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, flipped)


@pytest.mark.parametrize("frame, needle", [
    (np.zeros((4, 6, 3), np.uint16), r"frame: dtype uint16 .*16-bit image.*>> 8"),
    (np.zeros((4, 6, 3), np.float32), r"frame: dtype float32 .*float image.*\* 255"),
    (np.zeros((4, 6, 3), np.float64), r"dtype float64"),
    (np.zeros((4, 6), bool), r"dtype bool .*boolean mask"),
    (np.zeros((4, 6, 3), np.int32), r"dtype int32 .*astype\(np.uint8\)"),
    (np.zeros((4, 6, 2), np.uint8), r"expected shape \(H, W, 3\).*got \(4, 6, 2\)"),
    (np.zeros((4, 6, 5), np.uint8), r"got \(4, 6, 5\)"),
    (np.zeros((2, 4, 6, 3), np.uint8), r"got \(2, 4, 6, 3\)"),
    (np.zeros(6, np.uint8), r"got \(6,\)"),
    (np.zeros((0, 6, 3), np.uint8), r"empty image"),
    (np.zeros((4, 0), np.uint8), r"empty image"),
    (np.zeros((1, MAX_SIDE + 1, 3), np.uint8), r"too large"),
    ([[0, 0, 0]], r"expected a BGR uint8 numpy array.*got list"),
    (None, r"got NoneType"),
], ids=["uint16", "float32", "float64", "bool", "int32", "2ch", "5ch", "4d", "1d", "empty", "empty-gray",
        "too-large", "list", "none"])
def test_unusable_frames_are_one_line_input_errors(frame, needle):
    with pytest.raises(InputError, match=needle) as info:
        check_frame(frame)
    assert "\n" not in str(info.value)


def test_the_error_names_the_frame():
    with pytest.raises(InputError, match=r"^frame 7: dtype"):
        check_frame(np.zeros((2, 2), np.float32), "frame 7")


def test_array_sources_go_through_the_check():
    src = open_source(np.zeros((5, 7), np.uint8))
    assert (src.info.width, src.info.height) == (7, 5)
    assert next(iter(src)).shape == (5, 7, 3)
    with pytest.raises(InputError, match="image array: dtype uint16"):
        open_source(np.zeros((5, 7, 3), np.uint16))


# -- through the pipeline, synthetic engines --------------------------------------------------------------------
def _fake_pipe(mode):
    return Pose3DPipeline(ScriptedDetector(walking_boxes(2, 320), 320), TemplatePose(), LinearLifter(9), mode=mode)


def _stream(pipe, frames):
    h, w = frames[0].shape[:2]
    return list(pipe.stream(FrameSource.from_frames(frames, w, h, total_frames=len(frames)), keep_frames=True))


@pytest.mark.parametrize("mode", ["default", "mmpose"])
@pytest.mark.parametrize("hw", DEGENERATE, ids=_ids(DEGENERATE))
def test_degenerate_frames_run_through_the_pipeline(hw, mode):
    frames = [np.full(hw + (3,), 30 * i, np.uint8) for i in range(4)]
    res = _stream(_fake_pipe(mode), frames)
    assert [r.frame_index for r in res] == [0, 1, 2, 3]
    h, w = hw
    for r in res:
        assert r.image_size == (w, h) and r.frame.shape == (h, w, 3)
        assert len(r) == len(r.keypoints_3d) == len(r.track_ids)
        assert np.isfinite(r.boxes).all() and np.isfinite(r.keypoints_2d).all()
    if mode == "mmpose":
        assert all(len(r) >= 1 for r in res)  # a person, or the whole-image person of Q7


def test_gray_and_bgra_frames_give_the_results_of_their_bgr_frame():
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 255, (48, 64), np.uint8)
    bgr = np.repeat(gray[..., None], 3, axis=2)
    bgra = np.concatenate([bgr, np.full((48, 64, 1), 7, np.uint8)], axis=2)
    ref = _fake_pipe("default")(bgr)
    for image in (gray, gray[..., None], bgra):
        got = _fake_pipe("default")(image)
        np.testing.assert_array_equal(got.keypoints_2d, ref.keypoints_2d)
        np.testing.assert_array_equal(got.keypoints_3d, ref.keypoints_3d)


@pytest.mark.parametrize("bad", [np.zeros((8, 8, 3), np.uint16), np.zeros((8, 8, 3), np.float32),
                                 np.zeros((8, 8, 2), np.uint8), np.zeros((0, 8, 3), np.uint8), "not a frame"],
                         ids=["uint16", "float32", "2ch", "empty", "str"])
def test_a_bad_frame_in_a_stream_is_one_line_naming_the_frame(bad):
    frames = [np.zeros((8, 8, 3), np.uint8), bad]
    with pytest.raises(InputError, match=r"^frame 1: ") as info:
        _stream(_fake_pipe("default"), frames)
    assert "\n" not in str(info.value)


def test_a_bad_image_array_fails_before_any_model_runs():
    det = ScriptedDetector(walking_boxes(1, 320), 320)
    pipe = Pose3DPipeline(det, TemplatePose(), LinearLifter(9))
    with pytest.raises(InputError, match="image array: dtype float32"):
        pipe(np.zeros((8, 8, 3), np.float32))
    assert det.calls == 0


# -- through the pipeline, the real networks -------------------------------------------------------------------
@pytest.fixture(scope="module")
def onnx_models(checkpoints, tmp_path_factory):
    from pose3d_rt.export import export_onnx
    from pose3d_rt.hub import lifter_export_options

    out = tmp_path_factory.mktemp("frames_onnx")
    names = ("rtmdet_nano_person", "rtmpose_t_body8_256x192", "videopose3d_27f_supv")
    paths = [export_onnx(checkpoints[n], out / f"{n}.onnx") for n in names[:2]]
    lifters = {mode: export_onnx(checkpoints[names[2]], out / f"{names[2]}_{mode}.onnx",
                                 **lifter_export_options(mode=mode)) for mode in ("default", "mmpose")}
    return paths, lifters


@requires_torch
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["default", "mmpose"])
def test_degenerate_frames_run_through_the_real_networks(onnx_models, mode):
    (det, pose), lifters = onnx_models
    pipe = Pose3DPipeline(str(det), str(pose), str(lifters[mode]), mode=mode, threads=1)
    rng = np.random.default_rng(0)
    for h, w in DEGENERATE:
        frames = [rng.integers(0, 255, (h, w, 3), np.uint8) for _ in range(3)]
        res = _stream(pipe, frames)
        assert [r.frame_index for r in res] == [0, 1, 2], (h, w)
        for r in res:
            assert np.isfinite(r.keypoints_2d).all() and r.keypoints_3d.shape == (len(r), 17, 3), (h, w)
        image = pipe(frames[0])  # the one-image path (RGB to the models in mmpose mode, Q6)
        assert image.image_size == (w, h)
