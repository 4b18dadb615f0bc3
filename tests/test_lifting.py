"""Lifting: the mmpose parity data path against the lift fixtures, a numpy TCN reference against the fixtures'
network outputs, and the streaming Lifter (exact / online) against closed forms and offline inference."""
from __future__ import annotations

import importlib.util
import json
import sys
from functools import cache
from typing import Dict, List, Optional

import numpy as np
import pytest
from conftest import FIXTURES, requires_torch
from pose3d_rt.engines.base import Engine, TensorSpec
from pose3d_rt.engines.errors import ModelError
from pose3d_rt.errors import InputError
from pose3d_rt.keypoint_sets import convert_keypoint_definition
from pose3d_rt.lifters import EngineLifter, LiftedFrame, Lifter, codec_frame_size, lift_offline
from pose3d_rt.lifters.codec import normalize_screen_coordinates, postprocess_3d
from pose3d_rt.lifters.mmpose_parity import (
    MMPoseHistory,
    PoseFrame,
    collate_pose_sequence,
    extract_pose_sequence,
    from_tcn_layout,
    mmpose_model_input,
    stack_window,
    to_tcn_layout,
    window_indices,
)

LIFT = FIXTURES / "lift"
MODELS = ("videopose3d_27f_supv", "videopose3d_243f_supv_cpn_ft")
SUMMARY = json.loads((LIFT / "summary.json").read_text())
CASES = [(m, f.stem) for m in MODELS for f in sorted((LIFT / m).glob("*.npz"))]


# ------------------------------------------------------------------------------------------------ fixture input --

@cache
def gt_video() -> tuple:
    """The synthetic video's ground truth as mmpose saw it: H36M keypoints, id = figure A..E -> 0..4, GT box."""
    g = json.loads((FIXTURES / "inputs" / "synthetic_gt.json").read_text())
    frames = []
    for fr in g["frames"]:
        figs = fr["figures"]
        frames.append(PoseFrame(
            np.array([f["keypoints_h36m"] for f in figs], np.float32).reshape(-1, 17, 2),
            np.array(["ABCDE".index(f["figure"]) for f in figs], np.int64),
            np.array([f["bbox_xyxy"] for f in figs], np.float32).reshape(-1, 4),
        ))
    return tuple(frames)


def case_history(case: str) -> List[PoseFrame]:
    d = np.load(LIFT / MODELS[0] / f"{case}.npz")
    if case.startswith("gtvideo"):
        return list(gt_video()[: int(d["video_num_frames"])])
    pose = np.load(FIXTURES / "pose" / "rtmpose_m_body8_256x192" / f"{case[len('pose_'):]}.npz")
    kp = convert_keypoint_definition(pose["keypoints"], "coco")
    return [PoseFrame(kp, np.arange(len(kp)), pose["bboxes_in"], convert_keypoint_definition(
        pose["keypoint_scores"][..., None], "coco")[..., 0])]


# ------------------------------------------------------------------------------------ numpy TCN (reference) --

@cache
def tcn_weights(name: str) -> Dict[str, np.ndarray]:
    sys.path.insert(0, str(FIXTURES))
    try:
        import build_checkpoint  # torch-free part of the fixture recipe
    finally:
        sys.path.pop(0)
    sd = build_checkpoint.load_state_dict_numpy(name)
    return {k.replace("keypoint_head.", "head."): np.asarray(v, np.float64) for k, v in sd.items()}


def _cbr(sd, prefix, x, stride, dilation):
    """conv (no bias, valid) -> BN (eval, eps 1e-5) -> ReLU on (N, C, L), float64."""
    w = sd[prefix + ".conv.weight"]
    k = w.shape[-1]
    span = (k - 1) * dilation + 1
    cols = np.stack([x[:, :, j * dilation: x.shape[2] - span + 1 + j * dilation: stride] for j in range(k)], -1)
    y = np.tensordot(cols, w, axes=([1, 3], [1, 2])).transpose(0, 2, 1)  # (N, O, L)
    bn = {p: sd[f"{prefix}.bn.{p}"][None, :, None] for p in ("weight", "bias", "running_mean", "running_var")}
    y = (y - bn["running_mean"]) / np.sqrt(bn["running_var"] + 1e-5) * bn["weight"] + bn["bias"]
    return np.maximum(y, 0)


def numpy_tcn(name: str, x: np.ndarray, form: str = "strided") -> np.ndarray:
    """mmpose's TCN + TemporalRegressionHead (docs/MMPOSE_BEHAVIOUR.md, VideoPose3D) on (N, 34, T): (N, L_out, 17, 3), float64."""
    sd = tcn_weights(name)
    k0 = sd["backbone.expand_conv.conv.weight"].shape[-1]
    strided = form == "strided"
    x = _cbr(sd, "backbone.expand_conv", np.asarray(x, np.float64), k0 if strided else 1, 1)
    d, i = k0, 0
    while f"backbone.tcn_blocks.{i}.conv1.0.conv.weight" in sd:
        k = sd[f"backbone.tcn_blocks.{i}.conv1.0.conv.weight"].shape[-1]
        if strided:
            res = x[:, :, k // 2:: k]
            y = _cbr(sd, f"backbone.tcn_blocks.{i}.conv1.0", x, k, 1)
        else:
            pad = (k - 1) * d // 2
            res = x[:, :, pad: x.shape[2] - pad]
            y = _cbr(sd, f"backbone.tcn_blocks.{i}.conv1.0", x, 1, d)
        x = _cbr(sd, f"backbone.tcn_blocks.{i}.conv2.0", y, 1, 1) + res
        d *= k
        i += 1
    out = np.einsum("ncl,oc->nol", x, sd["head.conv.weight"][:, :, 0]) + sd["head.conv.bias"][None, :, None]
    return out.transpose(0, 2, 1).reshape(out.shape[0], out.shape[2], 17, 3)


def rf_of(name: str) -> int:
    return int(SUMMARY[name]["seq_len"])


class NumpyTCNEngine(Engine):
    """A fake Engine running the numpy TCN: ``keypoints`` (N, T, 17, 2) -> (N, F, 17, 3)."""

    def __init__(self, name: str, form: str = "strided") -> None:
        rf = rf_of(name)
        t = rf if form == "strided" else None
        super().__init__(path=f"{name}.{form}.onnx",
                         inputs=(TensorSpec("keypoints", (None, t, 17, 2), np.float32),),
                         outputs=(TensorSpec("keypoints_3d", (None, 1 if t else None, 17, 3), np.float32),),
                         metadata={"family": "tcn", "receptive_field": str(rf), "causal": "false", "form": form,
                                   "input_joint_order": "h36m", "dataset": "h36m"})
        self.name, self.form, self.calls = name, form, []

    def run(self, inputs):
        x = inputs["keypoints"]
        self.calls.append(x.shape)
        return {"keypoints_3d": numpy_tcn(self.name, to_tcn_layout(x), self.form).astype(np.float32)}


class LinearTCNEngine(Engine):
    """A fake 'TCN' with a known closed form: out[j] = sum_k w[k] * (x[j + k] @ A) + b, i.e. a linear temporal
    filter of receptive field ``rf``; strided (T = RF, 1 output) or dilated (any T >= RF, T - RF + 1 outputs)."""

    def __init__(self, rf: int, form: str = "strided", causal: bool = False, channels: int = 2,
                 family: str = "tcn", metadata: Optional[dict] = None) -> None:
        rng = np.random.default_rng(rf)
        self.rf, self.form = rf, form
        self.w = rng.uniform(0.5, 1.5, rf)
        self.a = rng.normal(size=(channels, 3))
        self.b = rng.normal(size=3)
        t = rf if form == "strided" else None
        meta = {"family": family, "receptive_field": str(rf), "causal": str(causal).lower(), "form": form}
        meta.update(metadata or {})
        super().__init__(path=f"linear_rf{rf}_{form}.onnx",
                         inputs=(TensorSpec("keypoints", (None, t, 17, channels), np.float32),),
                         outputs=(TensorSpec("out", (None, None, 17, 3), np.float32),), metadata=meta)
        self.calls: List[np.ndarray] = []

    def closed_form(self, x: np.ndarray) -> np.ndarray:
        """(B, T, 17, C) -> (B, T - RF + 1, 17, 3) in float64."""
        x = np.asarray(x, np.float64)
        n_out = x.shape[1] - self.rf + 1
        y = sum(self.w[k] * x[:, k: k + n_out] for k in range(self.rf))
        return y @ self.a + self.b

    def run(self, inputs):
        x = inputs["keypoints"]
        self.calls.append(x.copy())
        return {"out": self.closed_form(x).astype(np.float32)}


def _max_abs(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))) if np.size(a) else 0.0


# ---------------------------------------------------------------------------------- (1) parity data path --

@pytest.mark.parametrize("model,case", CASES)
def test_parity_window_and_model_input(model, case):
    d = np.load(LIFT / model / f"{case}.npz")
    seq_len = rf_of(model)
    win = extract_pose_sequence(case_history(case), int(d["frame_idx"]), seq_len=seq_len)
    wa = stack_window(win)
    np.testing.assert_array_equal(wa.keypoints, d["seq_keypoints_2d"])  # NaN padding included
    np.testing.assert_array_equal(wa.bboxes, d["seq_bboxes"])
    np.testing.assert_array_equal(wa.track_ids, d["seq_track_ids"])
    np.testing.assert_array_equal(wa.num_persons, d["seq_num_persons"])
    errs = {}
    for prefix, norm in (("norm__", True), ("nonorm__", False)):
        inp = mmpose_model_input(win, image_size_arg=tuple(int(v) for v in d["image_size_arg"]), norm_pose_2d=norm)
        mi = to_tcn_layout(inp.model_input)
        ref = d[prefix + "model_input"]
        assert mi.shape == ref.shape
        errs[prefix] = _max_abs(mi, ref)
        assert errs[prefix] <= 1e-6, (prefix, errs[prefix])
        np.testing.assert_array_equal(from_tcn_layout(mi), inp.model_input)
    print(f"{model}/{case}: max|d model_input| norm {errs['norm__']:.3g} nonorm {errs['nonorm__']:.3g}")


def test_parity_q9_zero_replication_and_corrected_collate():
    """gtvideo_f038 (243): A and B vanish at frame 41 = window slot 124; mmpose fills the rest with (0, 0) px."""
    d = np.load(LIFT / MODELS[1] / "gtvideo_f038.npz")
    win = extract_pose_sequence(case_history("gtvideo_f038"), 38, seq_len=243)
    inp = mmpose_model_input(win, image_size_arg=(384, 640), norm_pose_2d=False)
    assert (inp.sequences[:, 124:] == 0).all() and (inp.sequences[:, :124] != 0).all()
    np.testing.assert_allclose(d["nonorm__model_input"][:, 0, 124:], -1.0)  # x: (0 - 192) / 192
    wa = stack_window(win)
    _, _, fixed = collate_pose_sequence(wa.track_ids, wa.valid, wa.keypoints, 121, mmpose_right_edge=False)
    assert not (fixed == 0).any()  # corrected: the last found frame is replicated
    np.testing.assert_array_equal(fixed[:, 124:], np.broadcast_to(fixed[:, 123:124], fixed[:, 124:].shape))
    np.testing.assert_array_equal(fixed[:, :124], inp.sequences[:, :124])


def test_collate_left_scan_stops_at_first_gap():
    """A track missing at frame 1 but present at frame 0: frames 0..1 repeat frame 2 (earlier frames ignored)."""
    kp = lambda v: np.full((1, 17, 2), v, np.float32)  # noqa: E731
    frames = [PoseFrame(kp(1), [7]), PoseFrame(kp(2), [3]), PoseFrame(kp(3), [7]), PoseFrame(kp(4), [7]),
              PoseFrame(kp(5), [7]), PoseFrame(np.zeros((0, 17, 2)), []), PoseFrame(kp(7), [7])]
    wa = stack_window(frames)
    _, ids, seq = collate_pose_sequence(wa.track_ids, wa.valid, wa.keypoints, 3)
    assert ids.tolist() == [7]
    np.testing.assert_array_equal(seq[0, :, 0, 0], [3, 3, 3, 4, 5, 0, 0])
    _, _, seq = collate_pose_sequence(wa.track_ids, wa.valid, wa.keypoints, 3, mmpose_right_edge=False)
    np.testing.assert_array_equal(seq[0, :, 0, 0], [3, 3, 3, 4, 5, 5, 5])


def test_window_indices_q1_and_bounded_history():
    # correct streaming call (frame_idx = n - 1) vs the demo's 1-based call (frame_idx = n), 27 frames, n = 30
    ok = window_indices(30, 29, seq_len=27)
    assert ok.tolist() == list(range(16, 30)) + [29] * 13
    q1 = window_indices(30, 30, seq_len=27)
    assert q1.tolist() == list(range(17, 30)) + [29] * 14  # newest at T//2 - 1 and T//2, past shifted by one
    assert window_indices(1, 0, seq_len=27).tolist() == [0] * 27
    assert window_indices(5, 0, seq_len=5, causal=True).tolist() == [0] * 5
    # the bounded history gives the same window as the full list, and keeps only fl + 1 frames
    video = gt_video()
    hist = MMPoseHistory(27)
    for n, fr in enumerate(video, 1):
        hist.append(fr)
        assert len(hist) <= 14
        w = hist.window(n)
        full = extract_pose_sequence(list(video[:n]), n, seq_len=27)
        assert all(a is b for a, b in zip(w, full)) and len(w) == len(full) == 27
    with pytest.raises(InputError, match="lookahead"):
        hist.window(20)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("case", ["gtvideo_online_n021", "gtvideo_online_n060"])
def test_mmpose_mode_streaming_reproduces_the_demo_window(model, case):
    """Lifter(mode='mmpose') fed frame by frame (bounded history, Q1, Q2) builds the fixture's model input."""
    d = np.load(LIFT / model / f"{case}.npz")
    eng = LinearTCNEngine(rf_of(model))
    lifter = Lifter(eng, mode="mmpose", frame_size=(640, 384), postprocess=False)
    video = gt_video()[: int(d["video_num_frames"])]
    for fr in video:
        out = lifter.update(fr.keypoints, fr.track_ids, bboxes=fr.bboxes)
        assert len(out) == 1
    assert len(lifter._history) <= rf_of(model) // 2 + 1
    err = _max_abs(to_tcn_layout(eng.calls[-1]), d["norm__model_input"])
    assert err <= 1e-6
    last = out[0]
    assert last.frame_index == len(video) - 1
    assert last.track_ids.tolist() == sorted(video[-1].track_ids.tolist())
    np.testing.assert_array_equal(last.keypoints_2d, video[-1].keypoints[np.argsort(video[-1].track_ids)])


# ------------------------------------------------------------------------------- (2) network + decode --

@pytest.mark.parametrize("model,case", CASES)
def test_numpy_tcn_reproduces_raw_output_and_pred(model, case):
    d = np.load(LIFT / model / f"{case}.npz")
    errs = []
    for prefix, norm in (("norm__", True), ("nonorm__", False)):
        raw = numpy_tcn(model, d[prefix + "model_input"])[:, 0]
        ref = d[prefix + "raw_output"]
        errs.append(_max_abs(raw, ref))
        np.testing.assert_allclose(raw, ref, rtol=0, atol=1e-5 * max(1.0, np.abs(ref).max()))
        # the whole path: our window -> our model input -> EngineLifter -> decode (+ zero root) = pred_keypoints
        win = extract_pose_sequence(case_history(case), int(d["frame_idx"]), seq_len=rf_of(model))
        inp = mmpose_model_input(win, image_size_arg=tuple(int(v) for v in d["image_size_arg"]), norm_pose_2d=norm)
        lifter = EngineLifter(NumpyTCNEngine(model))
        pred = lifter.infer(inp.model_input)[:, lifter.spec.output_index][:, None]
        assert pred.shape == d[prefix + "pred_keypoints"].shape
        np.testing.assert_allclose(pred, d[prefix + "pred_keypoints"], rtol=0,
                                   atol=1e-5 * max(1.0, np.abs(ref).max()))
        np.testing.assert_array_equal(d[prefix + "pred_keypoints"][:, 0], d[prefix + "raw_output"])  # root = 0
    print(f"{model}/{case}: max|d raw_output| norm {errs[0]:.3g} nonorm {errs[1]:.3g}")


def test_mmpose_mode_end_to_end_27f_online_case():
    """Demo per-frame lifting of gtvideo_online_n060 with the numpy TCN: the last frame's 3D = fixture pred,
    post-processed like the demo (axes, flips, per-frame rebase) and sorted by track id."""
    model = MODELS[0]
    d = np.load(LIFT / model / "gtvideo_online_n060.npz")
    lifter = Lifter(NumpyTCNEngine(model), mode="mmpose", frame_size=(640, 384))
    for fr in gt_video()[:60]:
        out = lifter.update(fr.keypoints, fr.track_ids, bboxes=fr.bboxes)
    pred = d["norm__pred_keypoints"][:, 0]
    ids = gt_video()[59].track_ids
    order = np.argsort(ids, kind="stable")
    expected = postprocess_3d(pred)[order]
    assert out[0].track_ids.tolist() == ids[order].tolist()
    np.testing.assert_allclose(out[0].keypoints_3d, expected, rtol=0, atol=1e-5 * max(1.0, np.abs(pred).max()))


@requires_torch
def test_real_tcn_reproduces_raw_output(request):
    if importlib.util.find_spec("pose3d_rt.export.models.tcn") is None:
        pytest.skip("pose3d_rt.export.models.tcn not available yet")
    import torch

    checkpoints = request.getfixturevalue("checkpoints")
    from pose3d_rt.export.checkpoint import load_checkpoint
    from pose3d_rt.export.models.tcn import load_model

    for model in MODELS:
        state_dict, _ = load_checkpoint(checkpoints[model])
        net, _ = load_model(state_dict, form="strided")
        net.eval()
        d = np.load(LIFT / model / "gtvideo_f005.npz")
        x = torch.from_numpy(from_tcn_layout(d["norm__model_input"]))  # our export's (N, T, 17, 2) layout
        with torch.no_grad():
            y = net(x).numpy()
        np.testing.assert_allclose(y.reshape(d["norm__raw_output"].shape), d["norm__raw_output"], rtol=1e-4,
                                   atol=1e-4 * max(1.0, np.abs(d["norm__raw_output"]).max()))


# ------------------------------------------------------------------------------ (3) streaming Lifter --

def _walk(t: int, seed: int, origin=(300.0, 200.0)) -> np.ndarray:
    """(t, 17, 2) smooth synthetic pixel trajectories, never (0, 0)."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(-60, 60, (1, 17, 2)) + np.array(origin)
    drift = np.cumsum(rng.normal(0, 2.0, (t, 1, 2)), axis=0)
    wiggle = 5 * np.sin(np.arange(t)[:, None, None] / 3.0 + rng.uniform(0, 6, (1, 17, 2)))
    return (base + drift + wiggle).astype(np.float32)


def _norm(kp: np.ndarray, frame=(640, 384)) -> np.ndarray:
    return normalize_screen_coordinates(kp, *frame)


def _run_stream(lifter: Lifter, tracks: Dict[int, tuple], num_frames: int) -> List[LiftedFrame]:
    """tracks: id -> (first frame, (len, 17, 2) keypoints, set of missing frames)."""
    out: List[LiftedFrame] = []
    for t in range(num_frames):
        ids, kps = [], []
        for tid, (start, kp, missing) in tracks.items():
            if start <= t < start + len(kp) and t not in missing:
                ids.append(tid)
                kps.append(kp[t - start])
        out += lifter.update(np.array(kps, np.float32).reshape(-1, 17, 2), ids, frame_index=t)
    out += lifter.flush()
    return out


def _per_track(frames: List[LiftedFrame]) -> Dict[int, Dict[int, np.ndarray]]:
    res: Dict[int, Dict[int, np.ndarray]] = {}
    for f in frames:
        for i, tid in enumerate(f.track_ids):
            res.setdefault(int(tid), {})[f.frame_index] = f.keypoints_3d[i]
    return res


@pytest.mark.parametrize("rf", [9, 27])
def test_exact_mode_equals_offline_dilated_with_edge_padding(rf):
    tracks = {
        0: (0, _walk(60, 1), set()),  # whole stream
        5: (10, _walk(40, 2), set()),  # enters at frame 10 (left edge replication), leaves at 49
        9: (3, _walk(12, 3), set()),  # shorter than the receptive field
    }
    strided = LinearTCNEngine(rf, "strided")
    lifter = Lifter(strided, norm_pose_2d=False, frame_size=(640, 384), postprocess=False)
    assert lifter.latency == rf // 2
    frames = _run_stream(lifter, tracks, 60)
    assert [f.frame_index for f in frames] == list(range(60))  # one LiftedFrame per input frame, in order
    got = _per_track(frames)
    dilated = LinearTCNEngine(rf, "dilated")
    for tid, (start, kp, _) in tracks.items():
        x = _norm(kp)[None]
        offline = lift_offline(dilated, x)[0]  # one dilated pass over the edge-padded track
        pad = np.pad(x, ((0, 0), (rf // 2, rf // 2), (0, 0), (0, 0)), mode="edge")
        closed = dilated.closed_form(pad)[0]  # independent closed form
        np.testing.assert_allclose(offline, closed, rtol=1e-5, atol=1e-5)
        stream = np.stack([got[tid][start + i] for i in range(len(kp))])
        assert sorted(got[tid]) == list(range(start, start + len(kp)))
        np.testing.assert_allclose(stream, closed, rtol=1e-5, atol=1e-5)
    # one batched engine call per frame with someone to lift (all tracks of the frame together)
    lifted_frames = sum(1 for f in frames if len(f))
    assert len(strided.calls) == lifted_frames - rf // 2 + 1  # flush: the last rf//2 frames in one call
    assert max(c.shape[0] for c in strided.calls[:-1]) == 3


def test_online_mode_equals_frozen_future_windows():
    rf = 9
    eng = LinearTCNEngine(rf)
    kp = _walk(30, 4)
    lifter = Lifter(eng, online=True, norm_pose_2d=False, frame_size=(640, 384), postprocess=False)
    assert lifter.latency == 0
    frames = _run_stream(lifter, {3: (4, kp, set())}, 34)
    assert [f.frame_index for f in frames] == list(range(34))
    x = _norm(kp)
    for i in range(len(kp)):
        idx = np.clip(np.arange(i - rf // 2, i + rf // 2 + 1), 0, i)  # past (first frame left) + frozen now
        expected = eng.closed_form(x[idx][None])[0, 0]
        np.testing.assert_allclose(frames[4 + i].keypoints_3d[0], expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(frames[4 + i].keypoints_2d[0], kp[i])


def test_edge_replication_never_injects_zeros_and_gaps_carry_the_last_frame():
    rf = 9
    eng = LinearTCNEngine(rf)
    a, b = _walk(40, 5), _walk(25, 6, origin=(100, 100))
    gap = {20, 21, 22}  # B (entering at frame 8) misses 3 frames
    lifter = Lifter(eng, norm_pose_2d=False, frame_size=(640, 384), postprocess=False)
    frames = _run_stream(lifter, {1: (0, a, set()), 2: (8, b, {8 + g for g in gap})}, 40)
    for c in eng.calls:
        assert not (c == 0).all(axis=-1).any()  # no (0, 0) joint ever reaches the model
    # B's first lifted window: its first frame replicated over the left half
    first_b = next(c for c in eng.calls if c.shape[0] == 2)
    xb = _norm(b)
    np.testing.assert_array_equal(first_b[1, : rf // 2 + 1], np.broadcast_to(xb[0], (rf // 2 + 1, 17, 2)))
    # B keeps its buffer over the gap: lifted exactly where observed, equal to offline inference over its track
    # with the missing frames filled by the last real observation
    got = _per_track(frames)
    missing = {8 + g for g in gap}
    assert sorted(got[2]) == [f for f in range(8, 33) if f not in missing]
    filled = xb.copy()
    for g in sorted(gap):
        filled[g] = filled[g - 1]
    pad = np.pad(filled[None], ((0, 0), (rf // 2, rf // 2), (0, 0), (0, 0)), mode="edge")
    expected = eng.closed_form(pad)[0]
    for f, v in got[2].items():
        np.testing.assert_allclose(v, expected[f - 8], rtol=1e-5, atol=1e-5)


def test_end_track_emits_pending_frames_in_order_then_frees_the_slot():
    rf = 9
    lifter = Lifter(LinearTCNEngine(rf), norm_pose_2d=False, frame_size=(640, 384), max_missing=None)
    kp = _walk(20, 7)
    emitted = []
    for t in range(20):
        emitted += lifter.update(kp[t: t + 1], [4], frame_index=100 + t)
    assert [f.frame_index for f in emitted] == list(range(100, 100 + 20 - rf // 2))
    lifter.end_track(4)
    assert lifter.active_track_ids.tolist() == [4]  # pending frames still to emit
    for t in range(20, 20 + rf // 2):
        emitted += lifter.update(np.zeros((0, 17, 2)), [], frame_index=100 + t)
    assert lifter.active_track_ids.tolist() == []
    assert [len(f) for f in emitted[-(rf // 2):]] == [1] * (rf // 2)
    assert [f.frame_index for f in emitted] == list(range(100, 100 + 20))
    tail = lifter.flush()
    assert [len(f) for f in tail] == [0] * (rf // 2)
    with pytest.raises(InputError, match="consecutive"):
        lifter.update(kp[:1], [1], frame_index=5)
        lifter.update(kp[:1], [1], frame_index=7)


def test_max_missing_ends_tracks_and_memory_is_bounded_over_10000_frames():
    rf = 27
    lifter = Lifter(LinearTCNEngine(rf), norm_pose_2d=True, max_missing=5)
    kp = _walk(100, 8)
    box = np.array([[200, 100, 400, 400]], np.float32)
    shapes, n_out = set(), 0
    for t in range(10_000):
        # a new id every 25 frames, each visible for 60 frames: 2-3 concurrent tracks, 400 ids in total
        ids = [i for i in range(max(0, t // 25 - 3), t // 25 + 1) if i * 25 <= t < i * 25 + 60]
        k = kp[np.arange(len(ids)) + t % 40]
        n_out += len(lifter.update(k, ids, bboxes=np.repeat(box, len(ids), 0)))
        if t >= 500:
            shapes.add(lifter.buffer_shape)
        assert len(lifter.active_track_ids) <= 4 + 2  # live + finishing tracks
    n_out += len(lifter.flush())
    assert n_out == 10_000
    assert len(shapes) == 1 and next(iter(shapes))[1:] == (rf, 17, 2)
    assert next(iter(shapes))[0] <= 8


def test_track_rebase_uses_the_running_floor():
    lifter = Lifter(LinearTCNEngine(9), norm_pose_2d=False, frame_size=(640, 384), rebase="track")
    raw_lifter = Lifter(LinearTCNEngine(9), norm_pose_2d=False, frame_size=(640, 384), postprocess=False)
    kp = _walk(30, 9)
    a = _run_stream(lifter, {0: (0, kp, set())}, 30)
    r = _run_stream(raw_lifter, {0: (0, kp, set())}, 30)
    disp = postprocess_3d(np.stack([f.keypoints_3d[0] for f in r]), rebase=False)
    floor = np.minimum.accumulate(disp[..., 2].min(axis=-1))
    np.testing.assert_allclose(np.stack([f.keypoints_3d[0] for f in a])[..., 2], disp[..., 2] - floor[:, None],
                               atol=1e-5)


def test_corrected_codec_frame_size():
    assert codec_frame_size((1920, 1080), mode="mmpose") == (1080, 1920)  # Q2 parity
    assert codec_frame_size((1920, 1080), norm_pose_2d=True) == (1000, 1000)  # canonical H36M pixels
    assert codec_frame_size((1920, 1080), norm_pose_2d=False) == (1920, 1080)
    # worked example (docs/MMPOSE_BEHAVIOUR.md, Q2): the stats centre lands at (0.056, -0.146) with the H36M frame
    n = normalize_screen_coordinates(np.array([[528.0, 427.0]], np.float32), *codec_frame_size((1920, 1080)))
    np.testing.assert_allclose(n[0], [0.056, -0.146], atol=1e-6)


def test_real_weights_exact_streaming_equals_offline_dilated():
    """The 27-frame TCN (numpy, fixture weights): streaming strided windows == one dilated pass, edge-padded."""
    model = MODELS[0]
    kp = _walk(40, 10)
    lifter = Lifter(NumpyTCNEngine(model), norm_pose_2d=False, frame_size=(640, 384), postprocess=False)
    frames = _run_stream(lifter, {0: (0, kp, set())}, 40)
    stream = np.stack([f.keypoints_3d[0] for f in frames])
    offline = lift_offline(NumpyTCNEngine(model, "dilated"), _norm(kp)[None])[0]
    assert _max_abs(stream, offline) <= 1e-4 * max(1.0, np.abs(offline).max())


# ---------------------------------------------------------------------------- engine validation, seq2seq --

class _DetectorLike(Engine):
    def run(self, inputs):  # pragma: no cover - never called
        raise AssertionError


def test_engine_validation_errors_name_the_file():
    det = _DetectorLike(path="rtmdet_m.onnx", inputs=(TensorSpec("input", (1, 3, 640, 640), np.float32),),
                        outputs=(TensorSpec("dets", (1, 100, 5), np.float32),))
    with pytest.raises(ModelError, match=r"rtmdet_m\.onnx.*keypoints"):
        Lifter(det)
    with pytest.raises(ModelError, match="family='rtmdet'"):
        Lifter(LinearTCNEngine(27, metadata={"family": "rtmdet"}))
    dyn = LinearTCNEngine(27, "dilated")
    dyn.metadata.pop("receptive_field")
    with pytest.raises(ModelError, match="receptive_field"):
        EngineLifter(dyn)
    with pytest.raises(ModelError, match="receptive_field=81"):
        EngineLifter(LinearTCNEngine(27, metadata={"receptive_field": "81"}))


def test_spec_from_metadata_and_defaults():
    e = LinearTCNEngine(243)
    e.metadata.clear()  # an export without metadata: the static T is the receptive field
    sp = EngineLifter(e).spec
    assert (sp.window, sp.receptive_field, sp.form, sp.alignment, sp.frames_right, sp.output_index) == \
        (243, 243, "strided", "center", 121, 0)
    sp = EngineLifter(LinearTCNEngine(27, causal=True)).spec
    assert (sp.frames_left, sp.frames_right, sp.output_index) == (26, 0, 0)
    sp = EngineLifter(LinearTCNEngine(27, "dilated")).spec
    assert (sp.window, sp.form, sp.output_frames) == (27, "dilated", 1)


def test_causal_model_has_no_latency_and_uses_only_the_past():
    rf = 9
    eng = LinearTCNEngine(rf, causal=True)
    kp = _walk(20, 11)
    lifter = Lifter(eng, norm_pose_2d=False, frame_size=(640, 384), postprocess=False)
    assert lifter.latency == 0
    out = []
    for t in range(20):
        out += lifter.update(kp[t: t + 1], [0])
        assert out[-1].frame_index == t
    x = _norm(kp)
    pad = np.pad(x[None], ((0, 0), (rf - 1, 0), (0, 0), (0, 0)), mode="edge")
    np.testing.assert_allclose(np.stack([f.keypoints_3d[0] for f in out]), eng.closed_form(pad)[0], atol=1e-5)


class Seq2SeqEngine(Engine):
    """A MotionBERT-shaped fake: (N, 243, 17, 3) (x, y, score) -> (N, 243, 17, 3), frame-wise linear."""

    def __init__(self, window: int = 243) -> None:
        super().__init__(path="motionbert_like.onnx",
                         inputs=(TensorSpec("keypoints", (None, window, 17, 3), np.float32),),
                         outputs=(TensorSpec("out", (None, window, 17, 3), np.float32),),
                         metadata={"family": "motionbert"})
        self.m = np.random.default_rng(0).normal(size=(3, 3))

    def run(self, inputs):
        x = inputs["keypoints"].astype(np.float64)
        return {"out": (x @ self.m + np.arange(x.shape[1])[None, :, None, None] * 1e-3).astype(np.float32)}


def test_seq2seq_lifter_is_a_config_not_a_redesign():
    eng = Seq2SeqEngine()
    sp = EngineLifter(eng).spec
    assert (sp.family, sp.alignment, sp.in_channels, sp.output_frames, sp.frames_right, sp.output_index) == \
        ("motionbert", "seq2seq", 3, 243, 121, 121)
    kp = _walk(130, 12)
    sc = np.random.default_rng(1).uniform(0.2, 1.0, (130, 17)).astype(np.float32)
    lifter = Lifter(eng, norm_pose_2d=False, frame_size=(640, 384), postprocess=False)
    out = []
    for t in range(130):
        out += lifter.update(kp[t: t + 1], [0], scores_2d=sc[t: t + 1])
    out += lifter.flush()
    assert [f.frame_index for f in out] == list(range(130))
    x = np.concatenate([_norm(kp), sc[..., None]], axis=-1).astype(np.float64)
    expected = x @ eng.m + 121e-3  # the target frame sits at output index 121 of every window
    np.testing.assert_allclose(np.stack([f.keypoints_3d[0] for f in out]), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.stack([f.scores_2d[0] for f in out]), sc)


def test_lifter_input_errors():
    lifter = Lifter(LinearTCNEngine(9), norm_pose_2d=False, frame_size=(640, 384))
    with pytest.raises(InputError, match="one id per person"):
        lifter.update(np.zeros((2, 17, 2)), [1])
    with pytest.raises(InputError, match="unique"):
        lifter.update(np.ones((2, 17, 2)), [1, 1])
    with pytest.raises(InputError, match="frame size"):
        Lifter(LinearTCNEngine(9), norm_pose_2d=False).update(np.ones((1, 17, 2)), [0])
    with pytest.raises(InputError, match="bboxes"):
        Lifter(LinearTCNEngine(9), mode="mmpose", frame_size=(640, 384)).update(np.ones((1, 17, 2)), [0])
    coco = Lifter(LinearTCNEngine(9), keypoint_source="coco", norm_pose_2d=False, frame_size=(640, 384),
                  online=True, postprocess=False)
    kp = _walk(1, 13)
    f = coco.update(kp, [0])[0]
    np.testing.assert_array_equal(f.keypoints_2d, convert_keypoint_definition(kp, "coco"))


def test_engine_lifter_chunks_large_batches_and_pads_static_batches(monkeypatch):
    """Many windows go to the engine in calls of at most MAX_WINDOWS_PER_CALL; a static batch gets exactly its size.
    The chunked result equals the one-call result (closed form: LinearLifter is a fixed linear map)."""
    from pose3d_rt.engines.base import TensorSpec
    from pose3d_rt.lifters import base

    from benchmarks.fakes import LinearLifter

    eng = LinearLifter(9)
    calls = []
    run = eng.run
    eng.run = lambda inputs: (calls.append(len(inputs["keypoints"])), run(inputs))[1]
    x = np.random.RandomState(0).randn(150, 9, 17, 2).astype(np.float32)
    whole = run({"keypoints": x})["keypoints_3d"]
    monkeypatch.setattr(base, "MAX_WINDOWS_PER_CALL", 64)
    got = base.EngineLifter(eng).infer(x)
    assert calls == [64, 64, 22]
    np.testing.assert_array_equal(got, whole)
    calls.clear()
    eng.inputs = (TensorSpec("keypoints", (4, 9, 17, 2), np.dtype(np.float32)),)
    got = base.EngineLifter(eng).infer(x[:10])
    assert calls == [4, 4, 4]
    np.testing.assert_array_equal(got, whole[:10])


def test_one_frame_lifter_window_seq_len_1():
    """VideoPose3D-1f (receptive field 1): the window is the current frame alone, in both modes (was an argmax
    of an empty sequence in mmpose mode)."""
    from pose3d_rt.io.sources import FrameSource
    from pose3d_rt.pipeline import Pose3DPipeline

    from benchmarks.fakes import LinearLifter, ScriptedDetector, TemplatePose, walking_boxes

    ids = np.array([[7, 3]])
    valid = np.array([[True, True]])
    kp = np.arange(2 * 17 * 2, dtype=np.float32).reshape(1, 2, 17, 2)
    rows, tids, seq = collate_pose_sequence(ids, valid, kp, 0, mmpose_right_edge=True)
    assert rows.tolist() == [0, 1] and tids.tolist() == [7, 3]
    np.testing.assert_array_equal(seq, kp[0][:, None])
    for mode in ("default", "mmpose"):
        pipe = Pose3DPipeline(ScriptedDetector(walking_boxes(2, 320), 320), TemplatePose(), LinearLifter(1), mode=mode)
        frame = np.full((240, 320, 3), 90, np.uint8)
        res = list(pipe.stream(FrameSource.from_frames((frame for _ in range(5)), 320, 240, total_frames=5)))
        assert pipe.latency == 0 and [len(r) for r in res] == [2] * 5
        assert all(np.isfinite(r.keypoints_3d).all() for r in res)
