"""Tracking: replay of the mmpose demo's track ids (parity) and the corrected tracker's behaviour."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import FIXTURES
from hypothesis import given, settings
from hypothesis import strategies as st
from pose3d_rt.keypoint_sets import COCO17
from pose3d_rt.tracking import GreedyTracker, HungarianTracker, iou_matrix, make_tracker, oks_matrix

RUNS = {"video_default": "iou", "video_oks": "oks", "video_nonorm": "iou", "video_light_default": "iou"}


@pytest.mark.parametrize("run", sorted(RUNS))
def test_greedy_tracker_replays_the_demo_track_ids(run):
    t = np.load(FIXTURES / "e2e" / run / "tracks.npz")
    tracker = make_tracker("mmpose", RUNS[run], 0.3)
    got, want = [], []
    for f in np.unique(t["frame_id"]):
        sel = np.flatnonzero(t["frame_id"] == f)
        sel = sel[np.argsort(t["det_order"][sel])]
        res = tracker.update(t["bboxes"][sel], t["keypoints"][sel], t["keypoint_scores"][sel], frame_index=int(f))
        got.append(res.track_ids)
        want.append(t["track_id"][sel])
    np.testing.assert_array_equal(np.concatenate(got), np.concatenate(want))


def _person(cx, cy, w=40.0, h=100.0):
    box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32)
    ys = np.linspace(cy - h / 2 + 5, cy + h / 2 - 5, 17, dtype=np.float32)
    xs = np.full(17, cx, np.float32) + np.tile([-5, 5], 9)[:17].astype(np.float32)
    return box, np.stack([xs, ys], 1)


def _frame(*centres):
    if not centres:
        return np.zeros((0, 4), np.float32), np.zeros((0, 17, 2), np.float32), np.zeros((0, 17), np.float32)
    boxes, kps = zip(*(_person(*c) for c in centres))
    return np.stack(boxes), np.stack(kps), np.ones((len(centres), 17), np.float32)


@pytest.mark.parametrize("metric", ["iou", "oks"])
def test_person_missing_three_frames_keeps_its_id(metric):
    frames = [_frame((100, 100), (300, 100))] * 3 + [_frame((300, 100))] * 3 + [_frame((103, 100), (300, 100))]
    hung = make_tracker("default", metric, 0.3, max_age=5)
    greedy = make_tracker("mmpose", metric, 0.3)
    h_ids = [hung.update(*f).track_ids for f in frames]
    g_ids = [greedy.update(*f).track_ids for f in frames]
    assert h_ids[-1].tolist() == [0, 1]  # the returning person keeps id 0
    assert g_ids[-1].tolist()[0] not in (0, 1)  # the demo's one-frame memory gives it a new id (Q16)


def test_optimal_assignment_beats_greedy_order():
    # previous: A at x=100, B at x=140 (boxes 80 wide). Current, in detector order: P1 at x=120 (overlaps A and B
    # about equally but slightly more B), P2 at x=165 (overlaps only B). Greedy gives B to P1 and P2 gets a new id;
    # the optimal assignment gives A to P1 and B to P2.
    prev = (np.array([[60, 0, 140, 200], [100, 0, 180, 200]], np.float32),)
    cur = (np.array([[81, 0, 161, 200], [125, 0, 205, 200]], np.float32),)
    greedy, hung = GreedyTracker("iou", 0.3), HungarianTracker("iou", 0.3)
    for tr in (greedy, hung):
        tr.update(prev[0], np.ones((2, 17, 2), np.float32) * 50)
    g = greedy.update(cur[0], np.ones((2, 17, 2), np.float32) * 50).track_ids
    h = hung.update(cur[0], np.ones((2, 17, 2), np.float32) * 50).track_ids
    assert g.tolist() == [1, 2]
    assert h.tolist() == [0, 1]


def test_ended_tracks_reported_once_and_ids_never_reused():
    tr = HungarianTracker("iou", 0.3, max_age=2)
    tr.update(*_frame((100, 100)))
    ended = [tr.update(*_frame()).ended_track_ids.tolist() for _ in range(4)]
    assert ended == [[], [], [0], []]
    assert tr.update(*_frame((100, 100))).track_ids.tolist() == [1]


def test_empty_frames_and_degenerate_boxes():
    tr = HungarianTracker("iou", 0.3)
    assert tr.update(*_frame()).track_ids.shape == (0,)
    boxes = np.array([[0, 0, 0, 0], [np.nan, 0, 10, 10], [5, 5, 50, 80]], np.float32)
    res = tr.update(boxes, np.zeros((3, 17, 2), np.float32) + 20, np.ones((3, 17), np.float32))
    assert res.track_ids.tolist() == [0, 1, 2]
    res = tr.update(boxes, np.zeros((3, 17, 2), np.float32) + 20, np.ones((3, 17), np.float32))
    assert res.track_ids[2] == 2 and res.track_ids[1] != 1  # the NaN box never matches


def test_oks_matches_a_hand_computation():
    a = np.zeros((1, 17, 2), np.float32)
    b = np.zeros((1, 17, 2), np.float32)
    b[0, :, 0] = 3.0  # every keypoint 3 px to the right
    area_a, area_b = np.array([2000.0]), np.array([1800.0])
    sig = COCO17.sigmas.astype(np.float64)
    ref = np.mean(np.exp(-(9.0 / (2 * sig) ** 2 / ((2000 + 1800) / 2 + np.spacing(1)) / 2)))
    np.testing.assert_allclose(oks_matrix(a, b, area_a, area_b, sig), [[ref]], rtol=1e-12)


boxes_st = st.lists(st.tuples(st.floats(0, 500), st.floats(0, 500), st.floats(1, 200), st.floats(1, 200)),
                    min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(boxes_st, boxes_st)
def test_iou_matrix_properties(a, b):
    A = np.array([[x, y, x + w, y + h] for x, y, w, h in a], np.float32)
    B = np.array([[x, y, x + w, y + h] for x, y, w, h in b], np.float32)
    m = iou_matrix(A, B)
    assert m.shape == (len(A), len(B))
    assert np.all((m >= 0) & (m <= 1 + 1e-9))
    np.testing.assert_allclose(m, iou_matrix(B, A).T)
    np.testing.assert_allclose(np.diag(iou_matrix(A, A)), 1.0, rtol=1e-6)
    # scalar reference
    i, j = 0, len(B) - 1
    ix = max(0.0, min(A[i, 2], B[j, 2]) - max(A[i, 0], B[j, 0]))
    iy = max(0.0, min(A[i, 3], B[j, 3]) - max(A[i, 1], B[j, 1]))
    inter = float(ix) * float(iy)
    ua = float((A[i, 2] - A[i, 0]) * (A[i, 3] - A[i, 1]) + (B[j, 2] - B[j, 0]) * (B[j, 3] - B[j, 1])) - inter
    np.testing.assert_allclose(m[i, j], inter / ua, rtol=1e-5, atol=1e-7)
