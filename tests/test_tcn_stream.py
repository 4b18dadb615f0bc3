"""The streaming ("stream") form of the VideoPose3D TCN (export/models/tcn_stream.py) equals the offline dilated
TCN over the same edge-padded sequence: 27/81/243 frames, causal and centred, with start-up inside a chunk, chunks
of several frames, one-frame steps and the end-of-track flush; and its ONNX export does the same on ONNX Runtime."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import requires_torch

pytestmark = requires_torch

KERNELS = {27: (3, 3, 3), 81: (3, 3, 3, 3), 243: (3, 3, 3, 3, 3)}


def _random_bn(model, seed: int):
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm1d):
                n = mod.num_features
                mod.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                mod.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                mod.weight.copy_(1 + torch.randn(n, generator=g) * 0.1)
                mod.bias.copy_(torch.randn(n, generator=g) * 0.1)
    return model


def _padded(seq: np.ndarray, rf: int, right: int) -> np.ndarray:
    """Offline inference's input: left and right edge replication around each track."""
    left = rf - 1 - right
    return np.concatenate([np.repeat(seq[:, :1], left, 1), seq, np.repeat(seq[:, -1:], right, 1)], 1)


def _stream(step, seq: np.ndarray, shapes, right: int, chunks) -> np.ndarray:
    """Feed ``seq`` (N, n, K, 2) in chunks of the given sizes (start=1 on the first), then ``right`` copies of the
    last frame; return the outputs aligned with the frames (the first ``right`` outputs precede frame 0)."""
    n_rows = seq.shape[0]
    states = [np.zeros((n_rows, h, c), np.float32) for c, h in shapes]
    outs, pos = [], 0
    pieces = []
    for size in chunks:
        pieces.append(seq[:, pos:pos + size])
        pos += size
    assert pos == seq.shape[1]
    if right:
        pieces.append(np.repeat(seq[:, -1:], right, 1))
    for i, piece in enumerate(pieces):
        start = np.full(n_rows, 1.0 if i == 0 else 0.0, np.float32)
        y, *states = step(np.ascontiguousarray(piece), start, states)
        outs.append(y)
    return np.concatenate(outs, 1)[:, right:]


def _torch_step(module):
    import torch

    def step(x, start, states):
        with torch.no_grad():
            out = module(torch.from_numpy(x), torch.from_numpy(start), *(torch.from_numpy(s) for s in states))
        return [o.numpy() for o in out]

    return step


@pytest.mark.parametrize("rf", [27, 81, 243])
@pytest.mark.parametrize("causal", [False, True])
def test_stream_equals_offline_dilated(rf, causal):
    import torch
    from pose3d_rt.export.models.tcn import TCNConfig, VideoPoseLifter
    from pose3d_rt.export.models.tcn_stream import StreamingTCN, right_context, state_shapes

    torch.manual_seed(rf + causal)
    model = _random_bn(VideoPoseLifter(TCNConfig(KERNELS[rf], channels=48, causal=causal), form="dilated"), rf).eval()
    right = right_context(model)
    assert right == (0 if causal else rf // 2)
    seq = np.random.default_rng(rf).uniform(-1, 1, (3, 50, 17, 2)).astype(np.float32)
    with torch.no_grad():
        offline = model(torch.from_numpy(_padded(seq, rf, right))).numpy()
    step = _torch_step(StreamingTCN(model).eval())
    for chunks in ([50], [1] * 50, [7, 1, 1, 16, 25]):
        got = _stream(step, seq, state_shapes(model), right, chunks)
        assert got.shape == offline.shape
        np.testing.assert_allclose(got, offline, rtol=0, atol=1e-5 * np.abs(offline).max())


def test_state_shapes_and_one_frame_variant():
    from pose3d_rt.export.models.tcn import TCNConfig, VideoPoseLifter
    from pose3d_rt.export.models.tcn_stream import state_shapes

    m243 = VideoPoseLifter(TCNConfig(KERNELS[243], channels=8), form="dilated")
    assert state_shapes(m243) == [(34, 2), (8, 6), (8, 18), (8, 54), (8, 162)]  # (k-1) * dilation columns
    assert sum(h for _, h in state_shapes(m243)) == 243 - 1
    assert state_shapes(VideoPoseLifter(TCNConfig((1, 1, 1), channels=8), form="dilated")) == []


@pytest.mark.slow
@pytest.mark.parametrize("model_name", ["videopose3d_27f_supv", "videopose3d_243f_supv_cpn_ft"])
def test_onnx_stream_export_equals_onnx_dilated_export(checkpoints, tmp_path, model_name):
    """The fixture checkpoints exported both ways, run on ONNX Runtime: 4 tracks, start-up, steps, flush."""
    from pose3d_rt.engines import load_engine
    from pose3d_rt.export import export_onnx

    stream = load_engine(export_onnx(checkpoints[model_name], tmp_path / "s.onnx", form="stream"), threads=2)
    dilated = load_engine(export_onnx(checkpoints[model_name], tmp_path / "d.onnx", form="dilated"), threads=2)
    meta = stream.metadata
    assert meta["form"] == "stream" and meta["family"] == "tcn"
    rf, right = int(meta["receptive_field"]), int(meta["right_context"])
    shapes = [tuple(int(v) for v in s.split("x"))[::-1] for s in meta["state_shapes"].split(";")]
    assert [s.name for s in stream.inputs] == ["keypoints", "start"] + [f"state_in_{i}" for i in range(len(shapes))]

    def step(x, start, states):
        feed = {"keypoints": x, "start": start, **{f"state_in_{i}": s for i, s in enumerate(states)}}
        out = stream(feed)
        return [out["keypoints_3d"]] + [out[f"state_out_{i}"] for i in range(len(states))]

    seq = np.random.default_rng(1).uniform(-0.5, 0.5, (4, 30, 17, 2)).astype(np.float32)
    offline = dilated({"keypoints": _padded(seq, rf, right)})["keypoints_3d"]
    got = _stream(step, seq, shapes, right, [5] + [1] * 20 + [5])
    np.testing.assert_allclose(got, offline, rtol=0, atol=1e-5 * np.abs(offline).max())
