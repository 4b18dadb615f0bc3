"""RTMDet stage (pose3d_rt.rtmdet) against the mmdet 3.3.0 reference fixtures (tests/fixtures/det/)."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, List

import cv2
import numpy as np
import pytest
from conftest import FIXTURE_IMAGES
from pose3d_rt.engines import Engine, TensorSpec
from pose3d_rt.errors import InputError, ModelError
from pose3d_rt.rtmdet import (
    Detections,
    Detector,
    Letterbox,
    PostprocessConfig,
    PreprocessConfig,
    decode_boxes_scores,
    decode_dets_labels,
    decode_raw_levels,
    filter_detections,
    letterbox,
    parse_detector_metadata,
)
from pose3d_rt.rtmdet.preprocess import preprocess

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DET = FIXTURES / "det"
SUMMARY = json.loads((DET / "summary.json").read_text())
IMAGES = FIXTURE_IMAGES
MODELS = ("rtmdet_m_person", "rtmdet_nano_person")
CASES = [(m, i) for m in MODELS for i in IMAGES]
MEAN = np.array([103.53, 116.28, 123.675], np.float32)
STD = np.array([57.375, 57.12, 58.395], np.float32)


def load_case(model: str, image: str):
    ref = dict(np.load(DET / model / f"{image}.npz"))
    frame = cv2.imread(str(FIXTURES / IMAGES[image]), cv2.IMREAD_COLOR)
    assert frame is not None, IMAGES[image]
    return ref, frame


def fixture_post_cfg(model: str) -> PostprocessConfig:
    tc = SUMMARY[model]["test_cfg"]
    return PostprocessConfig(score_thr=tc["score_thr"], nms_iou_thr=tc["nms"]["iou_threshold"],
                             nms_pre=tc["nms_pre"], max_per_img=tc["max_per_img"],
                             min_bbox_size=tc["min_bbox_size"],
                             strides=tuple(s[0] for s in SUMMARY[model]["strides"]))


def input_size(ref) -> int:
    return int(ref["pipeline_uint8"].shape[1])


def reference_input(ref) -> np.ndarray:
    """The fixture's documented formula for the float network input."""
    return ((ref["pipeline_uint8"].astype(np.float32) - MEAN[:, None, None]) / STD[:, None, None])[None]


def assert_matches_reference(det: Detections, ref, box_tol=1e-3, score_tol=1e-5):
    assert len(det) == len(ref["scores"]), (len(det), len(ref["scores"]))
    np.testing.assert_array_equal(det.labels, ref["labels"])
    np.testing.assert_allclose(det.boxes, ref["bboxes"], rtol=0, atol=box_tol)
    np.testing.assert_allclose(det.scores, ref["scores"], rtol=0, atol=score_tol)
    assert np.all(np.diff(det.scores) <= 0)


# ---------------------------------------------------------------------------------------------------------
# (1) preprocessing


@pytest.mark.parametrize("model,image", CASES)
def test_preprocess_matches_pipeline_uint8(model, image):
    ref, frame = load_case(model, image)
    S = input_size(ref)
    canvas, lb = letterbox(frame, (S, S), 114)
    diff = np.abs(canvas.transpose(2, 0, 1).astype(np.int16) - ref["pipeline_uint8"].astype(np.int16))
    # OpenCV 5.0 here vs 4.11 for the fixtures; measured: max 0, 0 % differing pixels on all 10 files
    assert diff.max() <= 1, f"max |d| = {diff.max()}, differing fraction {np.mean(diff > 0):.4f}"
    np.testing.assert_array_equal(lb.scale_factor, ref["scale_factor"])  # exact (new_w / w, new_h / h)
    assert lb.orig_hw == tuple(ref["ori_shape"])
    assert lb.input_hw == tuple(ref["pad_shape"]) == tuple(ref["batch_input_shape"])
    # float input: the whole preprocess() against the documented formula
    x, lbs = preprocess(frame, PreprocessConfig(input_hw=(S, S)))
    assert x.shape == (1, 3, S, S) and x.dtype == np.float32
    err = np.abs(x - reference_input(ref))
    assert err.max() <= 1.0 / 57.12 + 1e-6  # at most one grey level
    np.testing.assert_array_equal(x[0][diff == 0], reference_input(ref)[0][diff == 0])
    assert lbs[0] == lb


@pytest.mark.parametrize("model,image", CASES)
def test_normalisation_formula_is_bit_exact(model, image):
    """Feeding the fixture's own padded uint8 canvas (already S x S: no resize) gives exactly the formula."""
    ref, _ = load_case(model, image)
    S = input_size(ref)
    canvas = np.ascontiguousarray(ref["pipeline_uint8"].transpose(1, 2, 0))
    x, lbs = preprocess([canvas], PreprocessConfig(input_hw=(S, S)))
    np.testing.assert_array_equal(x, reference_input(ref))
    assert lbs[0].scale_factor == (1.0, 1.0)


def test_letterbox_closed_form_non_square_and_upscale():
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[:, :, 1] = 200
    canvas, lb = letterbox(frame, (384, 640), (1, 2, 3))
    # f = min(384/100, 640/200) = 3.2 -> 640 x 320
    assert lb == Letterbox((100, 200), (320, 640), (384, 640), (3.2, 3.2))
    assert canvas.shape == (384, 640, 3)
    np.testing.assert_array_equal(canvas[:320, :, 1], 200)
    np.testing.assert_array_equal(canvas[320:], np.broadcast_to(np.array([1, 2, 3], np.uint8), (64, 640, 3)))
    # round-half-up of the resized size (331 * 0.64 = 211.84 -> 212, truncation would give 211) and two
    # separate factors computed from the integer size
    _, lb2 = letterbox(np.zeros((331, 500, 3), np.uint8), (320, 320))
    assert lb2.resized_hw == (212, 320)
    assert lb2.scale_factor == (320 / 500, 212 / 331)


def test_preprocess_batch_and_rgb_order():
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), rng.integers(0, 256, (64, 32, 3), dtype=np.uint8)]
    x, lbs = preprocess(frames, PreprocessConfig(input_hw=(64, 64)))
    assert x.shape == (2, 3, 64, 64)
    for i, fr in enumerate(frames):
        xi, _ = preprocess(fr, PreprocessConfig(input_hw=(64, 64)))
        np.testing.assert_array_equal(x[i], xi[0])
    assert [lb.scale_factor for lb in lbs] == [(1.0, 1.0), (1.0, 1.0)]
    np.testing.assert_array_equal(x[1, :, :, 32:], ((114 - MEAN) / STD)[:, None, None] * np.ones((1, 64, 32), np.float32))
    rgb, _ = preprocess(frames, PreprocessConfig(input_hw=(64, 64), channel_order="rgb", mean=tuple(MEAN[::-1]),
                                                 std=tuple(STD[::-1])))
    np.testing.assert_array_equal(rgb, x[:, ::-1])
    # non-contiguous views (crop, channel flip) are accepted and give the same as their copies
    view = frames[0][::2, 10:, ::-1]
    np.testing.assert_array_equal(preprocess(view, PreprocessConfig(input_hw=(64, 64)))[0],
                                  preprocess(view.copy(), PreprocessConfig(input_hw=(64, 64)))[0])
    raw, _ = preprocess(frames, PreprocessConfig(input_hw=(64, 64), normalize=False))
    np.testing.assert_array_equal(raw[0, :, :48], frames[0].transpose(2, 0, 1).astype(np.float32))


@pytest.mark.parametrize("bad,what", [
    (np.zeros((10, 10, 3), np.float32), "float32"),
    (np.zeros((10, 10, 2), np.uint8), "(10, 10, 2)"),
    (np.zeros((0, 10, 3), np.uint8), "(0, 10, 3)"),
    ([[1, 2, 3]], "list"),
])
def test_frame_validation(bad, what):
    """The one frame check (pose3d_rt.frames) names the frame of the batch that is wrong."""
    with pytest.raises(InputError, match=r"^frames\[1\]: ") as e:
        preprocess([np.zeros((8, 8, 3), np.uint8), bad])
    assert what in str(e.value) and "\n" not in str(e.value)
    assert isinstance(e.value, ValueError)


def test_gray_and_bgra_frames_are_letterboxed_as_bgr():
    rng = np.random.default_rng(3)
    gray = rng.integers(0, 256, (30, 40), dtype=np.uint8)
    bgr = np.repeat(gray[:, :, None], 3, axis=2)
    bgra = np.concatenate([bgr, np.full((30, 40, 1), 7, np.uint8)], axis=2)
    cfg = PreprocessConfig(input_hw=(64, 64))
    want, _ = preprocess([bgr], cfg)
    for frame in (gray, gray[:, :, None], bgra):
        np.testing.assert_array_equal(preprocess([frame], cfg)[0], want)
    np.testing.assert_array_equal(preprocess(gray, cfg)[0], want)  # one array = one frame


@pytest.mark.parametrize("hw", [(1, 1), (1, 2000), (2000, 1), (1, 37), (37, 1), (5, 5), (16, 16), (7, 33),
                                (2000, 3), (3, 2000)])
@pytest.mark.parametrize("input_hw", [(640, 640), (256, 192)])
def test_letterbox_degenerate_sizes(hw, input_hw):
    """Frames a few pixels wide, a single row or column, or around the detector's stride letterbox without error:
    each side resized to at least one pixel, the rest padded, the scale factors consistent with the resize."""
    frame = np.random.default_rng(0).integers(0, 256, hw + (3,), dtype=np.uint8)
    canvas, lb = letterbox(frame, input_hw)
    assert canvas.shape == input_hw + (3,) and canvas.dtype == np.uint8
    (rh, rw), (h, w) = lb.resized_hw, lb.orig_hw
    assert (h, w) == hw and 1 <= rh <= input_hw[0] and 1 <= rw <= input_hw[1]
    assert lb.scale_factor == (rw / w, rh / h)
    assert (canvas[rh:] == 114).all() and (canvas[:, rw:] == 114).all()
    x, lbs = preprocess([frame, frame], PreprocessConfig(input_hw=input_hw))
    assert x.shape == (2, 3) + input_hw and np.isfinite(x).all() and lbs[0] == lb


# ---------------------------------------------------------------------------------------------------------
# (2) decoding the raw per-level maps, (3) the flattened form


def raw_levels(ref):
    return [ref[f"cls_score_l{i}"] for i in range(3)], [ref[f"bbox_pred_l{i}"] for i in range(3)]


def fixture_letterbox(ref) -> Letterbox:
    return Letterbox(tuple(int(v) for v in ref["ori_shape"]), tuple(int(v) for v in ref["img_shape"]),
                     tuple(int(v) for v in ref["pad_shape"]), tuple(float(v) for v in ref["scale_factor"]))


@pytest.mark.parametrize("model,image", CASES)
def test_decode_raw_levels_matches_mmdet(model, image):
    ref, frame = load_case(model, image)
    _, lbs = preprocess(frame, PreprocessConfig(input_hw=(input_size(ref),) * 2))
    cls, reg = raw_levels(ref)
    det = decode_raw_levels(cls, reg, lbs, fixture_post_cfg(model))[0]
    assert_matches_reference(det, ref)
    # the demo's filter, on the reference result itself: exact
    ref_det = Detections(ref["bboxes"], ref["scores"], ref["labels"])
    person_ref = filter_detections(ref_det, cat_id=0, bbox_thr=0.3)
    np.testing.assert_array_equal(person_ref.boxes, ref["person_bboxes_thr"])
    np.testing.assert_array_equal(person_ref.scores, ref["person_scores_thr"])
    # ... and on ours: same rows
    person = filter_detections(det, 0, 0.3)
    assert len(person) == len(ref["person_scores_thr"]) == SUMMARY[model]["images"][image]["n_person_thr"]
    np.testing.assert_allclose(person.boxes, ref["person_bboxes_thr"], rtol=0, atol=1e-3)
    np.testing.assert_allclose(person.scores, ref["person_scores_thr"], rtol=0, atol=1e-5)


def independent_flatten(ref, S: int):
    """boxes (1, A, 4) / scores (1, A, C) from the raw maps, written out directly from docs/MMPOSE_BEHAVIOUR.md, RTMDet."""
    boxes, scores = [], []
    for lvl, s in enumerate((8, 16, 32)):
        c = ref[f"cls_score_l{lvl}"][0].astype(np.float64)  # (C, H, W)
        r = ref[f"bbox_pred_l{lvl}"][0]  # (4, H, W)
        hf, wf = c.shape[1:]
        assert (hf, wf) == (S // s, S // s)
        ii, jj = np.indices((hf, wf))
        px, py = (jj * s).astype(np.float32).ravel(), (ii * s).astype(np.float32).ravel()
        ltrb = r.reshape(4, -1)
        boxes.append(np.stack([px - ltrb[0], py - ltrb[1], px + ltrb[2], py + ltrb[3]], axis=1))
        scores.append((1.0 / (1.0 + np.exp(-c.reshape(c.shape[0], -1).T))).astype(np.float32))
    return np.concatenate(boxes)[None].astype(np.float32), np.concatenate(scores)[None]


@pytest.mark.parametrize("model,image", CASES)
def test_decode_flattened_boxes_scores_matches_mmdet(model, image):
    ref, _ = load_case(model, image)
    S = input_size(ref)
    boxes, scores = independent_flatten(ref, S)
    assert boxes.shape[1] == sum((S // s) ** 2 for s in (8, 16, 32))
    det = decode_boxes_scores(boxes, scores, [fixture_letterbox(ref)], fixture_post_cfg(model))[0]
    assert_matches_reference(det, ref)


def test_boxes_entirely_in_padding_are_kept_by_default_and_optionally_dropped():
    """mmdet clips only to the padded canvas, so boxes below a 384-high frame survive (nano, f018)."""
    ref, _ = load_case("rtmdet_nano_person", "video_f018")
    cls, reg = raw_levels(ref)
    lb = fixture_letterbox(ref)
    h, w = lb.orig_hw
    b = ref["bboxes"]
    outside = (b[:, 0] >= w) | (b[:, 1] >= h) | (b[:, 2] <= 0) | (b[:, 3] <= 0)
    assert 0 < outside.sum() < len(b)  # the case has boxes in the padding and boxes on the frame
    cfg = fixture_post_cfg("rtmdet_nano_person")
    assert len(decode_raw_levels(cls, reg, lb, cfg)[0]) == len(b)
    det = decode_raw_levels(cls, reg, lb, replace(cfg, drop_outside_image=True))[0]
    # dropping happens before NMS, so the inside boxes could only gain survivors; here none was suppressed by
    # an outside box, hence the reference minus the outside rows comes first, in score order. Rows after it (if
    # any) are lower-scored inside boxes that take the slots freed under the max_per_img cap.
    inside = b[~outside]
    assert len(inside) <= len(det) <= cfg.max_per_img
    np.testing.assert_allclose(det.boxes[:len(inside)], inside, atol=1e-3)
    assert ((det.boxes[:, 0] < w) & (det.boxes[:, 1] < h) & (det.boxes[:, 2] > 0) & (det.boxes[:, 3] > 0)).all()


# ---------------------------------------------------------------------------------------------------------
# synthetic decode cases with closed-form answers


def one_level_maps(logits: np.ndarray, ltrb: np.ndarray):
    """Three levels for a 32x32 input (4x4, 2x2, 1x1 maps); the given level-0 cells, others at -inf-ish."""
    cls = [np.full((1, 1, 4, 4), -20, np.float32), np.full((1, 1, 2, 2), -20, np.float32),
           np.full((1, 1, 1, 1), -20, np.float32)]
    reg = [np.full((1, 4, 4, 4), 2, np.float32), np.full((1, 4, 2, 2), 2, np.float32),
           np.full((1, 4, 1, 1), 2, np.float32)]
    cls[0][0, 0] = logits
    reg[0][0] = ltrb
    return cls, reg


def test_decode_closed_form_nms_pre_and_ties():
    lb = Letterbox((16, 16), (32, 32), (32, 32), (2.0, 2.0))
    logits = np.full((4, 4), -20, np.float32)
    logits[0, 0], logits[0, 3], logits[3, 3], logits[2, 1] = 2.0, 1.0, 1.0, 3.0  # two exact ties at 1.0
    ltrb = np.full((4, 4, 4), 2, np.float32).transpose(2, 0, 1).copy()  # every box 4x4 around its prior
    cls, reg = one_level_maps(logits, ltrb)
    det = decode_raw_levels(cls, reg, lb, PostprocessConfig(score_thr=0.05, nms_iou_thr=0.5, strides=(8, 16, 32)))[0]
    sig = lambda v: np.float32(1 / (1 + np.exp(-v)))  # noqa: E731
    # priors (x, y) = (j*8, i*8); box = prior +- 2, clipped to [0, 32], divided by 2
    np.testing.assert_allclose(det.boxes, np.array([[3, 7, 5, 9], [0, 0, 1, 1], [11, 0, 13, 1], [11, 11, 13, 13]],
                                                   np.float32), atol=1e-6)
    np.testing.assert_allclose(det.scores, [sig(3.0), sig(2.0), sig(1.0), sig(1.0)], rtol=1e-6)
    # (the tie (0, 3) vs (3, 3) is broken by the lower flattened prior index first)
    # nms_pre is per level: keep the 2 best of level 0 only
    det2 = decode_raw_levels(cls, reg, lb, PostprocessConfig(score_thr=0.05, nms_pre=2, strides=(8, 16, 32)))[0]
    np.testing.assert_allclose(det2.scores, [sig(3.0), sig(2.0)], rtol=1e-6)
    det3 = decode_raw_levels(cls, reg, lb, PostprocessConfig(score_thr=float(sig(2.0)), strides=(8, 16, 32)))[0]
    np.testing.assert_allclose(det3.scores, [sig(3.0)], rtol=1e-6)  # strict threshold
    det4 = decode_raw_levels(cls, reg, lb, PostprocessConfig(score_thr=0.05, max_per_img=3, strides=(8, 16, 32)))[0]
    assert len(det4) == 3


def test_decode_nms_and_classes_closed_form():
    lb = Letterbox((32, 32), (32, 32), (32, 32), (1.0, 1.0))
    # two classes; boxes A (0,0,10,10) score .9 cls0, B (1,0,11,10) score .8 cls0 (IoU 9/11 > .6 -> suppressed),
    # C = B geometry but class 1 (kept), D (20,20,30,30) .7 cls0 (kept)
    boxes = np.zeros((1, 21, 4), np.float32)
    boxes[0, :] = [0, 0, 1, 1]
    scores = np.zeros((1, 21, 2), np.float32)
    boxes[0, 0], scores[0, 0, 0] = [0, 0, 10, 10], 0.9
    boxes[0, 1], scores[0, 1, 0], scores[0, 1, 1] = [1, 0, 11, 10], 0.8, 0.75
    boxes[0, 5], scores[0, 5, 0] = [20, 20, 30, 30], 0.7
    det = decode_boxes_scores(boxes, scores, lb, PostprocessConfig(strides=(8, 16, 32)))[0]
    np.testing.assert_array_equal(det.labels, [0, 1, 0])
    np.testing.assert_array_equal(det.scores, np.float32([0.9, 0.75, 0.7]))
    np.testing.assert_array_equal(det.boxes, [[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]])
    with pytest.raises(ValueError, match="have 20 priors"):
        decode_boxes_scores(boxes[:, :20], scores[:, :20], lb, PostprocessConfig())


def test_degenerate_candidates_never_crash_and_are_counted(caplog):
    lb = Letterbox((16, 16), (32, 32), (32, 32), (2.0, 2.0))
    logits = np.full((4, 4), -20, np.float32)
    logits[0, 0] = 1.0  # good box
    logits[1, 1] = np.nan  # NaN score
    logits[2, 2] = 2.0  # NaN distance below
    logits[3, 0] = 3.0  # inverted box (negative distances)
    logits[0, 2] = 4.0  # inf distance: non-finite box
    ltrb = np.full((4, 4, 4), 2, np.float32)
    ltrb[2, 2, 1] = np.nan
    ltrb[3, 0] = [-3, -3, -3, -3]
    ltrb[0, 2, 2] = np.inf
    cls, reg = one_level_maps(logits, ltrb.transpose(2, 0, 1).copy())
    with caplog.at_level(logging.DEBUG, logger="pose3d_rt.rtmdet.decode"):
        det = decode_raw_levels(cls, reg, lb, PostprocessConfig(strides=(8, 16, 32)))[0]
    np.testing.assert_allclose(det.boxes, [[0, 0, 1, 1]], atol=1e-6)
    msgs = [r.getMessage() for r in caplog.records if r.name == "pose3d_rt.rtmdet.decode"]
    assert len(msgs) == 1 and "dropped 4 " in msgs[0], msgs


# ---------------------------------------------------------------------------------------------------------
# (4) mmdeploy end2end outputs


def test_decode_dets_labels_closed_form(caplog):
    # frame 100 x 200 (h x w) into 320: f = 1.6, resized 320 x 160, factors (1.6, 1.6)
    _, lb = letterbox(np.zeros((100, 200, 3), np.uint8), (320, 320))
    assert lb.scale_factor == (1.6, 1.6)
    dets = np.array([[
        [32, 16, 64, 48, 0.9],      # kept -> (20, 10, 40, 30)
        [0, 0, 400, 320, 0.6],      # kept, not clipped -> (0, 0, 250, 200)
        [16, 16, 32, 32, 0.04],     # below the application threshold
        [50, 50, 40, 60, 0.8],      # inverted: degenerate
        [np.nan, 0, 10, 10, 0.7],   # NaN: degenerate
        [10, 10, 20, 20, 0.5],      # padding (label -1, TensorRT plugin)
        [0, 0, 0, 0, 0.0],          # mmdeploy's appended zero row
    ]], np.float32)
    labels = np.array([[0, 2, 0, 0, 0, -1, 0]], np.int32)
    with caplog.at_level(logging.DEBUG, logger="pose3d_rt.rtmdet.decode"):
        det = decode_dets_labels(dets, labels, [lb], score_thr=0.05)[0]
    np.testing.assert_allclose(det.boxes, [[20, 10, 40, 30], [0, 0, 250, 200]], rtol=1e-6)
    np.testing.assert_array_equal(det.scores, np.float32([0.9, 0.6]))
    np.testing.assert_array_equal(det.labels, [0, 2])
    assert det.labels.dtype == np.int64
    assert any("dropped 2 " in r.getMessage() for r in caplog.records)
    # int64 labels, unsorted rows and outside-image option
    dets2 = np.array([[[10, 10, 20, 20, 0.3], [400, 300, 480, 320, 0.7]]], np.float32)
    d2 = decode_dets_labels(dets2, np.array([[1, 0]], np.int64), lb, score_thr=0.05)[0]
    np.testing.assert_array_equal(d2.scores, np.float32([0.7, 0.3]))
    d3 = decode_dets_labels(dets2, np.array([[1, 0]], np.int64), lb, score_thr=0.05, drop_outside_image=True)[0]
    np.testing.assert_array_equal(d3.scores, np.float32([0.3]))


# ---------------------------------------------------------------------------------------------------------
# (5) the Detector class with fake engines


@dataclass
class FakeEngine(Engine):
    respond: Callable[[np.ndarray], Dict[str, np.ndarray]] = None
    calls: List[np.ndarray] = field(default_factory=list)

    def run(self, inputs):
        x = inputs[self.inputs[0].name] if isinstance(inputs, dict) else inputs
        self.calls.append(x)
        return self.respond(x)


def raw_engine(refs, S, batch="N", metadata=None, path="rtmdet_raw.onnx"):
    """Returns the fixtures' raw maps for whichever reference inputs it receives (checks the input too)."""
    names = [f"cls_score_l{i}" for i in range(3)] + [f"bbox_pred_l{i}" for i in range(3)]
    table = [(reference_input(r)[0], r) for r in refs]

    def respond(x):
        out = {n: [] for n in names}
        for xi in x:
            match = [r for inp, r in table if np.array_equal(inp, xi)]
            assert match, "the engine received an input that is not the fixture formula"
            for n in names:
                out[n].append(match[0][n][0])
        return {n: np.stack(v) for n, v in out.items()}

    c = refs[0]["cls_score_l0"].shape[1]
    outputs = [TensorSpec(f"cls_score_l{i}", (batch, c, S // s, S // s), np.float32) for i, s in enumerate((8, 16, 32))]
    outputs += [TensorSpec(f"bbox_pred_l{i}", (batch, 4, S // s, S // s), np.float32) for i, s in enumerate((8, 16, 32))]
    return FakeEngine(path=path, inputs=[TensorSpec("input", (batch, 3, S, S), np.float32)], outputs=outputs,
                      metadata=metadata or {}, respond=respond)


@pytest.mark.parametrize("model", MODELS)
def test_detector_end_to_end_raw_levels_batched(model):
    cases = [load_case(model, i) for i in IMAGES]
    refs = [r for r, _ in cases]
    S = input_size(refs[0])
    eng = raw_engine(refs, S, metadata={"family": "rtmdet", "input_size": f"{S},{S}", "output_format": "raw_levels"})
    det = Detector(eng)
    assert det.output_format == "raw_levels" and det.input_hw == (S, S)
    results = det([f for _, f in cases])
    assert len(eng.calls) == 1 and eng.calls[0].shape == (5, 3, S, S)  # one batched engine call
    for res, ref in zip(results, refs):
        assert_matches_reference(res, ref)
    single = det(cases[0][1])
    assert isinstance(single, Detections)
    assert_matches_reference(single, refs[0])


def test_detector_static_batch_one_runs_frame_by_frame():
    cases = [load_case("rtmdet_nano_person", i) for i in ("video_f003", "video_f041")]
    eng = raw_engine([r for r, _ in cases], 320, batch=1)  # static (1, 3, 320, 320), no metadata
    det = Detector(eng)
    assert det.input_hw == (320, 320)  # from the static input shape
    results = det([f for _, f in cases])
    assert [c.shape[0] for c in eng.calls] == [1, 1]
    for res, (ref, _) in zip(results, cases):
        assert_matches_reference(res, ref)


def test_detector_boxes_scores_engine():
    ref, frame = load_case("rtmdet_m_person", "still_group_960x600")
    boxes, scores = independent_flatten(ref, 640)
    eng = FakeEngine(path="ours.onnx", inputs=[TensorSpec("input", ("N", 3, 640, 640), np.float32)],
                     outputs=[TensorSpec("boxes", ("N", 8400, 4), np.float32),
                              TensorSpec("scores", ("N", 8400, 1), np.float32)],
                     metadata={"family": "rtmdet", "input_size": "640,640", "mean": "103.53,116.28,123.675",
                               "std": "57.375,57.12,58.395", "channel_order": "bgr", "score_thr": "0.05",
                               "nms_iou_thr": "0.6", "nms_pre": "1000", "max_per_img": "100"},
                     respond=lambda x: {"boxes": np.repeat(boxes, len(x), 0), "scores": np.repeat(scores, len(x), 0)})
    det = Detector(eng)
    assert det.output_format == "boxes_scores"
    assert_matches_reference(det(frame), ref)
    np.testing.assert_array_equal(eng.calls[0], reference_input(ref))
    # overrides beat metadata
    assert len(Detector(eng, max_per_img=5)(frame)) == 5


def test_detector_dets_labels_engine():
    frame = np.zeros((100, 200, 3), np.uint8)
    dets = np.array([[[32, 16, 64, 48, 0.9], [0, 0, 0, 0, 0]]], np.float32)
    eng = FakeEngine(path="end2end.onnx", inputs=[TensorSpec("input", (1, 3, 320, 320), np.float32)],
                     outputs=[TensorSpec("dets", (1, 2, 5), np.float32), TensorSpec("labels", (1, 2), np.int64)],
                     respond=lambda x: {"dets": dets, "labels": np.array([[0, 0]], np.int64)})
    det = Detector(eng)
    assert det.output_format == "dets_labels"
    res = det(frame)
    np.testing.assert_allclose(res.boxes, [[20, 10, 40, 30]], rtol=1e-6)
    assert eng.calls[0].shape == (1, 3, 320, 320)


def test_detector_rejects_a_pose_model():
    eng = FakeEngine(path="rtmpose-m.onnx", inputs=[TensorSpec("input", ("N", 3, 256, 192), np.float32)],
                     outputs=[TensorSpec("simcc_x", ("N", 17, 384), np.float32),
                              TensorSpec("simcc_y", ("N", 17, 512), np.float32)],
                     respond=lambda x: {})
    with pytest.raises(ModelError) as e:
        Detector(eng)
    msg = str(e.value)
    assert "rtmpose-m.onnx" in msg and "simcc_x" in msg and "dets" in msg


@pytest.mark.parametrize("meta,pattern", [
    ({"family": "rtmpose"}, "family"),
    ({"output_format": "dets_labels"}, "output_format"),
    ({"input_size": "320,320"}, "disagrees"),
    ({"mean": "1,2"}, "mean"),
    ({"channel_order": "bgra"}, "channel_order"),
    ({"score_thr": "high"}, "score_thr"),
])
def test_detector_metadata_errors(meta, pattern):
    ref, _ = load_case("rtmdet_m_person", "video_f041")
    with pytest.raises(ModelError, match=pattern) as e:
        Detector(raw_engine([ref], 640, batch=1, metadata=meta, path="det.onnx"))
    assert "det.onnx" in str(e.value)


def test_detector_rejects_bad_input_and_frames():
    ref, _ = load_case("rtmdet_m_person", "video_f041")
    eng = raw_engine([ref], 640)
    eng.inputs = [TensorSpec("input", ("N", 1, 640, 640), np.float32)]
    with pytest.raises(ModelError, match=r"1 image input \(N, 3, H, W\)"):
        Detector(eng)
    det = Detector(raw_engine([ref], 640))
    with pytest.raises(InputError, match="float64"):
        det(np.zeros((64, 64, 3)))
    with pytest.raises(InputError, match=r"\(2, 64, 64, 3\)"):
        det(np.zeros((2, 64, 64, 3), np.uint8))
    assert det([]) == []


def test_parse_metadata_defaults_and_non_square():
    cfg = parse_detector_metadata({})
    assert cfg.preprocess == PreprocessConfig()
    assert cfg.postprocess == PostprocessConfig()
    assert cfg.output_format is None
    cfg = parse_detector_metadata({"input_size": "384,640", "channel_order": "rgb", "pad_value": "0",
                                   "normalize_in_graph": "true", "strides": "8,16,32,64", "nms_pre": "-1"},
                                  source="x.onnx")
    assert cfg.preprocess.input_hw == (384, 640)
    assert cfg.preprocess.mean == (123.675, 116.28, 103.53)  # RGB order of the default
    assert cfg.preprocess.pad_value == (0, 0, 0) and not cfg.preprocess.normalize
    assert cfg.postprocess.strides == (8, 16, 32, 64) and cfg.postprocess.nms_pre == -1
    assert parse_detector_metadata({"input_size": "320"}).preprocess.input_hw == (320, 320)
    assert parse_detector_metadata({}, static_input_hw=(480, 640)).preprocess.input_hw == (480, 640)


def test_detections_validates_shapes():
    Detections(np.zeros((2, 4)), np.zeros(2), np.zeros(2, np.int32))
    assert len(Detections.empty()) == 0
    with pytest.raises(ValueError, match="boxes"):
        Detections(np.zeros((2, 5)), np.zeros(2), np.zeros(2, int))
    with pytest.raises(ValueError, match="scores"):
        Detections(np.zeros((2, 4)), np.zeros(3), np.zeros(2, int))
    with pytest.raises(ValueError, match="labels"):
        Detections(np.zeros((2, 4)), np.zeros(2), np.zeros((2, 1), int))
    with pytest.raises(ValueError, match="integers"):
        Detections(np.zeros((1, 4)), np.zeros(1), np.array([0.5]))


def test_filter_detections_is_strict():
    d = Detections(np.arange(16, dtype=np.float32).reshape(4, 4), np.float32([0.9, 0.3, 0.31, 0.8]), [0, 0, 0, 1])
    f = filter_detections(d, cat_id=0, bbox_thr=0.3)
    np.testing.assert_array_equal(f.scores, np.float32([0.9, 0.31]))
    np.testing.assert_array_equal(f.boxes, d.boxes[[0, 2]])
