"""The default-mode Lifter on a stream-form TCN export (one new column per layer and frame, per-layer states) gives
the same results as on the windowed (strided) export of the same checkpoint -- which test_lifting.py proves equal
to the offline dilated TCN over each edge-padded track: same frames in order, same persons, 3D within 1e-5 of the
output scale. Covers tracks that start mid-stream and mid-chunk, gaps, end_track, tracks shorter than the
receptive field, the end-of-stream flush, several chunk sizes, centred and causal models."""
from __future__ import annotations

from typing import List

import numpy as np
import pytest
from conftest import requires_torch
from pose3d_rt.engines import load_engine
from pose3d_rt.errors import InputError
from pose3d_rt.lifters import LiftedFrame, Lifter, lift_offline

pytestmark = requires_torch


def _walk(t: int, seed: int, origin=(300.0, 200.0)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.uniform(-60, 60, (1, 17, 2)) + np.array(origin)
    drift = np.cumsum(rng.normal(0, 2.0, (t, 1, 2)), axis=0)
    return (base + drift).astype(np.float32)


# id -> (first frame, length, missing frames, end_track called after the last frame)
SCENARIO = {
    0: (0, 70, set(), False),
    3: (5, 30, {12, 13, 14}, True),  # starts mid-chunk, a gap, ended by the tracker
    7: (20, 9, set(), True),  # shorter than the receptive field
    8: (41, 29, set(), False),  # still live at the end: flushed
}
FRAMES = 70


def _run(lifter: Lifter) -> List[LiftedFrame]:
    kps = {tid: _walk(n, tid + 1) for tid, (_, n, _, _) in SCENARIO.items()}
    out: List[LiftedFrame] = []
    for t in range(FRAMES):
        ids, kp = [], []
        for tid, (start, n, missing, _) in SCENARIO.items():
            if start <= t < start + n and t not in missing:
                ids.append(tid)
                kp.append(kps[tid][t - start])
        boxes = np.array([[k[:, 0].min(), k[:, 1].min(), k[:, 0].max(), k[:, 1].max()] for k in kp], np.float32)
        out += lifter.update(np.array(kp, np.float32).reshape(-1, 17, 2), ids, bboxes=boxes.reshape(-1, 4),
                             frame_size=(640, 480), frame_index=t)
        lifter.end_tracks([tid for tid, (s, n, _, end) in SCENARIO.items() if end and t == s + n - 1])
    return out + lifter.flush()


@pytest.fixture(scope="module")
def exports(checkpoints, tmp_path_factory):
    from pose3d_rt.export import export_onnx

    root = tmp_path_factory.mktemp("stream_exports")
    out = {}
    for name in ("videopose3d_27f_supv", "videopose3d_243f_supv_cpn_ft"):
        for causal in (False, True):
            for form in ("strided", "stream"):
                path = root / f"{name}_{form}_{causal}.onnx"
                out[name, form, causal] = export_onnx(checkpoints[name], path, form=form, causal=causal or None)
    return out


def _compare(stream_frames, strided_frames):
    assert [f.frame_index for f in stream_frames] == list(range(FRAMES))
    assert [f.frame_index for f in strided_frames] == list(range(FRAMES))
    scale = max(float(np.abs(f.keypoints_3d).max()) for f in strided_frames if len(f))
    for a, b in zip(stream_frames, strided_frames):
        np.testing.assert_array_equal(a.track_ids, b.track_ids)
        np.testing.assert_array_equal(a.keypoints_2d, b.keypoints_2d)
        np.testing.assert_allclose(a.keypoints_3d, b.keypoints_3d, rtol=0, atol=1e-5 * scale)


@pytest.mark.parametrize("name", ["videopose3d_27f_supv",
                                  pytest.param("videopose3d_243f_supv_cpn_ft", marks=pytest.mark.slow)])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("chunk", [1, 8, 5, None])  # None: the default (16 frames centred, 8 causal)
def test_stream_lifter_equals_windowed_lifter(exports, name, causal, chunk):
    stream = load_engine(exports[name, "stream", causal], threads=2)
    strided = load_engine(exports[name, "strided", causal], threads=2)
    a = Lifter(stream, keypoint_source="coco", max_missing=None, chunk=chunk)
    b = Lifter(strided, keypoint_source="coco", max_missing=None)
    right = b.latency
    chunk = chunk or (8 if causal else 16)
    assert a.latency == right + chunk - 1 and right == (0 if causal else (27 if "27f" in name else 243) // 2)
    _compare(_run(a), _run(b))
    assert a.active_track_ids.size == 0  # every slot freed after the flush


def test_stream_lifter_offline_and_refusals(exports):
    stream = load_engine(exports["videopose3d_27f_supv", "stream", False], threads=2)
    strided = load_engine(exports["videopose3d_27f_supv", "strided", False], threads=2)
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 40, 17, 2)).astype(np.float32)
    np.testing.assert_allclose(lift_offline(stream, x), lift_offline(strided, x), rtol=0, atol=1e-5)
    with pytest.raises(InputError, match="online=True need a windowed"):
        Lifter(stream, online=True)
    with pytest.raises(InputError, match="mode='mmpose'"):
        Lifter(stream, mode="mmpose")
    with pytest.raises(InputError, match="chunk"):
        Lifter(stream, chunk=0)
