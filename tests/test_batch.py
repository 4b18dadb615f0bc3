"""`pose3d-rt batch`: many videos on a local process pool and on Ray, each video's outputs byte-identical to
`pose3d-rt run` on it, failures reported without stopping the others, finished videos skipped on rerun, a worker
killed mid-video leaving nothing half-written in DIR; plus the INPUT forms, the skip record and the usage errors.

The videos are made here with cv2.VideoWriter from the fixture video's frames (persons in them), the models are
the fixture checkpoints exported once per session (`onnx_models`)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import FIXTURES, REPO, read_frames, requires_torch
from pose3d_rt.batch import VideoTask, expand_inputs
from pose3d_rt.batch.local import WORKER_DIED
from pose3d_rt.batch.manifest import MANIFEST_NAME, STATE_DIR, SUMMARY_NAME, done_record, write_record
from pose3d_rt.cli import main
from pose3d_rt.errors import InputError

CLIPS = {"walk_a": (0, 10), "walk_b": (12, 20), "walk_c": (30, 42)}  # name: fixture frames [start, stop)
BROKEN = "broken"
SIZE = (320, 192)


def _write_video(path: Path, frames) -> Path:
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 20.0, SIZE)
    assert vw.isOpened()
    for f in frames:
        vw.write(cv2.resize(f, SIZE, interpolation=cv2.INTER_AREA))
    vw.release()
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """A folder with the three clips and one corrupt file (random bytes named .mp4)."""
    folder = tmp_path_factory.mktemp("batch_videos")
    frames = read_frames(FIXTURES / "inputs" / "synthetic_video.avi")
    for name, (a, b) in CLIPS.items():
        _write_video(folder / f"{name}.mp4", frames[a:b])
    (folder / f"{BROKEN}.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    return folder


@pytest.fixture(scope="module")
def run_flags(onnx_models) -> list:
    return ["--det", str(onnx_models["rtmdet_nano_person"]), "--pose2d", str(onnx_models["rtmpose_t_body8_256x192"]),
            "--lifter", str(onnx_models["videopose3d_27f_supv"]), "--save-predictions", "--threads", "1",
            "--no-progress"]


@pytest.fixture(scope="module")
def expected(videos, run_flags, tmp_path_factory) -> dict:
    """``pose3d-rt run`` on each clip, one after the other: {name: predictions JSON bytes}."""
    out = tmp_path_factory.mktemp("batch_sequential")
    result = {}
    for name in CLIPS:
        assert main(["run", str(videos / f"{name}.mp4"), "--output-root", str(out / name), *run_flags]) == 0
        result[name] = (out / name / f"results_{name}.json").read_bytes()
        assert len(json.loads(result[name])["instance_info"]) == CLIPS[name][1] - CLIPS[name][0]
    return result


def _summary(root: Path) -> dict:
    return {Path(e["input"]).stem: e for e in json.loads((root / SUMMARY_NAME).read_text())}


def _check_first_batch(root: Path, videos: Path, expected: dict) -> None:
    """3 ok with the outputs of `run`, the corrupt one failed with its error, nothing half-written."""
    summary = _summary(root)
    assert sorted(summary) == sorted([*CLIPS, BROKEN])
    for name, want in expected.items():
        entry = summary[name]
        assert entry["status"] == "ok" and entry["error"] is None
        assert entry["frames"] == CLIPS[name][1] - CLIPS[name][0]
        assert (root / name / f"results_{name}.json").read_bytes() == want
        assert entry["persons"] == sum(len(f["instances"]) for f in json.loads(want)["instance_info"])
        assert (root / name / MANIFEST_NAME).is_file() and (root / name / f"{name}.mp4").is_file()
    bad = summary[BROKEN]
    assert bad["status"] == "failed" and bad["frames"] is None
    assert str(videos / f"{BROKEN}.mp4") in bad["error"] and "cannot be opened" in bad["error"]
    assert not (root / BROKEN).exists()
    assert not (root / STATE_DIR).exists()


@requires_torch
def test_local_pool_equals_run_reports_the_failure_skips_on_rerun_and_force_redoes(videos, run_flags, expected,
                                                                                   tmp_path, capsys):
    root = tmp_path / "out"
    argv = ["batch", str(videos), "--output-root", str(root), "--workers", "2", *run_flags]
    assert main(argv) == 1
    _check_first_batch(root, videos, expected)
    table = capsys.readouterr().out
    assert "3 ok, 1 failed, 0 skipped" in table and "cannot be opened" in table

    stamps = {n: (root / n / f"results_{n}.json").stat().st_mtime_ns for n in CLIPS}
    assert main(argv) == 1  # the corrupt file is tried again and fails again; the others are not redone
    summary = _summary(root)
    assert [summary[n]["status"] for n in CLIPS] == ["skipped"] * 3
    assert [summary[n]["frames"] for n in CLIPS] == [b - a for a, b in CLIPS.values()]
    assert {n: (root / n / f"results_{n}.json").stat().st_mtime_ns for n in CLIPS} == stamps
    assert summary[BROKEN]["status"] == "failed"

    assert main([*argv, "--force"]) == 1
    summary = _summary(root)
    assert [summary[n]["status"] for n in CLIPS] == ["ok"] * 3
    for name, want in expected.items():
        assert (root / name / f"results_{name}.json").read_bytes() == want
        assert (root / name / f"results_{name}.json").stat().st_mtime_ns != stamps[name]

    assert main([*argv, "--det-interval", "2"]) == 1  # other output options: done again, not skipped
    assert [_summary(root)[n]["status"] for n in CLIPS] == ["ok"] * 3


_KILL_HOOK = textwrap.dedent("""\
    # Test hook (tests/test_batch.py): the process writing results_<stem>.json dies after 3 frames of it.
    import os

    _stem = os.environ.get("POSE3D_TEST_KILL_STEM")
    if _stem:
        from pose3d_rt.io import sinks

        _write = sinks.PredictionWriter.write_result

        def _write_then_die(self, res):
            _write(self, res)
            if self.path.name == "results_" + _stem + ".json" and self.count >= 3:
                import json

                frames = len(json.loads(self.path.read_text())["instance_info"])  # valid so far, 3 frames
                with open(os.environ["POSE3D_TEST_KILL_LOG"], "a") as fh:
                    fh.write(json.dumps({"path": str(self.path), "frames": frames}) + "\\n")
                os._exit(9)

        sinks.PredictionWriter.write_result = _write_then_die
""")


def _batch_subprocess(argv, tmp_path: Path, kill: str = "") -> subprocess.CompletedProcess:
    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(_KILL_HOOK)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(hook), str(REPO)]), POSE3D_TEST_KILL_STEM=kill,
               POSE3D_TEST_KILL_LOG=str(tmp_path / "kills.jsonl"))
    return subprocess.run([sys.executable, "-m", "pose3d_rt", "batch", *argv], capture_output=True, text=True,
                          env=env, timeout=600)


def _check_killed_then_completed(root: Path, argv, tmp_path: Path, expected: dict, victim: str) -> None:
    summary = _summary(root)
    assert summary[victim]["status"] == "failed", summary[victim]
    assert not (root / victim).exists()  # nothing of the killed video in DIR ...
    kills = [json.loads(line) for line in (tmp_path / "kills.jsonl").read_text().splitlines()]
    assert len(kills) == 2 and all(k["frames"] == 3 for k in kills)  # mid-video, on the first try and the retry,
    assert all(Path(k["path"]).is_relative_to(root / STATE_DIR) for k in kills)  # in a staging folder,
    assert not (root / STATE_DIR).exists()  # removed at the end of the batch
    for name in set(CLIPS) - {victim}:
        assert summary[name]["status"] == "ok"
        assert (root / name / f"results_{name}.json").read_bytes() == expected[name]

    r = _batch_subprocess(argv, tmp_path)  # no hook: the rerun completes it and skips the others
    assert r.returncode == 1, r.stderr
    summary = _summary(root)
    assert summary[victim]["status"] == "ok"
    assert (root / victim / f"results_{victim}.json").read_bytes() == expected[victim]
    assert sorted(n for n in CLIPS if summary[n]["status"] == "skipped") == sorted(set(CLIPS) - {victim})
    assert not (root / STATE_DIR).exists()


@requires_torch
def test_local_worker_killed_mid_video_leaves_nothing_half_written_and_the_rerun_completes_it(
        videos, run_flags, expected, tmp_path):
    root = tmp_path / "out"
    argv = [str(videos), "--output-root", str(root), "--workers", "2", *run_flags]
    r = _batch_subprocess(argv, tmp_path, kill="walk_c")
    assert r.returncode == 1, r.stderr
    assert _summary(root)["walk_c"]["error"] == WORKER_DIED  # killed twice: the first try and the one retry
    _check_killed_then_completed(root, argv, tmp_path, expected, "walk_c")


def _ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


requires_ray = pytest.mark.skipif(not _ray_available(), reason="needs the [ray] extra (pip install 'pose3d-rt[ray]')")


@requires_torch
@requires_ray
@pytest.mark.slow
def test_ray_equals_run_reports_the_failure_and_a_killed_actor_leaves_nothing_half_written(
        videos, run_flags, expected, tmp_path):
    """One local Ray runtime per batch (2 actors on 127.0.0.1): the first batch kills the actor on one video;
    the rerun completes that video and skips the others."""
    root = tmp_path / "out"
    argv = [str(videos), "--output-root", str(root), "--workers", "2", *run_flags, "--ray"]
    r = _batch_subprocess(argv, tmp_path, kill="walk_b")
    assert r.returncode == 1, r.stderr
    summary = _summary(root)
    assert summary[BROKEN]["status"] == "failed" and "cannot be opened" in summary[BROKEN]["error"]
    assert "Ray worker" in summary["walk_b"]["error"]
    _check_killed_then_completed(root, argv, tmp_path, expected, "walk_b")


# -- the parts, without workers ---------------------------------------------------------------------------------

def test_input_forms_folder_glob_list_file_and_names(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b" / "deep"
    b.mkdir(parents=True)
    a.mkdir()
    for p in (a / "x.mp4", a / "y.avi", b / "x.mp4", b / "z.MKV"):
        p.write_bytes(b"v")
    (a / "notes.md").write_text("not a video")
    lst = tmp_path / "list.txt"
    lst.write_text("# videos\n\na/y.avi\n  https://example.com/v/clip.mp4?sig=1  \n" + str(b / "z.MKV") + "\n")

    folder = expand_inputs([str(tmp_path)])  # recursive, videos only, sorted
    assert [t.input for t in folder] == [str(a / "x.mp4"), str(a / "y.avi"), str(b / "x.mp4"), str(b / "z.MKV")]
    assert [t.key for t in folder][1:] == ["y", folder[2].key, "z"]
    assert folder[0].key.startswith("x-") and folder[2].key.startswith("x-") and folder[0].key != folder[2].key

    globbed = expand_inputs([str(tmp_path / "**" / "*.mp4")])
    assert [t.input for t in globbed] == [str(a / "x.mp4"), str(b / "x.mp4")]

    listed = expand_inputs([str(lst), str(a / "y.avi")])  # the same video twice: once
    assert listed == [VideoTask(str(a / "y.avi"), "y"), VideoTask("https://example.com/v/clip.mp4?sig=1", "clip"),
                      VideoTask(str(b / "z.MKV"), "z")]
    assert listed[1].is_url and not listed[0].is_url

    for bad, words in ((str(tmp_path / "missing.mp4"), "no such file"), (str(tmp_path / "*.webm"), "matches no")):
        with pytest.raises(InputError, match=words):
            expand_inputs([bad])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no video files"):
        expand_inputs([str(empty)])
    lst.write_text("a/y.avi\nmissing.mp4\n")
    with pytest.raises(InputError, match=r"list\.txt:2: missing\.mp4"):
        expand_inputs([str(lst)])


def test_done_record_matches_size_and_mtime_or_sha_and_options(tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"0123456789" * 100)
    task = VideoTask(str(video), "v")
    folder = tmp_path / "out" / "v"
    folder.mkdir(parents=True)
    (folder / "results_v.json").write_text("{}")
    from pose3d_rt.batch.manifest import fingerprint

    write_record(folder, task, fingerprint(task), {"mode": "default"}, 10, 3, 1.5)
    record = json.loads((folder / MANIFEST_NAME).read_text())
    assert record["size"] == 1000 and len(record["sha256_prefix"]) == 16 and record["outputs"] == ["results_v.json"]
    assert done_record(tmp_path / "out", task, {"mode": "default"})["frames"] == 10
    assert done_record(tmp_path / "out", task, {"mode": "mmpose"}) is None  # other options
    os.utime(video, ns=(1, 1))  # touched (or copied): same bytes, still done
    assert done_record(tmp_path / "out", task, {"mode": "default"}) is not None
    video.write_bytes(b"9123456789" * 100)  # same size, other bytes
    os.utime(video, ns=(2, 2))
    assert done_record(tmp_path / "out", task, {"mode": "default"}) is None
    video.write_bytes(b"0123456789" * 100)
    os.utime(video, ns=(3, 3))
    (folder / "results_v.json").unlink()  # an output it lists is gone
    assert done_record(tmp_path / "out", task, {"mode": "default"}) is None


@pytest.mark.parametrize("argv, words", [
    (["batch", "{v}"], "--output-root is required"),
    (["batch", "{d}/nothing_here.mp4", "--output-root", "{o}"], "nothing_here.mp4: no such file"),
    (["batch", "{v}", "--output-root", "{o}", "--show"], "--show"),
    (["batch", "{v}", "--output-root", "{o}", "--det", "{d}/missing_det.onnx"], "missing_det.onnx"),
    (["batch", "{v}", "--output-root", "{o}", "--ray=", "--device", "nonsense"], "--device"),
])
def test_usage_errors_exit_2_with_one_line_before_any_work(tmp_path, capsys, argv, words):
    video = _write_video(tmp_path / "v.mp4", [np.zeros((64, 64, 3), np.uint8)] * 2)
    out = tmp_path / "o"
    argv = [a.format(v=video, d=tmp_path, o=out) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pose3d-rt: error: ") and words in err[0], err
    assert not (out / SUMMARY_NAME).exists()


def test_ray_without_the_ray_package_is_one_line(tmp_path, capsys, monkeypatch):
    video = _write_video(tmp_path / "v.mp4", [np.zeros((64, 64, 3), np.uint8)] * 2)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert main(["batch", str(video), "--output-root", str(tmp_path / "o"), "--ray"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["pose3d-rt: error: --ray needs the ray package: pip install 'pose3d-rt[ray]'"]


def test_workers_must_be_positive(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["batch", "v.mp4", "--output-root", "o", "--workers", "0"])
    assert exc.value.code == 2 and "--workers" in capsys.readouterr().err
