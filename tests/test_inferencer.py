"""``pose3d-rt inferencer``: mmpose's Inferencer (``inferencer_demo.py --pose3d``) rules, unit by unit, and the
mmpose-mode command against the real Inferencer's JSONs (tests/fixtures/mb/e2e, docs/spec/inferencer.md).

Each unit test below fails if the Inferencer rule it names is not implemented: the +1-pixel NMS (closed-form boxes
whose decision flips with the convention), the strict class/score filter and the real box scores, the whole-image
box, fresh ids per person and frame (I1) and the "delete" branch (I4), images independent (I10), BGR frames for
images (not the demo's Q6), the camera (w, h) order, the output names and the JSON bytes.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import FIXTURES, requires_torch
from pose3d_rt.boxes import nms
from pose3d_rt.errors import InputError
from pose3d_rt.hub import Role
from pose3d_rt.inferencer import (
    InferencerMMPose,
    InferencerOptions,
    OutputOptions,
    fresh_track_ids,
    inferencer_models,
    run_inferencer,
    select_boxes,
)
from pose3d_rt.inferencer.outputs import FramesJsonWriter, dumps
from pose3d_rt.rtmdet import Detections
from pose3d_rt.rtmpose.estimator import Poses2D

MB = FIXTURES / "mb" / "e2e"


# -- the +1-pixel NMS ---------------------------------------------------------------------------------------------

def _nms_reference(boxes, scores, thr):
    """mmpose's greedy NMS written out plainly (one kept box at a time), +1-pixel areas, float32."""
    b = boxes.astype(np.float32)
    area = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    order = list(np.argsort(scores, kind="stable")[::-1])
    keep = []
    while order:
        i = order.pop(0)
        keep.append(int(i))
        rest = []
        for j in order:
            w = max(np.float32(0), min(b[i, 2], b[j, 2]) - max(b[i, 0], b[j, 0]) + np.float32(1))
            h = max(np.float32(0), min(b[i, 3], b[j, 3]) - max(b[i, 1], b[j, 1]) + np.float32(1))
            inter = np.float32(w * h)
            if np.float32(inter / (area[i] + area[j] - inter)) <= np.float32(thr):
                rest.append(j)
        order = rest
    return keep


def test_nms_plus_one_closed_form():
    # two 10x10-pixel boxes (+1 convention) overlapping by 5 columns: IoU 50 / 150 = 1/3 > 0.3 -> suppressed;
    # without +1 the same boxes are 9x9 with 4x9 overlap: 36 / 126 = 0.2857 <= 0.3 -> kept
    boxes = np.array([[0, 0, 9, 9], [5, 0, 14, 9]], np.float32)
    scores = np.array([0.9, 0.8], np.float32)
    assert nms(boxes, scores, 0.3, offset=1, ties="last").tolist() == [0]
    assert nms(boxes, scores, 0.3).tolist() == [0, 1]
    # boxes 0.5 px apart overlap by half a pixel column under +1 (inter 0.5 * 10 = 5 > 0): thr 0 suppresses
    apart = np.array([[0, 0, 9, 9], [9.5, 0, 19, 9]], np.float32)
    assert nms(apart, scores, 0.0, offset=1, ties="last").tolist() == [0]
    assert nms(apart, scores, 0.0).tolist() == [0, 1]
    # equal scores: mmpose's argsort()[::-1] visits the higher index first
    same = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
    assert nms(same, np.array([0.5, 0.5], np.float32), 0.3, offset=1, ties="last").tolist() == [1]
    assert nms(same, np.array([0.5, 0.5], np.float32), 0.3).tolist() == [0]
    # a zero-width box is a real 1-pixel-wide box under +1
    thin = np.array([[3, 3, 3, 20], [50, 50, 60, 60]], np.float32)
    assert sorted(nms(thin, scores, 0.3, offset=1).tolist()) == [0, 1]


def test_nms_plus_one_equals_plain_greedy_on_random_scenes():
    rng = np.random.default_rng(3)
    for _ in range(40):
        n = int(rng.integers(1, 30))
        xy = rng.uniform(0, 200, (n, 2))
        wh = rng.uniform(0, 80, (n, 2))
        boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
        scores = rng.choice(np.linspace(0.3, 1, 12), n).astype(np.float32)  # with ties
        thr = float(rng.choice([0.0, 0.3, 0.5, 0.9]))
        assert nms(boxes, scores, thr, offset=1, ties="last").tolist() == _nms_reference(boxes, scores, thr)


# -- the 2D stage rules -------------------------------------------------------------------------------------------

def test_select_boxes_filter_strict_threshold_real_scores_and_whole_image():
    thr = np.float32(0.3)
    dets = Detections(np.array([[0, 0, 50, 100], [200, 0, 250, 100], [400, 0, 450, 100], [0, 0, 52, 101],
                                [600, 0, 650, 100]], np.float32),
                      np.array([0.9, 0.8, thr, 0.7, 0.6], np.float32), np.array([0, 2, 0, 0, 1], np.int64))
    sel = select_boxes(dets, (640, 480), (0, 2), 0.3, 0.3)
    # label 1 dropped, score == thr dropped (strict), box 3 suppressed by box 0; real scores, descending
    np.testing.assert_array_equal(sel.boxes, dets.boxes[[0, 1]])
    np.testing.assert_array_equal(sel.scores, np.array([0.9, 0.8], np.float32))
    assert not sel.whole_image
    for empty in (Detections.empty(), dets.select(np.array([4])), None):
        sel = select_boxes(empty, (640, 480), (0,), 0.3, 0.3)
        assert sel.whole_image
        np.testing.assert_array_equal(sel.boxes, [[0, 0, 640, 480]])
        np.testing.assert_array_equal(sel.scores, [1.0])


def test_fresh_ids_every_person_every_frame_and_delete_branch():
    kp = np.tile(np.arange(17, dtype=np.float32)[:, None] + 1, (3, 1, 2))  # 3 persons, all y non-zero
    kp[1, 2:, 1] = 0  # person 1: two non-zero y only -> the "delete" branch
    boxes = np.array([[0, 0, 10, 10], [5, 5, 20, 20], [1, 2, 3, 4]], np.float32)
    ids, nxt = fresh_track_ids(kp, boxes, 0)
    assert ids.tolist() == [0, -1, 1] and nxt == 2
    assert (kp[1, :, 1] == -10).all() and (boxes[1] == 0).all() and (kp[0, :, 1] > 0).all()
    # the same persons in the next frame are never matched: new ids continue from next_id
    ids2, nxt2 = fresh_track_ids(kp[[0, 2]].copy(), boxes[[0, 2]].copy(), nxt)
    assert ids2.tolist() == [2, 3] and nxt2 == 4


# -- the per-input Inferencer with fake stages ------------------------------------------------------------------

class FakeDetector:
    """Boxes at fixed places; the frames it was given are kept."""

    def __init__(self, boxes, scores):
        self.boxes, self.scores, self.frames = np.asarray(boxes, np.float32), np.asarray(scores, np.float32), []

    def __call__(self, frame):
        self.frames.append(frame.copy())
        n = len(self.boxes)
        return Detections(self.boxes, self.scores, np.zeros(n, np.int64))


class FakePose:
    """17 keypoints spread over each box; the frames it was given are kept."""

    dataset_name = "coco"

    def __init__(self):
        self.frames = []

    def __call__(self, frame, boxes):
        self.frames.append(frame.copy())
        b = np.asarray(boxes, np.float32)
        t = np.linspace(0.1, 0.9, 17, dtype=np.float32)
        kp = np.stack([b[:, None, 0] + t * (b[:, None, 2] - b[:, None, 0]),
                       b[:, None, 1] + t * (b[:, None, 3] - b[:, None, 1])], -1)
        return Poses2D(kp, np.full(kp.shape[:2], 0.9, np.float32), b)


@pytest.fixture
def lift_calls(monkeypatch):
    """Replace the MotionBERT lift by a recorder: 3D = (x, y, w) of the H36M 2D input, so the camera size shows."""
    import pose3d_rt.lifters.motionbert as mb

    calls = []

    def fake(model, keypoints_h36m, frame_size, **kw):
        calls.append((np.array(keypoints_h36m), tuple(frame_size), kw))
        kp = np.asarray(keypoints_h36m, np.float32)
        return np.concatenate([kp, np.full(kp.shape[:-1] + (1,), frame_size[0], np.float32)], -1)

    monkeypatch.setattr(mb, "lift_single_frames", fake)
    return calls


def _inferencer(**options):
    det = FakeDetector([[10, 10, 60, 110], [300, 20, 340, 120]], [0.8, 0.9])
    return InferencerMMPose(det, FakePose(), object(), InferencerOptions(**options))


def test_frame_order_ids_camera_and_options(lift_calls):
    inf = _inferencer()
    frame = np.zeros((120, 400, 3), np.uint8)
    res = inf(frame, 0)
    # detector order is by score (0.9 first), ids follow it, the result is sorted by id
    assert res.track_ids.tolist() == [0, 1]
    np.testing.assert_array_equal(res.boxes, [[300, 20, 340, 120], [10, 10, 60, 110]])
    np.testing.assert_array_equal(res.scores, np.array([0.9, 0.8], np.float32))
    kp, wh, kw = lift_calls[-1]
    assert wh == (400, 120)  # camera (w, h), not the demo's swapped (h, w)
    assert kw == {"mode": "mmpose", "flip": True, "postprocess": True, "rebase": True}
    assert inf(frame, 1).track_ids.tolist() == [2, 3]  # I1: no matching between frames
    # default flags: the box canonicalisation (lifter.md §5.4); --disable-norm-pose-2d: the raw H36M pixels
    from pose3d_rt.keypoint_sets import convert_keypoint_definition
    from pose3d_rt.lifters.codec import norm_pose_2d

    want = convert_keypoint_definition(res.keypoints_2d, "coco", "h36m")
    np.testing.assert_array_equal(kp, norm_pose_2d(want, res.boxes))
    inf2 = _inferencer(disable_norm_pose_2d=True, disable_rebase_keypoint=True)
    inf2(frame, 0)
    kp2, _, kw2 = lift_calls[-1]
    np.testing.assert_array_equal(kp2, want)
    assert kw2["rebase"] is False


def test_images_independent_bgr_and_output_names(lift_calls, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    images = {}
    for name in ("b.png", "a.png"):
        img = rng.integers(0, 255, (120, 400, 3), dtype=np.uint8)
        img[..., 0] = 7  # a channel order mistake shows
        cv2.imwrite(str(folder / name), img)
        images[name] = img
    inf = _inferencer()
    out = OutputOptions(pred_out_dir=str(tmp_path / "pred"))
    summary = run_inferencer(lambda: inf, str(folder), out, mode="mmpose")
    assert summary.inputs == 2 and summary.frames == 2
    assert [p.name for p in summary.json_paths] == ["a.json", "b.json"]  # sorted, <stem>.json
    for p in summary.json_paths:
        inst = json.loads(p.read_text())
        assert isinstance(inst, list) and [sorted(i) for i in inst] == [["keypoint_scores", "keypoints"]] * 2
        assert p.read_text() == dumps(inst)
    # I10: every image starts again at id 0 (two persons each: the counter ends at 2, not 4)
    assert [len(c[0]) for c in lift_calls] == [2, 2] and inf.next_id == 2
    # BGR frames reach the detector and the 2D model for images too (the demo's Q6 gives them RGB)
    for seen in (inf.detector.frames, inf.pose2d.frames):
        np.testing.assert_array_equal(seen[0], images["a.png"])
        np.testing.assert_array_equal(seen[1], images["b.png"])


def test_drawing_never_overwrites_the_input(lift_calls, tmp_path):
    from pose3d_rt.visualize import Visualizer

    img = np.full((120, 400, 3), 50, np.uint8)
    cv2.imwrite(str(tmp_path / "x.png"), img)
    before = (tmp_path / "x.png").read_bytes()
    out = OutputOptions(vis_out_dir=str(tmp_path), visualizer=Visualizer())
    with pytest.raises(InputError, match="overwrite the input"):
        run_inferencer(_inferencer, str(tmp_path / "x.png"), out)
    assert (tmp_path / "x.png").read_bytes() == before
    summary = run_inferencer(_inferencer, str(tmp_path / "x.png"),
                             OutputOptions(vis_out_dir=str(tmp_path / "vis"), visualizer=Visualizer()))
    drawn = cv2.imread(str(summary.vis_paths[0]))
    assert summary.vis_paths[0].name == "x.png" and drawn.shape == (400, 800, 3)  # [2D | 3D], S = 400


def test_video_ids_continue_and_frames_json(lift_calls, tmp_path):
    path = tmp_path / "clip.avi"
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (400, 120))
    for _ in range(3):
        vw.write(np.full((120, 400, 3), 90, np.uint8))
    vw.release()
    inf = _inferencer()
    out = OutputOptions(pred_out_dir=str(tmp_path / "pred"))
    summary = run_inferencer(lambda: inf, str(path), out, mode="mmpose")
    assert summary.frames == 3 and [p.name for p in summary.json_paths] == ["clip.json"]
    text = summary.json_paths[0].read_text()
    data = json.loads(text)
    assert text == dumps(data)
    assert [r["frame_id"] for r in data] == [0, 1, 2] and all(len(r["instances"]) == 2 for r in data)
    assert inf.next_id == 6  # one counter for the video, two new ids per frame


def test_frames_json_writer_is_valid_after_every_frame_and_byte_identical(tmp_path):
    ref_text = (MB / "video_default" / "synthetic_video.json").read_text()
    ref = json.loads(ref_text)
    path = tmp_path / "v.json"
    w = FramesJsonWriter(path)
    assert json.loads(path.read_text()) == [] and path.read_text() == dumps([])
    for i, rec in enumerate(ref[:5]):
        w.write(rec["frame_id"], rec["instances"])
        assert path.read_text() == dumps(ref[:i + 1])
    for rec in ref[5:]:
        w.write(rec["frame_id"], rec["instances"])
    w.close()
    assert path.read_text() == ref_text  # the mmpose file, byte for byte


# -- model flags ----------------------------------------------------------------------------------------------------

def test_model_flags_resolve_like_the_inferencer(tmp_path):
    m = inferencer_models()
    assert (m.lifter, m.pose2d, m.detector, m.det_cat_ids) == ("human3d", "rtmpose-m", "rtmdet-m-person", (0,))
    m = inferencer_models(pose3d="human3d", det_cat_ids=[3, 5])
    assert m.det_cat_ids == (0,)  # the default detector's cat_ids win, as in mmpose
    ckpt = tmp_path / "det.pth"
    ckpt.write_bytes(b"x")
    m = inferencer_models(det_model="rtmdet_m_640-8xb32_coco-person.py", det_weights=str(ckpt), det_cat_ids=[3, 5])
    assert m.detector == str(ckpt) and m.det_cat_ids == (3, 5)
    m = inferencer_models(pose2d="configs/body_2d_keypoint/rtmpose/body8/rtmpose-t_8xb256-420e_body8-256x192.py",
                          det_model="whole_image")
    assert m.pose2d == "rtmpose-t" and m.detector is None
    with pytest.raises(InputError, match="--pose3d"):
        inferencer_models(pose3d="no_such_model.py")
    with pytest.raises(InputError, match="--pose3d-weights"):
        inferencer_models(pose3d_weights=str(tmp_path / "missing.pth"))
    with pytest.raises(Exception, match="--pose2d"):
        inferencer_models(pose2d="human3d")  # a lifter alias given as the 2D model
    assert Role.LIFTER in m.flags


# -- against the real Inferencer (tests/fixtures/mb/e2e) -----------------------------------------------------------

RUNS = {  # run -> (input, camera (w, h), InferencerOptions); commands: tests/fixtures/mb/e2e/commands.txt
    "video_default": ("synthetic_video.avi", {}),
    "video_nonorm": ("synthetic_video.avi", {"disable_norm_pose_2d": True}),
    "still_group_default": ("still_group_960x600.png", {}),
}


class MBReference:
    """The Inferencer's 2D instances of one run, in detector order, as ``test_pipeline_parity.Reference`` serves
    them (``t``, ``frame_ids``, ``frame``). The Inferencer's 2D stage equals the demo's except for the box NMS and
    the image channel order (docs/spec/inferencer.md §7): for the video it is the demo's instances (BGR frames,
    tests/fixtures/e2e/video_default/tracks.npz) that survive the box NMS; for the still, RTMPose-m on the BGR
    image with the detector's boxes (tests/fixtures/pose/.../still_group_960x600__det.npz)."""

    def __init__(self, run: str) -> None:
        self.run, (self.input_name, _) = run, RUNS[run]
        self.json = json.loads((MB / run / f"{self.input_name.rsplit('.', 1)[0]}.json").read_text())
        self.is_image = self.input_name.endswith(".png")
        if self.is_image:
            p = np.load(FIXTURES / "pose" / "rtmpose_m_body8_256x192" / "still_group_960x600__det.npz")
            d = np.load(FIXTURES / "det" / "rtmdet_m_person" / "still_group_960x600.npz")
            self.dets = {0: Detections(d["bboxes"], d["scores"], d["labels"])}
            self.t = {"frame_id": np.zeros(len(p["bboxes_in"]), np.int64), "bboxes": p["bboxes_in"],
                      "keypoints": p["keypoints"], "keypoint_scores": p["keypoint_scores"]}
            self.frame_ids = [0]
            return
        t = np.load(FIXTURES / "e2e" / "video_default" / "tracks.npz")
        order = np.lexsort((t["det_order"], t["frame_id"]))
        self.frame_ids = sorted(set(t["frame_id"].tolist()))
        self.dets, kept = {}, []
        for fid in self.frame_ids:
            rows = order[t["frame_id"][order] == fid]
            scores = np.linspace(0.95, 0.35, len(rows)).astype(np.float32)  # detector order = descending score
            self.dets[fid] = Detections(t["bboxes"][rows], scores, np.zeros(len(rows), np.int64))
            kept.append(rows[nms(t["bboxes"][rows], scores, 0.3, offset=1, ties="last")])
        kept = np.concatenate(kept)
        self.t = {k: t[k][kept] for k in ("frame_id", "bboxes", "keypoints", "keypoint_scores")}
        self.t["frame_id"] = self.t["frame_id"] - 1  # the demo's frame ids are 1-based (Q15), the Inferencer's not
        self.frame_ids = [f - 1 for f in self.frame_ids]
        self.dets = {f - 1: d for f, d in self.dets.items()}

    def frame(self, frame_id: int) -> np.ndarray:
        return np.flatnonzero(self.t["frame_id"] == frame_id)

    def frames_3d(self):
        """(frame id, the JSON's instances) per frame."""
        if self.is_image:
            return [(0, self.json)]
        return [(rec["frame_id"], rec["instances"]) for rec in self.json]


class ReplayDetector:
    """The detector's output of the next frame (the demo's boxes with descending scores; the still: all of the
    detector's boxes, labels and scores, so that the class filter and the threshold run on real output)."""

    def __init__(self, ref: MBReference) -> None:
        self.ref, self.calls = ref, 0

    def __call__(self, frame):
        fid = self.ref.frame_ids[self.calls]
        self.calls += 1
        return self.ref.dets[fid]


class ReplayPose:
    """The Inferencer's 2D keypoints of the boxes the stage selected (checked to be the reference rows)."""

    dataset_name = "coco"

    def __init__(self, ref: MBReference, det: ReplayDetector) -> None:
        self.ref, self.det = ref, det

    def __call__(self, frame, boxes):
        rows = self.ref.frame(self.ref.frame_ids[self.det.calls - 1])
        np.testing.assert_array_equal(np.asarray(boxes, np.float32), self.ref.t["bboxes"][rows])
        return Poses2D(self.ref.t["keypoints"][rows], self.ref.t["keypoint_scores"][rows], boxes)


def test_box_selection_gives_the_inferencers_instance_counts():
    """The class filter, threshold and +1 NMS on the detector's boxes leave as many persons per frame as the
    Inferencer lifted (without the NMS the video would have 335 instead of 248)."""
    for run in RUNS:
        ref = MBReference(run)
        counts = [len(select_boxes(ref.dets[f], (640, 384), (0,), 0.3, 0.3).boxes) for f in ref.frame_ids]
        assert counts == [len(inst) for _, inst in ref.frames_3d()], run
    assert sum(len(d) for d in MBReference("video_default").dets.values()) == 335


@pytest.fixture(scope="module")
def onnx_paths(checkpoints, tmp_path_factory):
    """The rebuilt RTMDet-m, RTMPose-m and MotionBERT exported once to ONNX (the exports mmpose mode uses)."""
    from conftest import MOTIONBERT
    from pose3d_rt.export import export_onnx

    out = tmp_path_factory.mktemp("mb_onnx")
    return {name: Path(export_onnx(checkpoints[name], out / f"{name}.onnx"))
            for name in ("rtmdet_m_person", "rtmpose_m_body8_256x192", MOTIONBERT)}


@pytest.fixture(scope="module")
def motionbert(onnx_paths):
    from conftest import MOTIONBERT
    from pose3d_rt.engines import load_engine

    return load_engine(str(onnx_paths[MOTIONBERT]), threads=2)


def _check_json(ref: MBReference, ours, atol=1e-3, skip=frozenset()):
    """Our JSON against the Inferencer's: same frames, instance counts and order; 3D within ``atol`` except the
    instances ``skip`` ((frame id, index)). Returns the largest difference and the number of instances compared."""
    theirs = ref.frames_3d()
    mine = [(0, ours)] if ref.is_image else [(r["frame_id"], r["instances"]) for r in ours]
    assert [f for f, _ in mine] == [f for f, _ in theirs]
    worst, n = 0.0, 0
    for (fid, a), (_, b) in zip(mine, theirs):
        assert len(a) == len(b), f"frame {fid}"
        assert all(x["keypoint_scores"] == [1.0] * 17 for x in a)
        for i, (x, y) in enumerate(zip(a, b)):
            if (fid, i) in skip:
                continue
            d = float(np.abs(np.array(x["keypoints"]) - np.array(y["keypoints"])).max())
            assert d <= atol, f"frame {fid} instance {i}: |d3D| = {d}"
            worst, n = max(worst, d), n + 1
    return worst, n


@requires_torch
@pytest.mark.slow
@pytest.mark.parametrize("run", sorted(RUNS))
def test_lifting_given_the_inferencers_2d(run, motionbert, tmp_path):
    """The detector's output and the 2D keypoints replayed, everything after them ours (box selection, ids,
    conversion, canonicalisation, MotionBERT T = 1 with flip, decode, post-processing, order, JSON): every
    instance of every frame within 1e-3 of the Inferencer's JSON."""
    ref = MBReference(run)
    det = ReplayDetector(ref)
    inf = InferencerMMPose(det, ReplayPose(ref, det), motionbert, InferencerOptions(**RUNS[run][1]))
    out = OutputOptions(pred_out_dir=str(tmp_path))
    summary = run_inferencer(lambda: inf, str(FIXTURES / "inputs" / ref.input_name), out)
    assert [p.name for p in summary.json_paths] == [f"{ref.input_name.rsplit('.', 1)[0]}.json"]
    worst, n = _check_json(ref, json.loads(summary.json_paths[0].read_text()))
    print(f"\n{run}: {summary.frames} frames, {n} instances, all within 1e-3; max |d3D| = {worst:.2e}")


@pytest.fixture(scope="module")
def pixel_engines(onnx_paths):
    """ONNX Runtime engines of the rebuilt RTMDet-m and RTMPose-m, memoised by input bytes (video_default and
    video_nonorm feed them the same tensors)."""
    from pose3d_rt.engines import load_engine
    from test_pipeline_parity import MemoEngine

    return {name: MemoEngine(load_engine(str(onnx_paths[name]), threads=2))
            for name in ("rtmdet_m_person", "rtmpose_m_body8_256x192")}


class KeepPoses:
    """Passes the 2D model's results through, keeping them (our keypoints of the near-tie instances)."""

    dataset_name = "coco"

    def __init__(self, inner) -> None:
        self.inner, self.poses = inner, []

    def __call__(self, frame, boxes):
        self.poses.append(self.inner(frame, boxes))
        return self.poses[-1]


@requires_torch
@pytest.mark.slow
@pytest.mark.parametrize("run", sorted(RUNS))
def test_mmpose_mode_from_pixels_with_onnx_runtime(run, pixel_engines, motionbert, tmp_path):
    """``pose3d-rt inferencer`` as a user runs it (mmpose mode; ONNX Runtime engines exported from the rebuilt
    checkpoints; the fixture video / still in, the JSON out) against the real Inferencer.

    The 2D stage is checked frame by frame by ``test_pipeline_parity.PixelRecorder`` against the Inferencer's 2D
    instances (:class:`MBReference`): same count and order, boxes within 1e-2 px, every keypoint within 1e-2 px or
    a proven crop near-tie (ORT's boxes are ~1e-3 px from PyTorch's, which can flip a grey level of the fixed-point
    crop warp and move a SimCC argmax between nearly tied peaks). With T = 1 and no tracking (I1, I2) a near-tie
    affects only its own instance: every other instance must be within 1e-3 of the JSON, and each affected one
    must equal the lift of the Inferencer's 2D with only its tied keypoints replaced by ours.
    """
    from pose3d_rt.rtmdet import Detector
    from pose3d_rt.rtmpose.estimator import PoseEstimator
    from test_pipeline_parity import PixelRecorder

    ref = MBReference(run)
    det = Detector(pixel_engines["rtmdet_m_person"], letterbox="square")
    pose = PoseEstimator(pixel_engines["rtmpose_m_body8_256x192"], flip_test=True, warp_method="fixed_point")
    inf = InferencerMMPose(det, pose, motionbert, InferencerOptions(**RUNS[run][1]))
    rec = PixelRecorder(pose, ref)
    inf.pose2d = kept = KeepPoses(rec)
    summary = run_inferencer(lambda: inf, str(FIXTURES / "inputs" / ref.input_name),
                             OutputOptions(pred_out_dir=str(tmp_path)))
    assert not rec.unexplained, f"keypoints differing beyond crop near-ties: {rec.unexplained}"
    assert rec.calls == len(ref.frame_ids) == summary.frames
    ours = json.loads(summary.json_paths[0].read_text())
    affected = {(fid, i) for fid, i, *_ in rec.ties}  # instance order = detector order (ids ascend with it)
    worst, n = _check_json(ref, ours, skip=affected)
    # each affected instance: the lift of the Inferencer's 2D with only the tied keypoints replaced by ours
    mine = {0: ours} if ref.is_image else {r["frame_id"]: r["instances"] for r in ours}
    size = (960, 600) if ref.is_image else (640, 384)
    for fid, i in sorted(affected):
        row = ref.frame(fid)[i]
        kp = ref.t["keypoints"][row:row + 1].copy()
        tied = [k for f2, i2, k, *_ in rec.ties if (f2, i2) == (fid, i)]
        kp[0, tied] = kept.poses[ref.frame_ids.index(fid)].keypoints[i, tied]
        want = inf.lift(kp, ref.t["bboxes"][row:row + 1].copy(), size)
        d = float(np.abs(np.array(mine[fid][i]["keypoints"]) - want[0]).max())
        assert d <= 1e-3, f"frame {fid} instance {i}: 3D vs the relift with our tied keypoints: {d}"
    total = sum(len(inst) for _, inst in ref.frames_3d())
    print(f"\n{run}: {summary.frames} frames, {total} instances; exact (2D within 1e-2 px, 3D within 1e-3 of the "
          f"JSON) {n}/{total}; 2D bit-exact {rec.bit_exact}; max |dbox| {rec.dbox:.2e} px; {len(rec.ties)} crop "
          f"near-ties in {len(affected)} instances; max |d3D| of the others {worst:.2e}")


@requires_torch
@pytest.mark.slow
def test_cli_command_line_of_the_fixture_run(onnx_paths, pixel_engines, motionbert, tmp_path, capsys):
    """``pose3d-rt inferencer`` with the fixture run's command line (commands.txt: configs + weights; the configs
    are not on disk here and are skipped with a warning): the JSON is the mmpose-mode API's, byte for byte, under
    the Inferencer's name; --vis-out-dir writes the 2D + 3D drawing under the image's name."""
    from conftest import MOTIONBERT
    from pose3d_rt.cli import main
    from pose3d_rt.rtmdet import Detector
    from pose3d_rt.rtmpose.estimator import PoseEstimator

    still = FIXTURES / "inputs" / "still_group_960x600.png"
    code = main(["inferencer", str(still), "--pose3d", "motionbert_dstformer-ft-243frm_8xb32-120e_h36m.py",
                 "--pose3d-weights", str(onnx_paths[MOTIONBERT]),
                 "--pose2d", "rtmpose-m_8xb256-420e_body8-256x192.py",
                 "--pose2d-weights", str(onnx_paths["rtmpose_m_body8_256x192"]),
                 "--det-model", "rtmdet_m_640-8xb32_coco-person.py",
                 "--det-weights", str(onnx_paths["rtmdet_m_person"]), "--det-cat-ids", "0", "--device", "cpu",
                 "--pred-out-dir", str(tmp_path / "pred"), "--vis-out-dir", str(tmp_path / "vis")])
    assert code == 0, capsys.readouterr().err
    inf = InferencerMMPose(Detector(pixel_engines["rtmdet_m_person"], letterbox="square"),
                           PoseEstimator(pixel_engines["rtmpose_m_body8_256x192"], flip_test=True,
                                         warp_method="fixed_point"), motionbert)
    api = run_inferencer(lambda: inf, str(still), OutputOptions(pred_out_dir=str(tmp_path / "api")))
    assert (tmp_path / "pred" / "still_group_960x600.json").read_bytes() == api.json_paths[0].read_bytes()
    vis = cv2.imread(str(tmp_path / "vis" / "still_group_960x600.png"))
    assert vis is not None and vis.shape == (960, 1920, 3)  # [2D | one 3D slot], S = max(960, 600)


def test_cli_errors_are_one_line(tmp_path, capsys):
    from pose3d_rt.cli import main

    cases = [
        (["inferencer", str(tmp_path / "missing.mp4")], "missing.mp4"),
        (["inferencer", str(FIXTURES / "inputs" / "still_group_960x600.png"), "--pose3d", "rtmpose-m"], "--pose3d"),
        (["inferencer", str(FIXTURES / "inputs" / "still_group_960x600.png"), "--det-model", "x.py"], "--det-model"),
        (["inferencer"], "no input"),
        (["inferencer", str(FIXTURES / "inputs" / "still_group_960x600.png"), "--nms-thr", "1.5"], "--nms-thr"),
    ]
    for argv, needle in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("pose3d-rt: error:") and needle in err[0], err
    assert main(["inferencer", "--show-alias"]) == 0
    listing = capsys.readouterr().out
    assert "human3d" in listing and "body17" in listing


@requires_torch
@pytest.mark.slow
def test_default_mode_is_the_pipeline_with_the_inferencers_files(onnx_paths, tmp_path):
    """``--mode default``: the normal pipeline (tracking, MotionBERT clips with the 2D scores) over a folder taken
    as one sequence, written as the Inferencer's per-image files: each image's JSON holds that frame's persons in
    the pipeline's order with the pipeline's 3D."""
    from conftest import MOTIONBERT, read_frames
    from pose3d_rt.pipeline import Pose3DPipeline

    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(read_frames(FIXTURES / "inputs" / "synthetic_video.avi")[:6]):
        cv2.imwrite(str(folder / f"{i:03d}.png"), frame)
    models = inferencer_models(pose3d_weights=str(onnx_paths[MOTIONBERT]),
                               pose2d_weights=str(onnx_paths["rtmpose_m_body8_256x192"]),
                               det_model="rtmdet_m_640-8xb32_coco-person.py",
                               det_weights=str(onnx_paths["rtmdet_m_person"]))
    from pose3d_rt.inferencer import EngineOptions, build_default

    pipe = build_default(models, InferencerOptions(), EngineOptions(threads=2, progress=False))
    summary = run_inferencer(lambda: pipe, str(folder), OutputOptions(pred_out_dir=str(tmp_path / "pred")),
                             mode="default")
    assert [p.name for p in summary.json_paths] == [f"{i:03d}.json" for i in range(6)]
    ref = Pose3DPipeline(str(onnx_paths["rtmdet_m_person"]), str(onnx_paths["rtmpose_m_body8_256x192"]),
                         str(onnx_paths[MOTIONBERT]), mode="default", threads=2)
    results = list(ref.stream(str(folder)))
    for res, path in zip(results, summary.json_paths):
        inst = json.loads(path.read_text())
        assert len(inst) == len(res) and all(sorted(i) == ["keypoint_scores", "keypoints"] for i in inst)
        np.testing.assert_array_equal(np.array([i["keypoints"] for i in inst], np.float32).reshape(-1, 17, 3),
                                      res.keypoints_3d)
    # I1 and I10 fixed: the folder is one sequence whose tracks keep their ids from image to image (mmpose: a new
    # id for every person of every image, restarting at 0 per image) and an id stays on the same person
    from pose3d_rt.boxes import box_iou

    assert set(results[0].track_ids.tolist()) & set(results[-1].track_ids.tolist())
    for a, b in zip(results, results[1:]):
        shared = sorted(set(a.track_ids.tolist()) & set(b.track_ids.tolist()))
        assert shared
        ia = [a.track_ids.tolist().index(t) for t in shared]
        ib = [b.track_ids.tolist().index(t) for t in shared]
        assert np.diag(box_iou(a.boxes[ia], b.boxes[ib])).min() > 0.3
