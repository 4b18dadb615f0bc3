"""benchmarks/: statistics, ratios, tables, atomic writes (core), reference rows, synthetic inputs, the
``pose3d-rt bench`` parser and one fast synthetic run (bench), the ``python -m benchmarks`` runner.

Speed is never asserted: timings are either fixed fake numbers (closed-form checks) or only checked for shape.
"""
from __future__ import annotations

import argparse
import json
import os
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import read_frames
from pose3d_rt.errors import Pose3DError

from benchmarks import bench, reference, run, synthetic
from benchmarks.bench import configure_parser
from benchmarks.core import (
    REFERENCE_LABEL,
    STAGES,
    UNIT_CROP,
    UNIT_FPS,
    UNIT_FRAME,
    UNIT_PERSON_FRAME,
    Row,
    apply_ratios,
    format_markdown,
    make_row,
    markdown_table,
    summarize,
    write_report,
)
from benchmarks.reference import reference_rows

FIXTURE_TIMING = Path(__file__).resolve().parent / "fixtures" / "e2e" / "baseline_timing.json"


def _parse(*argv: str) -> argparse.Namespace:
    return configure_parser(argparse.ArgumentParser()).parse_args(list(argv))


# -- statistics and ratios ---------------------------------------------------------------------------------------


def test_summarize_median_p90_n_closed_form():
    assert summarize(range(1, 11)) == pytest.approx((5.5, 9.1, 10))  # p90: 1 + 0.9 * 9 = 9.1 (linear)
    assert summarize([3.0, 1.0, 2.0]) == pytest.approx((2.0, 2.8, 3))  # sorted 1,2,3: index 1.8 -> 2.8
    assert summarize([7.0]) == (7.0, 7.0, 1)
    with pytest.raises(ValueError):
        summarize([])
    with pytest.raises(ValueError):
        summarize([1.0, float("nan")])


def test_make_row_keeps_samples_and_checks_the_unit():
    r = make_row("pose2d", "b4", UNIT_CROP, [30.0, 10.0, 20.0], items_per_run=16)
    assert (r.median, r.p90, r.n, r.items_per_run) == (20.0, pytest.approx(28.0), 3, 16)
    assert r.samples == [30.0, 10.0, 20.0] and r.ratio is None and not r.baseline
    with pytest.raises(ValueError):
        make_row("det", "x", "seconds", [1.0])


def test_ratios_latency_is_baseline_over_median_fps_is_median_over_baseline():
    rows = [
        make_row("pose2d", "base", UNIT_CROP, [100.0, 100.0, 100.0], baseline=True),
        make_row("pose2d", "b8", UNIT_CROP, [25.0, 20.0, 30.0]),  # median 25 -> 100 / 25 = 4x
        make_row("pose2d", "slower", UNIT_CROP, [200.0]),  # 0.5x
        make_row("e2e", "base", UNIT_FPS, [2.0, 1.0, 3.0], baseline=True),  # median 2
        make_row("e2e", "default", UNIT_FPS, [3.0]),  # 3 / 2 = 1.5x
        make_row("e2e", REFERENCE_LABEL, UNIT_FPS, [1.0], reference=True),  # 0.5x
        make_row("e2e", "other unit", UNIT_FRAME, [10.0]),  # units differ: no ratio
        make_row("det", "only", UNIT_FRAME, [5.0]),  # stage without baseline: no ratio
    ]
    out = apply_ratios(rows)
    assert [r.ratio for r in out] == [1.0, pytest.approx(4.0), pytest.approx(0.5), 1.0, pytest.approx(1.5),
                                      pytest.approx(0.5), None, None]


def test_first_baseline_of_a_stage_wins():
    rows = apply_ratios([make_row("lifter", "a", UNIT_PERSON_FRAME, [10.0], baseline=True),
                         make_row("lifter", "b", UNIT_PERSON_FRAME, [5.0], baseline=True)])
    assert [r.ratio for r in rows] == [1.0, pytest.approx(2.0)]


# -- output ------------------------------------------------------------------------------------------------------


def test_markdown_table_exact():
    rows = apply_ratios([
        make_row("pose2d", "one crop, flip", UNIT_CROP, [250.0], baseline=True, note="16 crops"),
        make_row("pose2d", "batch 8", UNIT_CROP, [12.5, 12.5], note="a|b"),
        Row("e2e", "ref", UNIT_FPS, 0.25, None, 1, reference=True),
    ])
    assert markdown_table(rows).splitlines() == [
        "| stage | variant | unit | median | p90 | n | ratio vs baseline | notes |",
        "|---|---|---|---:|---:|---:|---:|---|",
        "| pose2d | **one crop, flip** (baseline) | ms per crop | 250.0 | 250.0 | 1 | 1.00× | 16 crops |",
        "| pose2d | batch 8 | ms per crop | 12.50 | 12.50 | 2 | 20.00× | a/b |",
        "| e2e | ref | FPS | 0.250 | — | 1 | — |  |",
    ]


def test_format_markdown_mentions_skipped_stages_and_reference_rows_only_when_present():
    base = {"name": "x", "environment": {"cpu": "CPU", "cores": 2}, "settings": {"repeats": 3},
            "rows": [make_row("det", "d", UNIT_FRAME, [1.0], baseline=True).to_dict()], "skipped": {}}
    md = format_markdown(base)
    assert md.startswith("# Speed: x\n") and "cpu: CPU; cores: 2" in md and "repeats: 3" in md
    assert "| det | **d** (baseline) |" in md and "skipped" not in md and REFERENCE_LABEL not in md
    md = format_markdown({**base, "skipped": {"vis": "not importable"},
                          "rows": base["rows"] + [make_row("det", REFERENCE_LABEL, UNIT_FRAME, [2.0],
                                                           reference=True).to_dict()]})
    assert "stage `vis` skipped: not importable" in md and f'"{REFERENCE_LABEL}" rows are quoted' in md


def test_write_report_writes_whole_files_atomically_and_leaves_no_temporaries(tmp_path, monkeypatch):
    out = tmp_path / "sub"
    jpath, mpath = write_report(out, "r", {"rows": [1.5]}, "# one\n")
    assert (jpath, mpath) == (out / "r.json", out / "r.md")
    assert jpath.read_text() == '{\n  "rows": [\n    1.5\n  ]\n}\n' and mpath.read_text() == "# one\n"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(jpath.stat().st_mode) == 0o666 & ~umask  # an ordinary file, not mkstemp's 0600
    write_report(out, "r", [], "# two\n")
    assert json.loads(jpath.read_text()) == [] and mpath.read_text() == "# two\n"

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_report(out, "r", {"three": 3}, "# three\n")
    assert json.loads(jpath.read_text()) == [] and mpath.read_text() == "# two\n"  # the old files are intact
    assert sorted(p.name for p in out.iterdir()) == ["r.json", "r.md"]  # no temporary left behind


# -- parser ------------------------------------------------------------------------------------------------------


def test_parser_defaults():
    a = _parse()
    assert (a.det, a.pose2d, a.lifter, a.synthetic, a.input) == (None, None, None, False, None)
    assert (a.repeats, a.warmup, a.device, a.threads) == (5, 1, "cpu", None)
    assert a.stages == list(STAGES) == ["det", "pose2d", "lifter", "vis", "e2e"]
    assert a.batch_sizes == [1, 4, 8] and a.persons == [1, 4]
    assert (a.out, a.name) == (str(Path("benchmarks") / "results"), "stages")
    assert (a.video_frames, a.video_size, a.e2e_frames, a.reference) == (100, (640, 480), 0, "auto")


def test_parser_lists_and_rejections():
    a = _parse("--stages", "e2e,det,e2e", "--batch-sizes", "2,16", "--threads", "2", "--video-size", "320x240")
    assert a.stages == ["e2e", "det"] and a.batch_sizes == [2, 16] and a.threads == 2
    assert a.video_size == (320, 240)
    for bad in (["--stages", "det,gpu"], ["--batch-sizes", "0"], ["--batch-sizes", "a"], ["--repeats", "0"],
                ["--video-size", "640"], ["--warmup", "-1"]):
        with pytest.raises(SystemExit):
            _parse(*bad)


def test_models_are_required_without_synthetic(tmp_path):
    with pytest.raises(Pose3DError, match="--det, --pose2d, --lifter"):
        bench.cmd_bench(_parse("--out", str(tmp_path)))
    with pytest.raises(Pose3DError, match="--lifter"):
        bench.cmd_bench(_parse("--det", "d.onnx", "--pose2d", "p.onnx", "--stages", "lifter", "--out", str(tmp_path)))


# -- reference timings -------------------------------------------------------------------------------------------


def test_reference_rows_closed_form(tmp_path):
    data = {"machine": {"torch": "x", "torch_num_threads": 2, "cpu_model": "cpu"},
            "runs": {"r": {"input": "v.avi", "models": ["a"], "frames": 2, "instances_per_frame": [2, 4],
                           "per_frame": [{"detector": 0.5, "pose2d": 0.2, "lifter": 0.04, "visualize": 0.01},
                                         {"detector": 0.7, "pose2d": 0.2, "lifter": 0.08, "visualize": 0.03}],
                           "stages": {"frames": 2, "frames_total_s": 4.0}}}}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))
    rows = {r.stage: r for r in reference_rows(path, "r")}
    assert set(rows) == set(STAGES) and all(r.reference and not r.baseline for r in rows.values())
    assert rows["det"].median == pytest.approx(600.0) and rows["det"].n == 2
    assert rows["pose2d"].samples == pytest.approx([100.0, 50.0])  # 200 ms / 2 crops, 200 ms / 4 crops
    assert rows["lifter"].samples == pytest.approx([20.0, 20.0])
    assert rows["vis"].median == pytest.approx(20.0)
    assert (rows["e2e"].unit, rows["e2e"].median, rows["e2e"].n) == (UNIT_FPS, pytest.approx(0.5), 1)
    assert reference_rows(path, "nope") == []
    assert reference.reference_info(path, "nope") is None
    info = reference.reference_info(path, "r")
    assert "v.avi" in info and "2 threads" in info and "models a" in info
    assert [r.stage for r in reference_rows(path, "r", stages=["e2e"])] == ["e2e"]


def test_reference_rows_of_the_fixture_demo_run():
    data = json.loads(FIXTURE_TIMING.read_text())["runs"]["video_default"]
    rows = {r.stage: r for r in reference_rows(FIXTURE_TIMING)}
    assert rows["e2e"].median == pytest.approx(data["frames"] / data["stages"]["frames_total_s"])
    det_ms = np.array([f["detector"] for f in data["per_frame"]]) * 1000
    assert rows["det"].median == pytest.approx(float(np.median(det_ms)))
    assert rows["det"].n == data["frames"]


# -- synthetic inputs --------------------------------------------------------------------------------------------


def test_synthetic_video_and_inputs(tmp_path):
    path = synthetic.make_synthetic_video(tmp_path, frames=5, size=(96, 64))
    if path.is_file():
        frames = read_frames(path)
    else:  # PNG fallback
        frames = [cv2.imread(str(p)) for p in sorted(path.iterdir())]
    assert len(frames) == 5 and frames[0].shape == (64, 96, 3)
    kp, sc, bb = synthetic.synthetic_tracks(3, 7, (96, 64))
    assert kp.shape == (7, 3, 17, 2) and sc.shape == (7, 3, 17) and bb.shape == (7, 3, 4)
    boxes = synthetic.person_boxes(8, (640, 480))
    assert boxes.shape == (8, 4) and (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    assert boxes.min() >= 0 and boxes[:, 2].max() <= 640 and boxes[:, 3].max() <= 480
    res = synthetic.synthetic_result(2, 320, 240)
    assert res.keypoints_2d.shape == (2, 17, 2) and res.keypoints_3d.shape == (2, 17, 3)


# -- end to end (synthetic engines) ------------------------------------------------------------------------------


def test_cmd_bench_synthetic_end_to_end(tmp_path):
    out = tmp_path / "results"
    args = _parse("--synthetic", "--repeats", "1", "--video-frames", "10", "--video-size", "160x120", "--frames",
                  "2", "--crops", "8", "--lift-frames", "4", "--out", str(out), "--name", "t")
    assert bench.cmd_bench(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["t.json", "t.md"]
    report = json.loads((out / "t.json").read_text())
    rows = [Row(**r) for r in report["rows"]]
    stages = {r.stage for r in rows}
    assert {"det", "pose2d", "lifter", "e2e"} <= stages
    assert "vis" in stages or "vis" in report["skipped"]
    assert not any(r.reference for r in rows)  # no reference rows in synthetic mode
    for stage in stages:
        bases = [r for r in rows if r.stage == stage and r.baseline]
        assert len(bases) == 1 and bases[0].ratio == 1.0, stage
    for r in rows:
        assert r.median > 0 and r.p90 > 0 and r.n == 1 and len(r.samples) == 1
        assert r.ratio is not None and r.ratio > 0
    assert {r.unit for r in rows if r.stage == "e2e"} == {UNIT_FPS}
    assert {r.unit for r in rows if r.stage == "pose2d"} == {UNIT_CROP}
    assert {r.unit for r in rows if r.stage == "lifter"} == {UNIT_PERSON_FRAME}
    assert len([r for r in rows if r.stage == "pose2d"]) == 4  # baseline + batch 1, 4, 8
    assert len([r for r in rows if r.stage == "lifter"]) == 4  # baseline + ring P=1, P=4 + batched fresh
    env = report["environment"]
    for key in ("cpu", "cores", "onnxruntime", "numpy", "threads", "date"):
        assert key in env
    assert report["settings"]["synthetic"] is True
    md = (out / "t.md").read_text()
    assert md.startswith("# Speed: t") and "| e2e | **" in md and "(baseline)" in md


def test_cmd_bench_only_some_stages(tmp_path):
    args = _parse("--synthetic", "--repeats", "2", "--video-frames", "4", "--video-size", "64x48", "--stages",
                  "pose2d", "--batch-sizes", "2", "--crops", "4", "--out", str(tmp_path))
    assert bench.cmd_bench(args) == 0
    report = json.loads((tmp_path / "stages.json").read_text())
    assert {r["stage"] for r in report["rows"]} == {"pose2d"}
    assert [r["n"] for r in report["rows"]] == [2, 2]
    assert all(os.path.getsize(tmp_path / f) > 0 for f in ("stages.json", "stages.md"))


# -- python -m benchmarks ----------------------------------------------------------------------------------------


def test_runner_lists_every_benchmark_and_rejects_unknown_names(capsys):
    with pytest.raises(SystemExit) as exc:
        run.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("stages", "visualize", "memory", "pose3d-rt bench"))
    with pytest.raises(SystemExit) as exc:
        run.main(["nope"])
    assert exc.value.code == 2 and "unknown benchmark nope" in capsys.readouterr().err
