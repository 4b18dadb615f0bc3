"""The overlapped run (decode on a reader thread, drawing/encoding/writing on a writer thread): the same bytes as
the sequential run, and every way a run can end -- normally, Ctrl-C, a pipeline error, a writer error (disk full,
the video writer, the visualizer), a reader error, a broken input -- leaves valid outputs and no thread running.
Fake engines (benchmarks.fakes) and a synthetic video (benchmarks.synthetic); no timing is asserted."""
from __future__ import annotations

import errno
import json
import signal
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from pose3d_rt.errors import InputError, Pose3DError
from pose3d_rt.io import sinks
from pose3d_rt.io.sources import FrameSource, open_source
from pose3d_rt.io.workers import OrderedWorker, ReadAhead
from pose3d_rt.job import run
from pose3d_rt.pipeline import Pose3DPipeline
from pose3d_rt.timing import engine_clock
from pose3d_rt.visualize import Visualizer
from test_job import _Interrupting

from benchmarks.fakes import LinearLifter, ScriptedDetector, TemplatePose, walking_boxes
from benchmarks.synthetic import make_synthetic_video

N = 24


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    path = make_synthetic_video(tmp_path_factory.mktemp("vid"), frames=N, size=(320, 240), persons=2)
    assert path.suffix == ".avi"
    return path


def _factory(mode: str = "default", online: bool = False, persons: int = 2):
    def make():
        return Pose3DPipeline(ScriptedDetector(walking_boxes(persons, 320), 320), TemplatePose(), LinearLifter(9),
                              mode=mode, online=online)

    return make


@pytest.fixture(autouse=True)
def no_thread_left():
    """Every test of this file: no thread that was not there before is still running afterwards."""
    before = set(threading.enumerate())
    yield
    left = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not left, f"threads left running: {left}"


def _count_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def _records(out: Path, name: str) -> list:
    return json.loads((out / f"results_{name}.json").read_text())["instance_info"]


def _run(video: Path, out: Path, factory=None, visualizer=None, **kw):
    return run(factory or _factory(), str(video), output_root=str(out), save_predictions=True, save_npz=True,
               visualizer=visualizer or Visualizer(), progress=False, **kw)


# -- same outputs ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode,online", [("default", False), ("default", True), ("mmpose", False)])
def test_overlapped_run_writes_the_same_bytes_as_the_sequential_run(tmp_path, video, mode, online):
    seq = _run(video, tmp_path / "seq", _factory(mode, online), overlap=False)
    ovl = _run(video, tmp_path / "ovl", _factory(mode, online), overlap=True)
    assert seq.frames == ovl.frames == N and seq.persons == ovl.persons
    assert not seq.timing.overlapped and ovl.timing.overlapped
    for name in (video.name, f"results_{video.stem}.json"):
        assert (tmp_path / "seq" / name).read_bytes() == (tmp_path / "ovl" / name).read_bytes(), name
    a, b = (np.load(tmp_path / d / f"results_{video.stem}.npz") for d in ("seq", "ovl"))
    assert sorted(a.files) == sorted(b.files)
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k])


@pytest.mark.parametrize("encode", [False, True], ids=["raw", "jpeg"])
def test_video_equals_drawing_the_frames_the_pipeline_keeps(tmp_path, video, monkeypatch, encode):
    """The run holds the frames itself (encoded on the reader, decoded on the writer): the same video as drawing
    ``Pose3DPipeline.stream(keep_frames=True)``'s frames, raw or JPEG-held; and the held frames stay bounded."""
    import pose3d_rt.job as job
    from pose3d_rt.io import held_frames
    from pose3d_rt.io.workers import READ_AHEAD, WRITE_BEHIND

    if encode:
        monkeypatch.setattr(held_frames, "FRAME_QUEUE_BYTES", 1)
    stores = []

    class Store(held_frames.FrameStore):
        def __init__(self, enc):
            super().__init__(enc)
            stores.append(self)

    monkeypatch.setattr(job, "FrameStore", Store)
    pipe = _factory()()
    ref = tmp_path / "ref.avi"
    vis, canvas = Visualizer(), None
    with sinks.VideoSink(ref, 20.0) as sink, open_source(video) as src:
        for res in pipe.stream(src, keep_frames=True):
            canvas = vis.render(res.frame, res, out=canvas)
            sink.write(canvas)
    summary = _run(video, tmp_path / "o", _factory())  # a fresh pipeline: the scripted detector counts its calls
    assert summary.video_path.read_bytes() == ref.read_bytes()
    assert stores[0].encode is encode and len(stores[0]) == 0
    assert stores[0].peak <= pipe.latency + 1 + READ_AHEAD + WRITE_BEHIND + 2


def test_drawing_runs_on_the_writer_thread_and_show_draws_in_the_main_thread(tmp_path, video, monkeypatch):
    import pose3d_rt.job as job

    threads = []

    class Recording(Visualizer):
        def render(self, frame, result, out=None):
            threads.append(threading.current_thread())
            return super().render(frame, result, out=out)

    _run(video, tmp_path / "a", visualizer=Recording())
    assert len(threads) == N and threading.main_thread() not in threads
    threads.clear()
    shown = []
    monkeypatch.setattr(job, "check_show_supported", lambda: None)
    monkeypatch.setattr(job.cv2, "imshow", lambda name, img: shown.append(img.shape))
    monkeypatch.setattr(job.cv2, "waitKey", lambda ms: -1)
    monkeypatch.setattr(job.cv2, "destroyAllWindows", lambda: None)
    summary = _run(video, tmp_path / "b", visualizer=Recording(), show=True)
    assert set(threads) == {threading.main_thread()} and len(shown) == N
    assert _count_frames(summary.video_path) == N
    assert (tmp_path / "a" / video.name).read_bytes() == (tmp_path / "b" / video.name).read_bytes()


# -- timing ------------------------------------------------------------------------------------------------------
def test_summary_reports_network_time_and_the_rest(tmp_path, video):
    summary = _run(video, tmp_path / "o")
    t = summary.timing
    assert t.frames == N and t.overlapped
    assert set(t.stage_s) == {"det", "pose2d", "lifter"}
    assert 0 < t.network_s <= t.wall_s and t.non_network_s == pytest.approx(t.wall_s - t.network_s)
    assert 0.0 <= t.non_network_share <= 1.0
    assert t.decode_s > 0 and t.output_s > 0 and t.read_wait_s >= 0 and t.write_wait_s >= 0
    d = t.as_dict()
    assert {"non_network_share", "frame_ms", "stage_s", "wall_s"} <= set(d)
    json.dumps(d)
    assert "ms/frame" in t.describe()


def test_engine_clock_counts_every_engine_call_and_restores_the_engines(video):
    pipe = _factory(online=True)()
    det = pipe.detector.engine
    with engine_clock(pipe) as clock:
        with open_source(video) as src:
            n = sum(1 for _ in pipe.stream(src))
    assert n == N
    assert clock.stage_calls["det"] == N and clock.stage_calls["pose2d"] == N and clock.stage_calls["lifter"] > 0
    assert clock.seconds == pytest.approx(sum(clock.stage_seconds.values()))
    assert "run" not in vars(det) and det.run.__func__ is type(det).run  # restored


# -- how a run ends: outputs valid, no thread left -----------------------------------------------------------------
def _outputs_agree(out: Path, name: str, frames: int) -> None:
    assert len(_records(out, name)) == frames
    assert _count_frames(out / f"{name}.avi") == frames
    assert len(np.load(out / f"results_{name}.npz")["frame_index"]) == 2 * frames
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files left behind"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_signal_while_the_writer_is_busy_keeps_the_frames_done(tmp_path, video, signum):
    """A real SIGINT (Ctrl-C), or SIGTERM with the CLI's handler, reaches the main thread while it waits on a full
    writer queue: the run ends as interrupted with every computed frame written."""
    from pose3d_rt.cli.main import _raise_interrupt

    old = signal.signal(signal.SIGTERM, _raise_interrupt) if signum == signal.SIGTERM else None
    main_id = threading.main_thread().ident

    class Slow(Visualizer):
        def render(self, frame, result, out=None):
            if result.frame_index == 6:
                signal.pthread_kill(main_id, signum)
            time.sleep(0.02)
            return super().render(frame, result, out=out)

    try:
        try:
            summary = _run(video, tmp_path / "o", visualizer=Slow())
        except KeyboardInterrupt:  # the signal came after the stream (a very slow machine): outputs still valid
            summary = None
    finally:
        if signum == signal.SIGTERM:
            signal.signal(signal.SIGTERM, old)
    frames = len(_records(tmp_path / "o", video.stem))
    if summary is not None:
        assert summary.interrupted and summary.frames == frames
    assert 6 < frames < N
    _outputs_agree(tmp_path / "o", video.stem, frames)


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), RuntimeError("boom")], ids=["ctrl-c", "crash"])
def test_pipeline_error_writes_what_was_computed(tmp_path, video, exc):
    make = _factory()
    factory = lambda: _Interrupting(make(), 9, exc)  # noqa: E731
    if isinstance(exc, KeyboardInterrupt):
        summary = _run(video, tmp_path / "o", factory)
        assert summary.interrupted and summary.frames == 9
    else:
        with pytest.raises(RuntimeError, match="boom"):
            _run(video, tmp_path / "o", factory)
    _outputs_agree(tmp_path / "o", video.stem, 9)


def test_disk_full_is_a_one_line_error_and_the_json_stays_valid(tmp_path, video, monkeypatch):
    write = sinks.PredictionWriter.write_result

    def failing(self, res):
        if res.frame_index == 7:
            raise OSError(errno.ENOSPC, "No space left on device")
        write(self, res)

    monkeypatch.setattr(sinks.PredictionWriter, "write_result", failing)
    with pytest.raises(InputError) as info:
        _run(video, tmp_path / "o")
    msg = str(info.value)
    assert "\n" not in msg and "--output-root" in msg and "No space left on device" in msg and "frame 7" in msg
    assert len(_records(tmp_path / "o", video.stem)) == 7
    assert _count_frames(tmp_path / "o" / video.name) == 7


def test_video_writer_failure_is_a_pose3d_error(tmp_path, video, monkeypatch):
    def refuse(self, image):
        raise InputError(f"{self.path}: cannot open a video writer for this file type")

    monkeypatch.setattr(sinks.VideoSink, "write", refuse)
    with pytest.raises(Pose3DError, match="cannot open a video writer"):
        _run(video, tmp_path / "o")
    assert len(_records(tmp_path / "o", video.stem)) <= 1  # the JSON of the frame being written, at most


def test_visualizer_error_stops_the_run_with_every_file_at_the_same_frame(tmp_path, video):
    class Broken(Visualizer):
        def render(self, frame, result, out=None):
            if result.frame_index == 5:
                raise ValueError("drawing bug")
            return super().render(frame, result, out=out)

    with pytest.raises(ValueError, match="drawing bug"):
        _run(video, tmp_path / "o", visualizer=Broken())
    _outputs_agree(tmp_path / "o", video.stem, 5)


def test_reader_error_is_raised_in_the_main_thread(tmp_path, video, monkeypatch):
    frames = FrameSource._frames

    def breaking(self):
        for i, f in enumerate(frames(self)):
            if i == 10:
                raise cv2.error("decoder exploded")
            yield f

    monkeypatch.setattr(FrameSource, "_frames", breaking)
    with pytest.raises(cv2.error, match="decoder exploded"):
        _run(video, tmp_path / "o", _factory(online=True))
    _outputs_agree(tmp_path / "o", video.stem, 10)


def test_broken_video_keeps_the_frames_before_the_break(tmp_path, video):
    data = video.read_bytes()
    src = tmp_path / "broken.avi"
    src.write_bytes(data[: len(data) // 2])
    summary = _run(src, tmp_path / "o")
    assert 3 < summary.frames < N and summary.error and "decoding stopped" in summary.error
    _outputs_agree(tmp_path / "o", "broken", summary.frames)


def test_stopping_early_reports_no_break_of_an_unread_part(tmp_path, video):
    data = video.read_bytes()
    src = tmp_path / "broken.avi"
    src.write_bytes(data[: len(data) // 2])
    summary = _run(src, tmp_path / "o", lambda: _Interrupting(_factory()(), 2, KeyboardInterrupt()))
    assert summary.interrupted and summary.frames == 2 and summary.error is None


# -- the workers ---------------------------------------------------------------------------------------------------
def test_read_ahead_is_bounded_in_order_and_stops_early():
    produced = []

    def frames():
        for i in range(100):
            produced.append(i)
            yield i

    reader = ReadAhead(frames(), depth=3)
    got = []
    for x in reader:
        got.append(x)
        time.sleep(0.002)
        assert len(produced) - len(got) <= 3 + 1  # the queue plus the item in the reader's hand
        if x == 20:
            break
    reader.close()
    assert got == list(range(21)) and len(produced) <= 25
    assert reader.busy_s >= 0 and reader.wait_s >= 0


def test_read_ahead_raises_the_readers_error_at_its_place():
    def frames():
        yield 1
        yield 2
        raise OSError("gone")

    reader = ReadAhead(frames(), depth=2)
    got = []
    with pytest.raises(OSError, match="gone"):
        for x in reader:
            got.append(x)
    reader.close()
    assert got == [1, 2]


def test_source_read_ahead_gives_the_same_frames(video):
    with open_source(video) as a, open_source(video) as b:
        b.read_ahead = 2
        fa, fb = list(a), list(b)
        assert len(fa) == len(fb) == N and all(np.array_equal(x, y) for x, y in zip(fa, fb))
        assert a.frames_read == b.frames_read == N and a.error is None and b.error is None
        assert b.read_seconds > 0


def test_source_closed_mid_stream_stops_its_reader(video):
    src = open_source(video)
    src.read_ahead = 2
    it = iter(src)
    next(it)
    src.close()  # the generator is still suspended: close() must stop the thread anyway
    assert not [t for t in threading.enumerate() if t.name.startswith("pose3d-rt-reader")]


def test_ordered_worker_keeps_order_raises_errors_and_finishes():
    seen = []
    w = OrderedWorker(seen.append, depth=2)
    for i in range(50):
        w.put(i)
    w.finish()
    assert seen == list(range(50)) and w.done == 50 and not w.alive

    def handle(i):
        if i == 3:
            raise ValueError("bad item")

    w = OrderedWorker(handle, depth=2)
    with pytest.raises(ValueError, match="bad item"):
        for i in range(100):
            w.put(i)
    w.abort()
    assert not w.alive

    w = OrderedWorker(handle, depth=8)
    for i in range(5):
        w.put(i)
    with pytest.raises(ValueError, match="bad item"):
        w.finish()
    assert not w.alive


def test_ordered_worker_abort_drops_the_queue():
    gate = threading.Event()
    seen = []
    w = OrderedWorker(lambda i: (gate.wait(5), seen.append(i)), depth=4)
    for i in range(4):
        w.put(i)
    gate.set()
    w.abort()
    assert not w.alive and seen == seen[:len(seen)] and len(seen) <= 4


def test_ordered_worker_inline_runs_in_the_callers_thread():
    where = []
    w = OrderedWorker(lambda i: where.append(threading.current_thread()), threaded=False)
    w.put(1)
    w.finish()
    assert where == [threading.current_thread()] and not w.alive
