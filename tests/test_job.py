"""The run job (pose3d_rt.job.run): video/image/JSON/npz outputs written as a stream, and what an interrupted run
leaves behind. Synthetic engines (fakes), so the numbers are known in closed form."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from pose3d_rt.job import run
from pose3d_rt.pipeline import Pose3DPipeline
from pose3d_rt.visualize import Visualizer

from benchmarks.fakes import LinearLifter, ScriptedDetector, TemplatePose, walking_boxes

W, H, N = 320, 240, 30


def _video(path: Path, n: int = N) -> Path:
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (W, H))
    assert vw.isOpened()
    for i in range(n):
        frame = np.full((H, W, 3), 40 + i, np.uint8)
        cv2.putText(frame, str(i), (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
        vw.write(frame)
    vw.release()
    return path


def _factory(persons: int = 2, mode: str = "default"):
    def make():
        return Pose3DPipeline(ScriptedDetector(walking_boxes(persons, 320), 320), TemplatePose(), LinearLifter(9),
                              mode=mode, online=True)

    return make


def _count_frames(path: Path):
    cap = cv2.VideoCapture(str(path))
    n, size = 0, None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        n += 1
        size = (frame.shape[1], frame.shape[0])
    cap.release()
    return n, size


def test_video_run_writes_video_json_and_npz(tmp_path):
    src = _video(tmp_path / "clip.avi")
    out = tmp_path / "out"
    vis = Visualizer()
    summary = run(_factory(), str(src), output_root=str(out), save_predictions=True, save_npz=True,
                  visualizer=vis, progress=False)
    assert summary.frames == N and summary.persons == 2 * N and not summary.interrupted
    assert summary.video_path == out / "clip.avi"
    frames, size = _count_frames(summary.video_path)
    assert frames == N
    assert size == vis.output_size(W, H)
    doc = json.loads((out / "results_clip.json").read_text())
    info = doc["instance_info"]
    assert [rec["frame_id"] for rec in info] == list(range(N))  # 0-based in default mode
    inst = info[5]["instances"]
    assert len(inst) == 2 and {"keypoints", "keypoint_scores", "track_id", "bbox", "keypoints_2d"} <= set(inst[0])
    assert [p["track_id"] for p in inst] == sorted(p["track_id"] for p in inst)
    npz = np.load(out / "results_clip.npz")
    assert npz["keypoints_3d"].shape == (2 * N, 17, 3) and npz["frame_index"].tolist() == np.repeat(np.arange(N), 2).tolist()
    np.testing.assert_allclose(npz["keypoints_3d"][10:12], np.array([p["keypoints"] for p in info[5]["instances"]]),
                               atol=1e-5)
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_mmpose_mode_json_is_one_based(tmp_path):
    src = _video(tmp_path / "clip.avi", 5)
    summary = run(_factory(mode="mmpose"), str(src), output_root=str(tmp_path / "o"), save_predictions=True,
                  progress=False)
    info = json.loads(summary.json_path.read_text())["instance_info"]
    assert [rec["frame_id"] for rec in info] == [1, 2, 3, 4, 5]
    assert "track_id" not in info[0]["instances"][0]


class _Interrupting:
    """Wraps a pipeline; its stream raises ``exc`` after ``after`` results."""

    def __init__(self, inner, after: int, exc: BaseException) -> None:
        self.inner, self.after, self.exc, self.mode = inner, after, exc, inner.mode

    def stream(self, source, **kw):
        for i, res in enumerate(self.inner.stream(source, **kw)):
            if i == self.after:
                raise self.exc
            yield res


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), RuntimeError("boom")], ids=["ctrl-c", "crash"])
def test_interrupted_run_leaves_valid_json_and_playable_video(tmp_path, exc):
    src = _video(tmp_path / "clip.avi")
    out = tmp_path / "out"
    make = _factory()

    def factory():
        return _Interrupting(make(), 12, exc)

    kwargs = dict(output_root=str(out), save_predictions=True, save_npz=True, visualizer=Visualizer(), progress=False)
    if isinstance(exc, KeyboardInterrupt):
        summary = run(factory, str(src), **kwargs)
        assert summary.interrupted and summary.frames == 12
    else:
        with pytest.raises(RuntimeError):
            run(factory, str(src), **kwargs)
    info = json.loads((out / "results_clip.json").read_text())["instance_info"]
    assert [rec["frame_id"] for rec in info] == list(range(12))
    assert _count_frames(out / "clip.avi")[0] == 12
    assert len(np.load(out / "results_clip.npz")["frame_index"]) == 24


def test_video_broken_half_way_keeps_the_frames_before_the_break(tmp_path):
    whole = _video(tmp_path / "whole.avi", 40).read_bytes()
    src = tmp_path / "broken.avi"
    src.write_bytes(whole[: len(whole) // 2])
    summary = run(_factory(), str(src), output_root=str(tmp_path / "out"), save_predictions=True,
                  visualizer=Visualizer(), progress=False)
    assert 5 < summary.frames < 40
    info = json.loads(summary.json_path.read_text())["instance_info"]
    assert len(info) == summary.frames
    assert _count_frames(summary.video_path)[0] == summary.frames


def test_image_run_writes_one_composite_image_atomically(tmp_path):
    img = np.full((H, W, 3), 80, np.uint8)
    src = tmp_path / "person.png"
    cv2.imwrite(str(src), img)
    out = tmp_path / "out"
    vis = Visualizer()
    summary = run(_factory(1), str(src), output_root=str(out), save_predictions=True, visualizer=vis, progress=False)
    assert summary.frames == 1
    got = cv2.imread(str(out / "person.png"))
    assert got is not None and (got.shape[1], got.shape[0]) == vis.output_size(W, H)
    doc = json.loads((out / "results_person.json").read_text())
    assert isinstance(doc["instance_info"], list) and len(doc["instance_info"]) == 1  # flat list for images
    assert sorted(p.name for p in out.iterdir()) == ["person.png", "results_person.json"]
    assert cv2.imread(str(src)).tolist() == img.tolist()  # the input is untouched


def test_show_without_gui_or_display_is_a_clear_error_before_any_model(tmp_path, monkeypatch):
    import pose3d_rt.job as app
    from pose3d_rt.errors import InputError

    def factory():
        raise AssertionError("no model may be loaded")

    src = _video(tmp_path / "clip.avi", 3)
    monkeypatch.setattr(app.cv2, "getBuildInformation", lambda: "  GUI:                           NONE\n")
    with pytest.raises(InputError, match="--show: this OpenCV build has no GUI"):
        run(factory, str(src), show=True, progress=False)
    monkeypatch.setattr(app.cv2, "getBuildInformation", lambda: "  GUI:                           GTK3\n")
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(InputError, match="--show: no display"):
        run(factory, str(src), show=True, progress=False)
