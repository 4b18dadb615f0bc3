"""Property tests of pose3d_rt.boxes.batched_nms (class-aware greedy NMS, mmcv semantics).

Tie rule under test: boxes are visited by decreasing score, equal scores by increasing input index.
"""
from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pose3d_rt.boxes import batched_nms, box_iou, clip_boxes, valid_box_mask

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def box_sets(draw, max_n=40, distinct_scores=False, n_classes=3):
    n = draw(st.integers(0, max_n))
    coord = st.floats(0, 200, allow_nan=False, width=32)
    size = st.floats(0.5, 80, allow_nan=False, width=32)
    xy = draw(hnp.arrays(np.float32, (n, 2), elements=coord))
    wh = draw(hnp.arrays(np.float32, (n, 2), elements=size))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    if distinct_scores:
        scores = draw(hnp.arrays(np.float32, (n,), elements=st.floats(0, 1, width=32), unique=True))
    else:  # few distinct values: lots of exact ties
        scores = draw(hnp.arrays(np.float32, (n,), elements=st.sampled_from([0.1, 0.5, 0.5, 0.9])))
    labels = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, n_classes - 1)))
    thr = draw(st.sampled_from([0.0, 0.3, 0.5, 0.6, 0.65, 0.9]))
    # make sure near-duplicates exist so that suppression actually happens
    if n >= 2 and draw(st.booleans()):
        boxes[1] = boxes[0] + np.float32(draw(st.floats(0, 2, width=32)))
        labels[1] = labels[0]
    return boxes, scores, labels, thr


def reference_nms(boxes, scores, labels, thr):
    """Plain-Python greedy NMS: visit by (-score, index); a visited, unsuppressed box is kept and suppresses
    every later box of its class with IoU > thr."""
    iou = box_iou(boxes, boxes)
    order = sorted(range(len(boxes)), key=lambda i: (-float(scores[i]), i))
    suppressed = set()
    keep = []
    for pos, i in enumerate(order):
        if i in suppressed:
            continue
        keep.append(i)
        for j in order[pos + 1:]:
            if labels[j] == labels[i] and iou[i, j] > np.float32(thr):
                suppressed.add(j)
    return np.array(keep, dtype=np.int64)


@SETTINGS
@given(box_sets())
def test_matches_plain_greedy_reference(data):
    boxes, scores, labels, thr = data
    keep = batched_nms(boxes, scores, labels, thr)
    np.testing.assert_array_equal(keep, reference_nms(boxes, scores, labels, thr))


@SETTINGS
@given(box_sets())
def test_kept_boxes_pairwise_iou_within_class_at_most_thr(data):
    boxes, scores, labels, thr = data
    keep = batched_nms(boxes, scores, labels, thr)
    kb, kl = boxes[keep], labels[keep]
    iou = box_iou(kb, kb)
    same = (kl[:, None] == kl[None, :]) & ~np.eye(len(keep), dtype=bool)
    assert np.all(iou[same] <= np.float32(thr))
    # sorted by score, ties by index
    ks = scores[keep]
    assert np.all((np.diff(ks) < 0) | ((np.diff(ks) == 0) & (np.diff(keep) > 0)))


@SETTINGS
@given(box_sets())
def test_every_suppressed_box_has_a_better_overlapping_kept_box(data):
    boxes, scores, labels, thr = data
    keep = batched_nms(boxes, scores, labels, thr)
    rank = {i: r for r, i in enumerate(sorted(range(len(boxes)), key=lambda i: (-float(scores[i]), i)))}
    kept = set(keep.tolist())
    iou = box_iou(boxes, boxes)
    for j in set(range(len(boxes))) - kept:
        assert any(labels[k] == labels[j] and rank[k] < rank[j] and iou[k, j] > np.float32(thr) for k in kept)


@SETTINGS
@given(box_sets())
def test_idempotent(data):
    boxes, scores, labels, thr = data
    keep = batched_nms(boxes, scores, labels, thr)
    again = batched_nms(boxes[keep], scores[keep], labels[keep], thr)
    np.testing.assert_array_equal(again, np.arange(len(keep)))


@SETTINGS
@given(box_sets(distinct_scores=True), st.randoms(use_true_random=False))
def test_independent_of_input_order(data, rnd):
    boxes, scores, labels, thr = data
    perm = np.array(rnd.sample(range(len(boxes)), len(boxes)), dtype=np.int64)
    keep = batched_nms(boxes, scores, labels, thr)
    keep_p = batched_nms(boxes[perm], scores[perm], labels[perm], thr)
    np.testing.assert_array_equal(perm[keep_p], keep)


@SETTINGS
@given(box_sets(max_n=20), st.data())
def test_degenerate_boxes_never_crash_are_dropped_and_counted(data, draw):
    boxes, scores, labels, thr = data
    n_good = len(boxes)
    kinds = draw.draw(st.lists(st.sampled_from(["zero_w", "zero_h", "inverted", "nan", "inf", "nan_score",
                                                 "inf_score", "outside"]), max_size=8))
    bad = []
    for k in kinds:
        b, s = np.float32([10, 10, 20, 20]), np.float32(0.99)
        if k == "zero_w":
            b[2] = b[0]
        elif k == "zero_h":
            b[3] = b[1]
        elif k == "inverted":
            b[[0, 2]] = b[[2, 0]]
        elif k == "nan":
            b[1] = np.nan
        elif k == "inf":
            b[2] = np.inf
        elif k == "nan_score":
            s = np.float32(np.nan)
        elif k == "inf_score":
            s = np.float32(np.inf)
        elif k == "outside":
            b = np.float32([400, 400, 450, 450])  # image is 300 x 300
        bad.append((b, s))
    if bad:
        all_boxes = np.concatenate([boxes, np.stack([b for b, _ in bad])])
        all_scores = np.concatenate([scores, np.array([s for _, s in bad], np.float32)])
        all_labels = np.concatenate([labels, np.zeros(len(bad), np.int64)])
    else:
        all_boxes, all_scores, all_labels = boxes, scores, labels
    # the good boxes stay inside a 300 x 300 image (coords <= 280)
    handler = _ListHandler()
    log = logging.getLogger("pose3d_rt.boxes")
    old_level = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        keep = batched_nms(all_boxes, all_scores, all_labels, thr, image_shape=(300, 300))
    finally:
        log.removeHandler(handler)
        log.setLevel(old_level)
    assert np.all(keep < n_good)
    np.testing.assert_array_equal(keep, batched_nms(boxes, scores, labels, thr))
    msgs = [m for m in handler.messages if "degenerate" in m]
    if bad:
        assert len(msgs) == 1 and f"dropped {len(bad)} " in msgs[0], msgs
    else:
        assert msgs == []


class _ListHandler(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_degenerate_count_logged_with_caplog(caplog):
    boxes = np.float32([[0, 0, 10, 10], [5, 5, 5, 9], [np.nan, 0, 1, 1], [1, 1, 11, 11], [500, 0, 510, 10]])
    scores = np.float32([0.9, 0.95, 0.99, 0.8, 0.7])
    with caplog.at_level(logging.DEBUG, logger="pose3d_rt.boxes"):
        keep = batched_nms(boxes, scores, None, 0.5, image_shape=(100, 100))
    np.testing.assert_array_equal(keep, [0])  # IoU((0,0,10,10),(1,1,11,11)) = 81/119 > 0.5
    records = [r for r in caplog.records if r.name == "pose3d_rt.boxes"]
    assert len(records) == 1 and "dropped 3 " in records[0].getMessage()
    assert records[0].levelno == logging.DEBUG


def test_all_equal_scores_visit_by_index_and_empty_input():
    boxes = np.float32([[0, 0, 10, 10], [1, 0, 11, 10], [0, 1, 10, 11], [50, 50, 60, 60]])
    keep = batched_nms(boxes, np.full(4, 0.5, np.float32), None, 0.6)
    np.testing.assert_array_equal(keep, [0, 3])
    keep_rev = batched_nms(boxes[::-1], np.full(4, 0.5, np.float32), None, 0.6)
    np.testing.assert_array_equal(keep_rev, [0, 1])  # = boxes 3 and 2 of the original order: index rule
    assert batched_nms(np.zeros((0, 4)), np.zeros(0), None, 0.5).shape == (0,)
    np.testing.assert_array_equal(batched_nms(boxes, np.float32([0.1, 0.2, 0.3, 0.4]), None, 0.6, max_num=2), [3, 2])


def test_helpers_closed_form():
    np.testing.assert_allclose(box_iou(np.float32([[0, 0, 10, 10]]), np.float32([[5, 0, 15, 10], [20, 20, 30, 30]])),
                               [[50 / 150, 0]])
    np.testing.assert_array_equal(clip_boxes(np.float32([[-5, -1, 700, 30]]), (20, 640)), [[0, 0, 640, 20]])
    m = valid_box_mask(np.float32([[0, 0, 1, 1], [0, 0, 0, 1], [0, 0, 1, np.inf], [0, 0, 0.5, 0.5]]), min_size=0.5)
    np.testing.assert_array_equal(m, [True, False, False, False])
    with pytest.raises(ValueError, match=r"\(n, 4\)"):
        batched_nms(np.zeros((3, 5)), np.zeros(3), None, 0.5)


def test_large_candidate_set_matches_reference():
    """1000 person-like candidates (the detector's nms_pre) against the plain reference."""
    rng = np.random.default_rng(7)
    n = 1000
    c = rng.uniform(0, 600, (n, 2))
    wh = rng.uniform(20, 120, (n, 2)) * [0.5, 1.0]
    boxes = np.concatenate([c - wh / 2, c + wh / 2], 1).astype(np.float32)
    scores = rng.random(n).astype(np.float32)
    labels = rng.integers(0, 2, n)
    np.testing.assert_array_equal(batched_nms(boxes, scores, labels, 0.6), reference_nms(boxes, scores, labels, 0.6))
