"""Motion-capture outputs (pose3d_rt.io.mocap, pose3d_rt.io.bvh): TRC, BVH and CSV read back with independent
readers (trc-data-reader, bvhio, the csv module) and compared with the 3D they were written from; interrupted runs
leave valid files; `pose3d-rt run --save-trc --save-bvh --save-csv` end to end."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import bvhio  # the [dev] extra's BVH reader (its own forward kinematics)
import numpy as np
import pytest
import trc  # the [dev] extra's TRC reader (trc-data-reader)
from pose3d_rt.io.mocap import MocapWriter
from pose3d_rt.job import run
from pose3d_rt.keypoint_sets import H36M17, convert_keypoint_definition
from pose3d_rt.results import FrameResult
from scipy.spatial.transform import Rotation

from benchmarks.fakes import STANDING_COCO_OFFSETS, STANDING_H36M_3D

NAMES = list(H36M17.keypoint_names)
PARENT = {b: a for a, b in H36M17.skeleton}  # the test's own tree, from the dataset's links
FPS = 25.0


def _motion(n: int, seed: int) -> np.ndarray:
    """(n, 17, 3) metres, JSON axes: the standing pose turning about Z and leaning, limbs swinging, every joint
    jittered by 1 cm (so bone lengths change from frame to frame), walking along X."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / FPS
    out = np.empty((n, 17, 3))
    for i in range(n):
        swing = STANDING_H36M_3D.astype(np.float64).copy()
        swing[[2, 3, 12, 13], 1] += 0.25 * np.sin(2 * np.pi * t[i])
        swing[[5, 6, 15, 16], 1] -= 0.25 * np.sin(2 * np.pi * t[i])
        rot = Rotation.from_euler("zx", [80 * np.sin(0.7 * t[i]), 15 * np.sin(1.3 * t[i])], degrees=True)
        out[i] = rot.apply(swing - swing[0]) + swing[0] + [0.4 * t[i], 0.0, 0.0]
    return out + rng.normal(0.0, 0.01, out.shape)


def _result(i: int, ids, joints, time: float) -> FrameResult:
    n = len(ids)
    k2 = np.broadcast_to(STANDING_COCO_OFFSETS + [320 + 3 * i, 240], (n, 17, 2)) + np.arange(n)[:, None, None] * 50
    return FrameResult(i, np.tile([10, 10, 90, 200], (n, 1)), np.ones(n), ids, k2, np.full((n, 17), 0.8),
                       np.asarray(joints, np.float32).reshape(n, 17, 3), (640, 480), timestamp=time)


def _normalised(joints: np.ndarray) -> np.ndarray:
    """The bone-length-normalised joints, computed here: each bone at the median of its length over the frames,
    along its observed direction, from the pelvis down."""
    out = joints.copy()
    for j in range(1, 17):  # H36M order lists parents first
        p = PARENT[j]
        d = joints[:, j] - joints[:, p]
        length = np.median(np.linalg.norm(d, axis=-1))
        out[:, j] = out[:, p] + length * d / np.linalg.norm(d, axis=-1, keepdims=True)
    return out


def _bvh_joints(path: Path) -> np.ndarray:
    """(frames, 17, 3) world positions of the H36M joints by bvhio's forward kinematics, back in JSON axes and m."""
    root = bvhio.readAsHierarchy(str(path))
    frames = bvhio.readAsBvh(str(path)).FrameCount
    out = np.empty((frames, 17, 3))
    for f in range(frames):
        root.loadPose(f)
        pos = {j.Name: np.array(j.PositionWorld) for j, _, _ in root.layout()}
        xyz = np.array([pos[n] for n in NAMES])  # BVH: X right, Y up, Z backward, cm
        out[f] = np.stack([xyz[:, 0], -xyz[:, 2], xyz[:, 1]], -1) / 100.0
    return out


def _trc_joints(path: Path):
    data = trc.TRCData()
    data.load(str(path))
    xyz = np.stack([np.asarray(data[n], np.float64) for n in NAMES], 1)  # OpenSim: X forward, Y up, Z right, mm
    return data, np.stack([xyz[..., 2], xyz[..., 0], xyz[..., 1]], -1) / 1000.0


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Two tracks over 60 frames at irregular times: track 4 all along (not lifted at frame 20), track 9 from
    frame 10 to 49 (missing at frames 30-32)."""
    root = tmp_path_factory.mktemp("mocap")
    a, b = _motion(60, 0), _motion(60, 1) + [0.0, 2.0, 0.0]
    a[20] = np.nan
    times = np.cumsum(np.r_[0.0, np.random.default_rng(3).uniform(0.03, 0.05, 59)])
    w = MocapWriter(root, "clip", trc=True, bvh=True, csv=True, fps=FPS)
    for i in range(60):
        both = 10 <= i < 50 and not 30 <= i < 33
        w.add(_result(i, [4, 9] if both else [4], [a[i], b[i]] if both else [a[i]], times[i]))
    paths = w.close()
    return root, paths, a, b, times


def test_trc_header_and_markers_round_trip(written):
    root, paths, a, b, times = written
    assert {p.name for p in paths} == {"results_clip.csv", "results_clip_track4.trc", "results_clip_track4.bvh",
                                       "results_clip_track9.trc", "results_clip_track9.bvh"}
    data, got = _trc_joints(root / "results_clip_track4.trc")
    assert (data["DataRate"], data["CameraRate"], data["NumFrames"], data["NumMarkers"], data["Units"]) == \
           (FPS, FPS, 60, 17, "mm")
    assert data["Markers"] == NAMES and data["OrigDataStartFrame"] == 1
    assert data["Frame#"] == list(range(1, 61))
    np.testing.assert_allclose(data["Time"], times, atol=5e-7)  # the frames' own timestamps
    ok = np.isfinite(a).all(axis=(1, 2))
    assert np.isnan(got[20]).all() and ok.sum() == 59
    assert np.abs(got[ok] - a.astype(np.float32)[ok]).max() * 1000 < 1e-3  # mm

    data, got = _trc_joints(root / "results_clip_track9.trc")
    assert data["NumFrames"] == 40 and data["OrigDataStartFrame"] == 11 and data["Frame#"][0] == 11
    present = np.r_[0:20, 23:40]
    assert np.isnan(got[20:23]).all()
    assert np.abs(got[present] - b.astype(np.float32)[10:50][present]).max() * 1000 < 1e-3


def test_bvh_forward_kinematics_gives_the_bone_length_normalised_joints(written):
    root, _, a, b, _ = written
    for name, joints, frames in (("track4", a, slice(0, 60)), ("track9", b, slice(10, 50))):
        joints = joints.astype(np.float32).astype(np.float64)[frames]
        if name == "track9":
            joints[20:23] = np.nan  # the frames 30-32 where the track is missing
        path = root / f"results_clip_{name}.bvh"
        fk = _bvh_joints(path)
        assert len(fk) == len(joints) and bvhio.readAsBvh(str(path)).FrameTime == pytest.approx(1 / FPS)
        ok = np.isfinite(joints).all(axis=(1, 2))
        want = _normalised(joints[ok])
        assert np.abs(fk[ok] - want).max() < 1e-3  # metres: within 1 mm
        # the bones have the median lengths, not the per-frame ones
        assert np.abs(want - joints[ok]).max() > 5e-3
        held = np.flatnonzero(~ok)  # a frame without 3D holds the previous pose
        np.testing.assert_allclose(fk[held], fk[held - 1], atol=1e-6)


def test_bvh_rest_pose_and_hierarchy(written):
    root = written[0]
    text = (root / "results_clip_track4.bvh").read_text()
    assert text.startswith("HIERARCHY\nROOT root\n") and "\nMOTION\nFrames: 60\n" in text
    skel = bvhio.readAsHierarchy(str(root / "results_clip_track4.bvh"))
    rest = {j.Name: np.array(j.PositionWorld) for j, _, _ in skel.layout()}  # before loadPose: the rest pose
    assert rest["head"][1] > rest["neck_base"][1] > rest["thorax"][1] > rest["root"][1] > rest["right_knee"][1]
    assert rest["right_wrist"][0] > rest["right_elbow"][0] > 0 > rest["left_elbow"][0] > rest["left_wrist"][0]
    assert {n for n in rest if "_to_" not in n} == set(NAMES)


def test_csv_round_trip(written):
    root, _, a, b, times = written
    with open(root / "results_clip.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["frame", "time", "track_id", "joint", "x2d", "y2d", "score2d", "x3d", "y3d", "z3d"]
    assert len(rows) == (60 + 37) * 17
    track9 = [r for r in rows if r["track_id"] == "9" and r["frame"] == "40"]
    assert [r["joint"] for r in track9] == NAMES
    assert float(track9[0]["time"]) == pytest.approx(times[40], abs=1e-6)
    got3 = np.array([[float(r[k]) for k in ("x3d", "y3d", "z3d")] for r in track9])
    np.testing.assert_allclose(got3, b[40].astype(np.float32), atol=1e-6)
    res = _result(40, [4, 9], [a[40], b[40]], times[40])
    h36m_2d = convert_keypoint_definition(np.concatenate([res.keypoints_2d, res.scores_2d[..., None]], -1), "coco")
    got2 = np.array([[float(r[k]) for k in ("x2d", "y2d", "score2d")] for r in track9])
    np.testing.assert_allclose(got2, h36m_2d[1], atol=1e-3)
    not_lifted = [r for r in rows if r["track_id"] == "4" and r["frame"] == "20"]
    assert len(not_lifted) == 17 and all(r["x3d"] == "" and r["x2d"] != "" for r in not_lifted)


def test_outputs_need_output_root_and_leave_no_spill(written, tmp_path):
    root = written[0]
    assert not [p for p in root.iterdir() if p.name.startswith(".")]
    from pose3d_rt.errors import InputError

    src = tmp_path / "one.png"
    import cv2

    cv2.imwrite(str(src), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(InputError, match="--save-trc"):
        run(lambda: None, str(src), save_trc=True, progress=False)


# -- through pose3d_rt.job.run ---------------------------------------------------------------------------------

def _job_helpers():
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_job import _factory, _Interrupting, _video

    return _factory, _Interrupting, _video


@pytest.mark.parametrize("exc", [None, KeyboardInterrupt(), RuntimeError("boom")], ids=["full", "ctrl-c", "crash"])
def test_job_writes_valid_files_also_when_interrupted(tmp_path, exc):
    _factory, _Interrupting, _video = _job_helpers()
    src = _video(tmp_path / "clip.avi")
    out = tmp_path / "out"
    make = _factory()
    factory = make if exc is None else (lambda: _Interrupting(make(), 12, exc))
    kwargs = dict(output_root=str(out), save_predictions=True, save_trc=True, save_bvh=True, save_csv=True,
                  progress=False)
    if isinstance(exc, RuntimeError):
        with pytest.raises(RuntimeError):
            run(factory, str(src), **kwargs)
    else:
        summary = run(factory, str(src), **kwargs)
        assert len(summary.mocap_paths) == 5 and summary.interrupted == (exc is not None)
    frames = 30 if exc is None else 12
    info = json.loads((out / "results_clip.json").read_text())["instance_info"]
    assert len(info) == frames
    for tid in (0, 1):
        data, got = _trc_joints(out / f"results_clip_track{tid}.trc")
        want = np.array([[p["keypoints"] for p in r["instances"] if p["track_id"] == tid][0] for r in info])
        assert data["NumFrames"] == frames and np.abs(got - want).max() * 1000 < 1e-3
        np.testing.assert_allclose(data["Time"], np.arange(frames) / 25.0, atol=1e-6)  # the video's timestamps
        assert len(_bvh_joints(out / f"results_clip_track{tid}.bvh")) == frames
    with open(out / "results_clip.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == frames * 2 * 17
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files or spill left behind"


# -- the command line --------------------------------------------------------------------------------------------

def test_cli_flags_are_checked_before_any_model(tmp_path, capsys):
    from pose3d_rt.cli import main

    video = tmp_path / "x.mp4"
    video.write_bytes(b"0")
    assert main(["run", str(video), "--save-bvh"]) == 2
    assert "--save-bvh needs --output-root" in capsys.readouterr().err
    assert main(["run", str(video), "--save-trc", "--lifter", "none", "--output-root", str(tmp_path / "o")]) == 2
    assert "--save-trc: needs 3D joints" in capsys.readouterr().err
    helptext = capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    helptext = capsys.readouterr().out
    for flag in ("--save-trc", "--save-bvh", "--save-csv", "--smooth", "--smooth-min-cutoff", "--smooth-beta"):
        assert flag in helptext


@pytest.mark.slow
def test_cli_run_writes_trc_bvh_csv_from_the_fixture_models(checkpoints, tmp_path, monkeypatch):
    import cv2
    from conftest import FIXTURES
    from pose3d_rt.cli import main

    monkeypatch.setenv("POSE3D_RT_HOME", str(tmp_path / "home"))
    frames = tmp_path / "clip"
    frames.mkdir()
    cap = cv2.VideoCapture(str(FIXTURES / "inputs" / "synthetic_video.avi"))
    for i in range(12):
        ok, frame = cap.read()
        assert ok
        cv2.imwrite(str(frames / f"{i:04d}.png"), frame)
    cap.release()
    out = tmp_path / "out"
    code = main(["run", str(frames), "--det", str(checkpoints["rtmdet_nano_person"]),
                 "--pose2d", str(checkpoints["rtmpose_t_body8_256x192"]),
                 "--lifter", str(checkpoints["videopose3d_27f_supv"]), "--output-root", str(out),
                 "--save-predictions", "--save-trc", "--save-bvh", "--save-csv", "--smooth", "--no-progress"])
    assert code == 0
    info = json.loads((out / "results_clip.json").read_text())["instance_info"]
    tracks = sorted({p["track_id"] for r in info for p in r["instances"] if p["keypoints"] is not None})
    assert tracks
    for tid in tracks:
        data, got = _trc_joints(out / f"results_clip_track{tid}.trc")
        want = {r["frame_id"]: p["keypoints"] for r in info for p in r["instances"] if p["track_id"] == tid}
        rows = [i for i, f in enumerate(data["Frame#"]) if f - 1 in want]
        assert np.abs(got[rows] - np.array([want[data["Frame#"][i] - 1] for i in rows])).max() * 1000 < 1e-3
        fk = _bvh_joints(out / f"results_clip_track{tid}.bvh")
        assert len(fk) == data["NumFrames"] and np.isfinite(fk).all()
    with open(out / "results_clip.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 17 * sum(len(r["instances"]) for r in info)
