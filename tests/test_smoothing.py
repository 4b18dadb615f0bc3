"""One-Euro smoothing (pose3d_rt.smoothing): closed-form steps, a constant passes, a step settles, seeded jitter on
a smooth trajectory is reduced with a bounded lag, tracks restart after a gap, timestamps (not a frame rate) set dt,
and the pipeline/CLI options."""
from __future__ import annotations

import math

import numpy as np
import pytest
from pose3d_rt.errors import InputError
from pose3d_rt.pipeline import Pose3DPipeline
from pose3d_rt.results import FrameResult
from pose3d_rt.smoothing import OneEuroFilter, PoseSmoother, SmoothingParams

from benchmarks.fakes import LinearLifter, ScriptedDetector, TemplatePose, walking_boxes

FPS = 30.0
BASE = np.stack([np.zeros(17), np.zeros(17), np.linspace(0.0, 1.7, 17)], -1)  # a 1.7 m tall "person"


def _run(f: OneEuroFilter, x: np.ndarray, t: np.ndarray, track: int = 3) -> np.ndarray:
    return np.stack([f.filter(np.array([track]), x[i][None], t[i])[0] for i in range(len(t))])


def _trajectory(t: np.ndarray) -> np.ndarray:
    """17 joints swinging 0.3 m at 0.5 Hz (peak speed ~0.9 m/s), each with its own phase."""
    phase = np.linspace(0.0, np.pi, 17)[None, :, None]
    return BASE[None] + 0.3 * np.sin(2 * np.pi * 0.5 * t[:, None, None] + phase) * np.array([1.0, 0.5, 0.2])


def _jitter(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.diff(x, 2, axis=0) ** 2)))


def _lag_frames(out: np.ndarray, truth_at, t: np.ndarray, fps: float):
    """(d, residual): the delay d (frames, 0.05 steps) that best explains ``out(t) ~ truth(t - d / fps)``, and the
    RMS of what it leaves (the noise left once the lag is accounted for)."""
    delays = np.arange(0.0, 10.0, 0.05)
    errs = [np.sqrt(np.mean((out - truth_at(t - d / fps)) ** 2)) for d in delays]
    best = int(np.argmin(errs))
    return float(delays[best]), float(errs[best])


def test_first_steps_match_the_closed_form_with_the_given_dt():
    p = SmoothingParams(min_cutoff=1.5, beta=0.8, d_cutoff=2.0)
    x0 = BASE.copy()
    x1 = BASE + np.array([0.05, -0.02, 0.01])
    for dt in (1 / 30, 1 / 7):
        f = OneEuroFilter(p)
        assert np.array_equal(f.filter([4], x0[None], 10.0)[0], x0)  # the first value passes unchanged
        out = f.filter([4], x1[None], 10.0 + dt)[0]
        alpha = lambda fc, dt=dt: 1.0 / (1.0 + 1.0 / (2 * math.pi * fc * dt))  # noqa: E731
        dx = alpha(2.0) * (x1 - x0) / dt
        speed = np.linalg.norm(dx, axis=-1) / np.ptp(x1, axis=0).max()
        a = alpha(1.5 + 0.8 * speed)[:, None]
        np.testing.assert_allclose(out, a * x1 + (1 - a) * x0, rtol=0, atol=1e-12)


def test_constant_signal_passes_unchanged():
    f = OneEuroFilter()
    x = np.broadcast_to(BASE, (2, 17, 3)) + np.array([[[0.0]], [[5.0]]])
    for i in range(50):
        out = f.filter([1, 2], x, i / FPS)
        np.testing.assert_allclose(out, x, rtol=0, atol=1e-12)


def test_step_settles_without_overshoot():
    t = np.arange(120) / FPS
    x = np.where(t[:, None, None] >= 1.0, 0.5, 0.0) + BASE[None]
    out = _run(OneEuroFilter(), x, t)
    resp = out[:, :, 0]  # the x coordinate of every joint steps 0 -> 0.5 m at frame 30
    assert np.all(resp[:30] == 0.0)
    assert np.all(np.diff(resp, axis=0) >= -1e-12) and resp.max() <= 0.5 + 1e-12  # monotone, no overshoot
    settle = np.argmax(np.all(np.abs(resp - 0.5) < 0.005, axis=1)) - 30  # within 1% of the step
    assert 0 < settle <= 12, settle  # measured: 7 frames (0.23 s) at the default parameters


def test_seeded_jitter_is_reduced_with_a_bounded_lag():
    """Default parameters, 30 fps, 1 cm noise on 0.3 m / 0.5 Hz swings: measured jitter (RMS second difference)
    / 4.6, lag 2.1 frames, noise left once the lag is accounted for 1.0 -> 0.6 cm RMS."""
    t = np.arange(600) / FPS
    truth = _trajectory(t)
    noisy = truth + np.random.default_rng(0).normal(0.0, 0.01, truth.shape)
    out = _run(OneEuroFilter(), noisy, t)
    assert _jitter(noisy[30:]) / _jitter(out[30:]) >= 4.0
    lag, residual = _lag_frames(out[60:], _trajectory, t[60:], FPS)
    assert lag <= 3.0 and residual < 0.7 * 0.01


def test_non_uniform_timestamps_are_used():
    """Frames at irregular times (1-3 periods of 60 fps apart, like a stream with dropped frames): the filter
    timed by the timestamps tracks the signal; the same samples timed as if uniform lag and err more."""
    rng = np.random.default_rng(1)
    t = np.cumsum(rng.integers(1, 4, 400)) / 60.0
    truth = _trajectory(t)
    noisy = truth + rng.normal(0.0, 0.01, truth.shape)
    timed = _run(OneEuroFilter(), noisy, t)
    uniform = _run(OneEuroFilter(), noisy, np.arange(len(t)) / 60.0)  # wrong: an assumed frame rate
    lag_timed, left_timed = _lag_frames(timed[40:], _trajectory, t[40:], 60.0)
    lag_uniform, left_uniform = _lag_frames(uniform[40:], _trajectory, t[40:], 60.0)
    assert lag_timed <= 6.0 and left_timed < 0.8 * 0.01  # measured: 4.2 periods of 60 fps, 0.62 cm
    assert left_timed < 0.7 * left_uniform  # measured: 0.62 cm vs 1.10 cm


def test_a_track_that_comes_back_starts_fresh_and_state_is_bounded():
    f = OneEuroFilter()
    rng = np.random.default_rng(2)
    for i in range(10):
        x = BASE[None] + rng.normal(0, 0.05, (2, 17, 3))
        out = f.filter([5, 9], x, i / FPS)
        if i:
            assert not np.allclose(out, x)  # filtered
    assert f.num_tracks == 2
    f.filter([9], BASE[None], 10 / FPS)  # track 5 is missing from this frame: its state is dropped
    assert f.num_tracks == 1
    back = BASE[None] + 0.3
    out = f.filter([5, 9], np.concatenate([back, BASE[None]]), 11 / FPS)
    np.testing.assert_array_equal(out[0], back[0])  # a fresh filter: its first value passes unchanged
    # a time that does not increase restarts every track
    x = BASE[None] + 1.0
    np.testing.assert_array_equal(f.filter([9], x, 11 / FPS), x)


def test_untracked_and_nan_persons_pass_unchanged():
    f = OneEuroFilter()
    x = np.stack([BASE, BASE + 1, np.full((17, 3), np.nan)])
    f.filter([-1, 2, 3], x, 0.0)
    y = x + 0.1
    out = f.filter([-1, 2, 3], y, 1 / FPS)
    np.testing.assert_array_equal(out[0], y[0])
    assert np.isnan(out[2]).all() and not np.allclose(out[1], y[1])
    assert f.num_tracks == 1


def test_pose_smoother_uses_timestamps_and_keeps_the_input():
    def result(i: int, t) -> FrameResult:
        k2 = np.full((1, 17, 2), 100.0 + 10 * i, np.float32) + np.arange(17, dtype=np.float32)[:, None] * 20
        k3 = (BASE[None] + 0.1 * i).astype(np.float32)
        return FrameResult(i, [[0, 0, 10, 10]], [1.0], [7], k2, np.ones((1, 17)), k3, (640, 480), timestamp=t)

    sm = PoseSmoother()
    first, second = result(0, 0.0), result(1, 0.5)
    sm(first)
    out = sm(second)
    assert out.frame_index == 1 and out.timestamp == 0.5
    assert np.all(out.keypoints_2d < second.keypoints_2d) and np.all(out.keypoints_3d < second.keypoints_3d)
    assert np.array_equal(second.keypoints_2d, result(1, 0.5).keypoints_2d)  # input untouched
    ref = OneEuroFilter()
    ref.filter([7], first.keypoints_3d, 0.0)
    np.testing.assert_allclose(out.keypoints_3d, ref.filter([7], second.keypoints_3d, 0.5), atol=1e-6)
    with pytest.raises(InputError, match="timestamps"):
        PoseSmoother()(result(0, None))


def _pipe(**kw) -> Pose3DPipeline:
    return Pose3DPipeline(ScriptedDetector(walking_boxes(2, 320), 320), TemplatePose(), LinearLifter(9),
                          online=True, **kw)


def test_pipeline_smooth_option_and_timestamps():
    from pose3d_rt.io.sources import FrameSource

    frames = [np.full((240, 320, 3), 40, np.uint8)] * 12
    raw = list(_pipe().stream(FrameSource.from_frames(frames, 320, 240, fps=12.5)))
    smooth = list(_pipe(smooth=True, smooth_min_cutoff=0.5, smooth_beta=0.0).stream(
        FrameSource.from_frames(frames, 320, 240, fps=12.5)))
    assert [r.timestamp for r in raw] == pytest.approx([i / 12.5 for i in range(12)])
    ref = PoseSmoother(SmoothingParams(0.5, 0.0))
    for a, b in zip(raw, smooth):
        want = ref(a)
        np.testing.assert_allclose(b.keypoints_2d, want.keypoints_2d, atol=1e-4)
        np.testing.assert_allclose(b.keypoints_3d, want.keypoints_3d, atol=1e-6)
    assert not np.allclose(raw[-1].keypoints_2d, smooth[-1].keypoints_2d)


def test_smooth_is_refused_in_mmpose_mode_and_bad_parameters_are_named():
    with pytest.raises(InputError, match="smooth is a default-mode option"):
        _pipe(mode="mmpose", smooth=True)
    with pytest.raises(InputError, match="smooth_min_cutoff"):
        _pipe(smooth=True, smooth_min_cutoff=0.0)
    with pytest.raises(InputError, match="smooth_beta"):
        _pipe(smooth=True, smooth_beta=-1.0)


def test_cli_smooth_flags(tmp_path, capsys):
    from pose3d_rt.cli import main
    from pose3d_rt.cli.parser import build_parser
    from pose3d_rt.cli.run import pipeline_options

    args = build_parser().parse_args(["run", "x.mp4", "--smooth", "--smooth-min-cutoff", "0.7",
                                      "--smooth-beta", "2"])
    opts = pipeline_options(args)
    assert opts["smooth"] is True and opts["smooth_min_cutoff"] == 0.7 and opts["smooth_beta"] == 2.0
    assert pipeline_options(build_parser().parse_args(["run", "x.mp4"]))["smooth"] is False
    video = tmp_path / "x.mp4"
    video.write_bytes(b"0")
    code = main(["run", str(video), "--smooth", "--mode", "mmpose", "--output-root", str(tmp_path / "o")])
    assert code == 2 and "--smooth" in capsys.readouterr().err
