"""The MotionBERT lifter at run time (pose3d_rt.lifters.motionbert, .motionbert_stream).

- codec, flip and decode: against closed-form numbers and the real mmpose flip (tests/fixtures/mb/stage.npz);
- the flip-averaged forward and the clip / online streaming lifter: against a tiny stand-in ONNX built here with the
  exported model's contract (``keypoints`` (N, T, 17, 3), dynamic N and T, output (N, T, 17, 3), family=motionbert
  metadata) whose output is a closed-form function of its input (a per-frame linear map plus a linear map of the
  clip's temporal mean, so clip boundaries and the score channel change the numbers);
- the real exported MotionBERT (the fixture checkpoint through hub.resolve) when the export is available.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
from conftest import FIXTURES
from pose3d_rt.engines import load_engine
from pose3d_rt.errors import InputError
from pose3d_rt.lifters import Lifter
from pose3d_rt.lifters.codec import normalize_screen_coordinates, postprocess_3d
from pose3d_rt.lifters.motionbert import (
    FLIP_INDICES,
    MotionBERTModel,
    decode,
    encode_2d,
    encode_input,
    flip_pose,
    lift_single_frames,
)
from pose3d_rt.lifters.motionbert_stream import MotionBERTLifter, make_lifter

onnx = pytest.importorskip("onnx")

W, H = 640, 480
A = np.array([[0.9, 0.1, 0.3], [0.05, 1.1, -0.2], [0.2, -0.3, 0.5]], np.float32)  # per frame, (in c, out c)
B = np.array([[0.1, 0.0, 0.05], [0.0, 0.1, 0.02], [0.05, 0.05, 0.4]], np.float32)  # of the clip's mean
C = np.array([0.01, -0.02, 0.03], np.float32)


# ---------------------------------------------------------------------------------------------------------------
# the stand-in engine
# ---------------------------------------------------------------------------------------------------------------


def standin_np(x: np.ndarray) -> np.ndarray:
    """Closed form of the stand-in: ``x @ A + mean_T(x) @ B + C``, (N, T, 17, 3) -> (N, T, 17, 3)."""
    x = np.asarray(x, np.float64)
    return x @ A + x.mean(axis=1, keepdims=True) @ B + C


def build_standin(path: Path, window: int = 243) -> Path:
    h, tp = onnx.helper, onnx.TensorProto
    inp = h.make_tensor_value_info("keypoints", tp.FLOAT, ["N", "T", 17, 3])
    out = h.make_tensor_value_info("keypoints_3d", tp.FLOAT, ["N", "T", 17, 3])
    inits = [onnx.numpy_helper.from_array(v, n) for n, v in (("A", A), ("B", B), ("C", C))]
    nodes = [
        h.make_node("MatMul", ["keypoints", "A"], ["xa"]),
        h.make_node("ReduceMean", ["keypoints"], ["m"], axes=[1], keepdims=1),
        h.make_node("MatMul", ["m", "B"], ["mb"]),
        h.make_node("Add", ["xa", "mb"], ["s"]),
        h.make_node("Add", ["s", "C"], ["keypoints_3d"]),
    ]
    model = h.make_model(h.make_graph(nodes, "standin", [inp], [out], inits),
                         opset_imports=[h.make_opsetid("", 17)])
    meta = {"family": "motionbert", "form": "seq2seq", "window": str(window), "receptive_field": str(window),
            "in_channels": "3", "input_joint_order": "h36m", "dataset": "h36m"}
    for k, v in meta.items():
        p = model.metadata_props.add()
        p.key, p.value = k, v
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


class CountingEngine:
    """Wraps an engine, recording the batch shape of every call."""

    def __init__(self, engine):
        self.engine = engine
        self.inputs, self.outputs = engine.inputs, engine.outputs
        self.metadata, self.path = engine.metadata, engine.path
        self.calls: List[tuple] = []

    def run(self, feed):
        self.calls.append(next(iter(feed.values())).shape)
        return self.engine.run(feed)


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    return load_engine(build_standin(tmp_path_factory.mktemp("mb") / "standin.onnx"))


def flip_avg_np(x: np.ndarray) -> np.ndarray:
    return (standin_np(x) + flip_pose(standin_np(flip_pose(x)).astype(np.float32))) * 0.5


# ---------------------------------------------------------------------------------------------------------------
# codec, flip, decode
# ---------------------------------------------------------------------------------------------------------------


def test_encode_is_the_tcn_codec_with_the_real_frame_size_in_mmpose_dtypes():
    kp = np.array([[[0, 0], [W, H], [W / 2, H / 2], [123.4, 77.7]] + [[10, 20]] * 13], np.float32)
    enc = encode_2d(kp, W, H)
    np.testing.assert_array_equal(enc[0, :3], [[-1, -H / W], [1, H / W], [0, 0]])
    np.testing.assert_allclose(enc, normalize_screen_coordinates(kp, W, H), rtol=0, atol=2e-7)
    # mmpose: kp / w * 2 in float32, minus [1, h / w] in float64, stored float32
    ref = ((kp / np.float32(W) * np.float32(2)).astype(np.float64) - np.array([1.0, H / W])).astype(np.float32)
    np.testing.assert_array_equal(enc, ref)
    x = encode_input(kp, W, H)
    np.testing.assert_array_equal(x[..., 2], 1.0)  # mmpose's constant confidence (I3)
    sc = np.linspace(0, 1, 17, dtype=np.float32)[None]
    np.testing.assert_array_equal(encode_input(kp, W, H, sc)[..., 2], sc)
    with pytest.raises(InputError, match="scores"):
        encode_input(kp, W, H, sc[:, :5])


def test_flip_is_bit_exact_with_mmpose_flip_coordinates():
    stage = np.load(FIXTURES / "mb" / "stage.npz")
    np.testing.assert_array_equal(stage["flip_indices"], FLIP_INDICES)
    for t in ("t1", "t81", "t243"):
        np.testing.assert_array_equal(flip_pose(stage[f"{t}_input"]), stage[f"{t}_input_flipped"])
    x = np.zeros((1, 17, 3), np.float32)
    x[0, :, 0] = np.arange(17) / 10
    x[0, :, 2] = np.arange(17)
    f = flip_pose(x)
    np.testing.assert_allclose(f[0, :, 0], -np.arange(17)[FLIP_INDICES] / 10, atol=1e-7)
    np.testing.assert_array_equal(f[0, :, 2], np.arange(17)[FLIP_INDICES])  # channel 3 only reordered
    np.testing.assert_allclose(flip_pose(f), x, atol=1e-7)


def test_decode_closed_form_and_mmpose_dtypes():
    rng = np.random.default_rng(0)
    p = rng.uniform(-0.5, 0.5, (2, 5, 17, 3)).astype(np.float32)
    out = decode(p, W, H)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[..., 0, :], 0.0)  # the root is the origin
    # root zeroed, (p + [1, h/w]) * w/2 * 4, minus the root, / 1000  ==  p * w * 2 / 1000 (root row excluded)
    np.testing.assert_allclose(out[..., 1:, :], p[..., 1:, :].astype(np.float64) * W * 2 / 1000, rtol=2e-6,
                               atol=1e-7)
    # step by step as mmpose (float64 then stored float32 at each assignment)
    k = p.copy()
    k[..., 0, :] = 0
    k[..., :2] = (k[..., :2] + np.array([1.0, H / W])) * np.array([[W]]) / 2
    k[..., 2:] = k[..., 2:] * np.array([[W]]) / 2
    k *= np.float32(4.0)
    k -= k[..., :1, :]
    k /= 1000.0
    np.testing.assert_array_equal(out, k)
    with pytest.raises(InputError):
        decode(p, 0, H)


# ---------------------------------------------------------------------------------------------------------------
# the model wrapper and the single-frame (Inferencer) path
# ---------------------------------------------------------------------------------------------------------------


def test_flip_averaging_runs_one_engine_call_of_2b(standin):
    eng = CountingEngine(standin)
    m = MotionBERTModel(eng)
    assert m.spec.family == "motionbert" and m.spec.alignment == "seq2seq" and m.spec.window == 243
    x = np.random.default_rng(1).normal(0, 0.3, (3, 20, 17, 3)).astype(np.float32)
    np.testing.assert_allclose(m.infer(x), flip_avg_np(x), rtol=1e-5, atol=1e-6)
    assert eng.calls == [(6, 20, 17, 3)]
    np.testing.assert_allclose(MotionBERTModel(standin, flip=False).infer(x), standin_np(x), rtol=1e-5, atol=1e-6)
    assert np.abs(flip_avg_np(x) - standin_np(x)).max() > 1e-3  # the flip changes the numbers: discriminates


def test_more_frames_than_the_temporal_embedding_is_a_clear_error(standin):
    m = MotionBERTModel(standin)
    with pytest.raises(InputError, match="244 frames.*1 to 243"):
        m.infer(np.zeros((1, 244, 17, 3), np.float32))
    with pytest.raises(InputError, match="clip_frames=300"):
        MotionBERTLifter(standin, clip_frames=300)


def test_lift_single_frames_mmpose_mode_uses_constant_confidence(standin):
    rng = np.random.default_rng(2)
    kp = rng.uniform(100, 400, (3, 17, 2)).astype(np.float32)
    sc = rng.uniform(0, 1, (3, 17)).astype(np.float32)
    got = lift_single_frames(standin, kp, (W, H), scores=sc, mode="mmpose")
    x = encode_input(kp, W, H)[:, None]
    ref = postprocess_3d(decode(flip_avg_np(x)[:, 0].astype(np.float32), W, H))
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got[:, :, 2].min(axis=1), 0.0)  # rebased
    np.testing.assert_array_equal(lift_single_frames(standin, kp, (W, H), mode="mmpose"), got)  # scores unused
    default = lift_single_frames(standin, kp, (W, H), scores=sc, mode="default")
    assert np.abs(default - got).max() > 1e-3  # default mode feeds the scores (I3)
    assert lift_single_frames(standin, kp[:0], (W, H)).shape == (0, 17, 3)
    with pytest.raises(InputError):
        lift_single_frames(standin, kp[:, :5], (W, H))


# ---------------------------------------------------------------------------------------------------------------
# the streaming clip lifter
# ---------------------------------------------------------------------------------------------------------------


def _walk(t: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.uniform(-60, 60, (1, 17, 2)) + np.array([300.0, 220.0])
    return (base + np.cumsum(rng.normal(0, 2.0, (t, 1, 2)), axis=0)).astype(np.float32)


def _scores(t: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed + 100).uniform(0.2, 1.0, (t, 17)).astype(np.float32)


# id -> (first frame, number of frames, missing frames, end_track() after its last frame)
SCENARIO = {
    0: (0, 600, set(), False),  # > 2 clips: 243 + 243 + 114 (flushed)
    4: (10, 50, {20, 21, 22}, True),  # a gap, ended by the tracker: its clip runs up to its last observation
    9: (250, 350, {400}, False),  # starts mid-stream, clips from its own first frame
}
FRAMES = 600
EMPTY = {590}  # a frame without anybody


def _observed(tid: int, t: int) -> bool:
    start, n, missing, _ = SCENARIO[tid]
    return start <= t < start + n and t not in missing and t not in EMPTY


def _run(lifter: Lifter, frames: int = FRAMES):
    arrived: Dict[int, int] = {}
    out = []
    for t in range(frames):
        ids = [tid for tid in SCENARIO if _observed(tid, t)]
        kp = np.array([_walk(SCENARIO[i][1], i)[t - SCENARIO[i][0]] for i in ids], np.float32).reshape(-1, 17, 2)
        sc = np.array([_scores(SCENARIO[i][1], i)[t - SCENARIO[i][0]] for i in ids], np.float32).reshape(-1, 17)
        got = lifter.update(kp, ids, scores_2d=sc, frame_size=(W, H), frame_index=t)
        arrived.update({lf.frame_index: t for lf in got})
        out += got
        lifter.end_tracks([i for i, (s, n, _, end) in SCENARIO.items() if end and t == s + n - 1])
    out += lifter.flush()
    return out, arrived


def _clip_reference(tid: int, clips: List[tuple], online: bool = False) -> Dict[int, np.ndarray]:
    """Offline: the track's frames (gaps carry the last observation), cut into the given clips, each run
    through the closed-form stand-in with flip averaging, decoded, post-processed; {frame: (17, 3)}."""
    start, n, _, _ = SCENARIO[tid]
    kp, sc = _walk(n, tid), _scores(n, tid)
    x = np.zeros((n, 17, 3), np.float32)
    for i in range(n):
        j = i
        while not _observed(tid, start + j):
            j -= 1
        x[i] = encode_input(kp[j], W, H, sc[j])
    ref = {}
    for a, b in clips:  # frames a .. b - 1 (stream indices)
        if online:
            y = flip_avg_np(x[None, a - start:b - start])[0, -1:]
            frames = [b - 1]
        else:
            y = flip_avg_np(x[None, a - start:b - start])[0]
            frames = list(range(a, b))
        disp = postprocess_3d(decode(y.astype(np.float32), W, H))
        ref.update({f: d for f, d in zip(frames, disp) if _observed(tid, f)})
    return ref


def test_clip_lifting_equals_the_model_run_offline_on_the_same_clips(standin):
    lifter = MotionBERTLifter(standin, norm_pose_2d=False, max_missing=None)
    out, arrived = _run(lifter)
    assert [lf.frame_index for lf in out] == list(range(FRAMES))  # every frame once, in order
    expected = {
        0: _clip_reference(0, [(0, 243), (243, 486), (486, 600)]),
        4: _clip_reference(4, [(10, 60)]),
        9: _clip_reference(9, [(250, 493), (493, 600)]),
    }
    for lf in out:
        want = sorted(i for i in SCENARIO if _observed(i, lf.frame_index))
        assert lf.track_ids.tolist() == want
        for i, tid in enumerate(want):
            np.testing.assert_allclose(lf.keypoints_3d[i], expected[tid][lf.frame_index], rtol=1e-4, atol=2e-6)
    assert len(out[590]) == 0  # an empty frame yields no person
    # wrong clip boundaries would not match: the stand-in sees each clip's temporal mean
    shifted = _clip_reference(0, [(0, 200), (200, 443), (443, 600)])
    assert np.abs(shifted[100] - expected[0][100]).max() > 1e-4
    # bounded latency: every frame is out at most clip_frames - 1 = 242 frames after it was read
    lat = [arrived[f] - f for f in range(FRAMES) if f in arrived]
    assert max(lat) <= lifter.latency == 242 and lat[0] == 242


def test_buffers_stay_bounded_on_a_long_stream(standin):
    lifter = MotionBERTLifter(standin, norm_pose_2d=False, max_missing=None, clip_frames=16)
    kp = _walk(2000, 3)
    shapes = set()
    n_out = 0
    for t in range(2000):
        n_out += len(lifter.update(kp[t:t + 1], [7], frame_size=(W, H)))
        shapes.add((lifter.buffer_shape, lifter._out3d.shape))
    n_out += len(lifter.flush())
    assert n_out == 2000
    assert shapes == {((8, 243, 17, 3), (8, 243, 17, 3))}  # fixed ring, no growth with the video length


def test_default_mode_feeds_the_2d_scores_as_channel_3(standin):
    """I3 fixed: the same poses with other scores give other 3D (a constant channel would not)."""
    kp = _walk(30, 5)
    res = []
    for sc in (np.full((30, 17), 0.9, np.float32), _scores(30, 5)):
        lifter = MotionBERTLifter(standin, norm_pose_2d=False)
        out = [lf for t in range(30) for lf in lifter.update(kp[t:t + 1], [1], scores_2d=sc[t:t + 1],
                                                             frame_size=(W, H))]
        out += lifter.flush()
        res.append(np.stack([lf.keypoints_3d[0] for lf in out]))
        x = encode_input(kp, W, H, sc)[None]
        np.testing.assert_allclose(res[-1], postprocess_3d(decode(flip_avg_np(x)[0].astype(np.float32), W, H)),
                                   rtol=1e-4, atol=2e-6)
    assert np.abs(res[0] - res[1]).max() > 1e-3


def test_online_lifts_each_frame_from_the_window_ending_at_it(standin):
    lifter = MotionBERTLifter(standin, norm_pose_2d=False, online=True, max_missing=None, clip_frames=40)
    assert lifter.latency == 0
    out, arrived = _run(lifter, frames=120)
    assert all(arrived[f] == f for f in range(120))
    ref0 = _clip_reference(0, [(max(0, t - 39), t + 1) for t in range(120)], online=True)
    ref4 = _clip_reference(4, [(max(10, t - 39), t + 1) for t in range(10, 60)], online=True)
    for lf in out:
        for i, tid in enumerate(lf.track_ids.tolist()):
            want = (ref0 if tid == 0 else ref4)[lf.frame_index]
            np.testing.assert_allclose(lf.keypoints_3d[i], want, rtol=1e-4, atol=2e-6)


def test_track_end_flushes_its_clip_before_the_clip_is_full(standin):
    lifter = MotionBERTLifter(standin, norm_pose_2d=False, max_missing=None)
    kp = _walk(20, 8)
    out = []
    for t in range(20):
        out += lifter.update(kp[t:t + 1], [3], frame_size=(W, H))
    assert out == []  # waiting for the clip to fill
    lifter.end_track(3)
    out += lifter.update(np.zeros((0, 17, 2), np.float32), [], frame_size=(W, H))
    assert [lf.frame_index for lf in out] == list(range(21)) and len(out[-1]) == 0
    assert lifter.active_track_ids.size == 0  # its slot is free again


def test_make_lifter_picks_the_family_and_mmpose_mode_is_a_clear_error(standin):
    from benchmarks.fakes import LinearLifter

    assert type(make_lifter(standin)) is MotionBERTLifter
    assert type(make_lifter(LinearLifter(9))) is Lifter
    with pytest.raises(InputError, match="inferencer"):
        make_lifter(standin, mode="mmpose")


def test_pipeline_with_a_motionbert_engine_joins_delayed_clip_results(standin):
    from pose3d_rt.io.sources import FrameSource
    from pose3d_rt.pipeline import Pose3DPipeline

    from benchmarks.fakes import ScriptedDetector, TemplatePose, walking_boxes

    n = 30
    frames = FrameSource.from_frames((np.full((240, 320, 3), 90, np.uint8) for _ in range(n)), 320, 240,
                                     total_frames=n)
    empty = walking_boxes(2, 320)
    script = lambda k: np.zeros((0, 5), np.float32) if k == 7 else empty(k)  # noqa: E731
    pipe = Pose3DPipeline(ScriptedDetector(script, 320), TemplatePose(), standin, rebase_keypoint=False)
    assert isinstance(pipe._lifter, MotionBERTLifter) and pipe.latency == 242
    res = list(pipe.stream(frames))
    assert [r.frame_index for r in res] == list(range(n))
    assert [len(r) for r in res] == [2] * 7 + [0] + [2] * 22
    assert all(np.isfinite(r.keypoints_3d).all() for r in res)
    # the 3D of track 0 is its clip (frames 0..29 but 7, the gap carried) through the model, offline
    lifter = MotionBERTLifter(standin, rebase="none", keypoint_source="coco")
    kp = [r.keypoints_2d[0] for r in res if len(r)]
    sc = [r.scores_2d[0] for r in res if len(r)]
    bb = [r.boxes[0] for r in res if len(r)]
    from pose3d_rt.keypoint_sets import convert_keypoint_definition, convert_keypoint_scores

    h36m = convert_keypoint_definition(np.stack(kp), "coco")
    norm = lifter._normalize(h36m, convert_keypoint_scores(np.stack(sc), "coco"), np.stack(bb), (320, 240))
    norm = np.concatenate([norm[:7], norm[6:7], norm[7:]])  # frame 7: the carried frame 6
    y = decode(flip_avg_np(norm[None])[0].astype(np.float32), 1000, 1000)  # norm_pose_2d: the H36M frame
    ref = postprocess_3d(y, rebase=False)
    got = {r.frame_index: r.keypoints_3d[0] for r in res if len(r)}
    for f, k3 in got.items():
        np.testing.assert_allclose(k3, ref[f], rtol=1e-4, atol=2e-6)
    with pytest.raises(InputError, match="inferencer"):
        Pose3DPipeline(ScriptedDetector(script, 320), TemplatePose(), standin, mode="mmpose")


# ---------------------------------------------------------------------------------------------------------------
# the real exported MotionBERT (fixture checkpoint -> hub.resolve)
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mb_engine(checkpoints):
    from conftest import MOTIONBERT
    from pose3d_rt.hub import Role, resolve

    return resolve(checkpoints[MOTIONBERT], Role.LIFTER, threads=2, export_options={})


def test_real_model_flip_average_matches_mmpose_forward(mb_engine):
    """The flip-averaged forward equals mmpose's (stage.npz: plain and flipped raw outputs of the real forward)."""
    stage = np.load(FIXTURES / "mb" / "stage.npz")
    m = MotionBERTModel(mb_engine)
    assert m.spec.window == 243 and m.spec.family == "motionbert"
    for t in ("t1", "t81"):  # t81 has a non-constant confidence channel
        ref = (stage[f"{t}_output"] + flip_pose(stage[f"{t}_output_flipped"])) * np.float32(0.5)
        got = m.infer(stage[f"{t}_input"])
        assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()
    with pytest.raises(InputError, match="244 frames"):
        m.infer(np.zeros((1, 244, 17, 3), np.float32))


def test_real_model_clip_lifting_equals_the_engine_run_offline_on_the_same_clips(mb_engine):
    """MotionBERTLifter (clips of 16 frames here, to keep the test short) on two tracks, one ending early, equals
    the raw engine run on the same clips ([x; flip x] by hand), flip-averaged, decoded and post-processed."""
    n, clip = 40, 16
    kps = {0: _walk(n, 11), 5: _walk(n, 12)}
    scs = {0: _scores(n, 11), 5: _scores(n, 12)}
    lifter = MotionBERTLifter(mb_engine, norm_pose_2d=False, clip_frames=clip)
    out = []
    for t in range(n):
        ids = [0] + ([5] if t < 21 else [])
        out += lifter.update(np.stack([kps[i][t] for i in ids]), ids, scores_2d=np.stack([scs[i][t] for i in ids]),
                             frame_size=(W, H))
        if t == 20:
            lifter.end_track(5)
    out += lifter.flush()
    assert [lf.frame_index for lf in out] == list(range(n))
    clips = {0: [(0, 16), (16, 32), (32, 40)], 5: [(0, 16), (16, 21)]}
    for tid, ranges in clips.items():
        x = encode_input(kps[tid], W, H, scs[tid])
        for a, b in ranges:
            c = x[None, a:b]
            y = mb_engine.run({"keypoints": np.concatenate([c, flip_pose(c)])})["keypoints_3d"]
            ref = postprocess_3d(decode((y[:1] + flip_pose(y[1:])) * np.float32(0.5), W, H))[0]
            got = np.stack([lf.keypoints_3d[list(lf.track_ids).index(tid)] for lf in out[a:b]])
            np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5 * np.abs(ref).max())


def test_run_in_mmpose_mode_with_motionbert_is_a_one_line_error(capsys, tmp_path):
    """Refused before any download (a MotionBERT file is refused once loaded: the pipeline test above);
    mmpose's MotionBERT path is the inferencer command."""
    from pose3d_rt.cli.main import main

    img = str(FIXTURES / "inputs" / "still_group_960x600.png")
    code = main(["run", img, "--lifter", "human3d", "--mode", "mmpose", "--output-root", str(tmp_path)])
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("pose3d-rt: error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err
    assert "--lifter human3d" in lines[0] and "pose3d-rt inferencer" in lines[0]


def test_more_tracks_than_initial_slots_grow_the_pool_and_batch_their_clips(standin):
    eng = CountingEngine(standin)
    n, clip, tracks = 20, 8, 11
    kps = np.stack([_walk(n, 30 + i) for i in range(tracks)])  # (tracks, n, 17, 2)
    lifter = MotionBERTLifter(eng, norm_pose_2d=False, clip_frames=clip, initial_tracks=2)
    out = [lf for t in range(n) for lf in lifter.update(kps[:, t], np.arange(tracks), frame_size=(W, H))]
    out += lifter.flush()
    assert [lf.frame_index for lf in out] == list(range(n)) and lifter.buffer_shape[0] >= tracks
    # each round of clips is one engine call of 2 x 11 clips (flip), not one call per track
    assert [c[:2] for c in eng.calls] == [(2 * tracks, clip), (2 * tracks, clip), (2 * tracks, n - 2 * clip)]
    x = encode_input(kps, W, H, np.ones((tracks, n, 17), np.float32))
    ref = np.concatenate([flip_avg_np(x[:, a:b]) for a, b in ((0, 8), (8, 16), (16, 20))], axis=1)
    ref = postprocess_3d(decode(ref.astype(np.float32), W, H))
    got = np.stack([lf.keypoints_3d for lf in out], axis=1)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=2e-6)
