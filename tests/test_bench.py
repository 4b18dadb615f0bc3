"""benchmarks/: statistics, ratios, tables, atomic writes (core), reference rows, synthetic inputs, the
``pose3d-rt bench`` parser and one fast synthetic run (bench), the ``python -m benchmarks`` runner.

Speed is never asserted: timings are either fixed fake numbers (closed-form checks) or only checked for shape.
"""
from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import read_frames
from pose3d_rt.errors import Pose3DError

from benchmarks import bench, measure, pipelines, reference, run, stages, synthetic
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
    assert (a.det, a.pose2d, a.lifter, a.baseline_lifter, a.synthetic, a.input) == (None,) * 4 + (False, None)
    assert (a.device, a.precision, a.det_interval, a.threads) == ("cpu", "fp32", 1, None)
    assert (a.repeats, a.warmup, a.frames, a.persons, a.stage_frames, a.lift_frames) == (5, 1, 0, 4, 8, 16)
    assert a.stages == list(STAGES) == ["det", "pose2d", "lifter", "vis", "e2e"]
    assert (a.json, a.out, a.name, a.video_size, a.reference) == (False, None, "bench", (640, 360), "auto")


def test_parser_takes_runs_options_and_rejects_bad_values():
    a = _parse("--stages", "e2e,det,e2e", "--threads", "2", "--video-size", "320x240", "--device", "openvino",
               "--precision", "int8", "--det-interval", "5", "--frames", "64", "--json")
    assert a.stages == ["e2e", "det"] and a.threads == 2 and a.video_size == (320, 240)
    assert (a.device, a.precision, a.det_interval, a.frames, a.json) == ("openvino", "int8", 5, 64, True)
    for bad in (["--stages", "det,gpu"], ["--repeats", "0"], ["--video-size", "640"], ["--warmup", "-1"],
                ["--precision", "fp16"], ["--det-interval", "0"], ["--persons", "0"]):
        with pytest.raises(SystemExit):
            _parse(*bad)


def test_a_bad_model_argument_fails_naming_its_flag_before_anything_loads():
    with pytest.raises(Pose3DError, match="--det"):
        bench.models_from_args(_parse("--det", "no-such-model-alias"))
    with pytest.raises(Pose3DError, match="--baseline-lifter"):
        bench.models_from_args(_parse("--baseline-lifter", "missing/lifter.onnx"))


def test_precision_int8_needs_the_pipeline_option_and_model_files(monkeypatch, tmp_path):
    monkeypatch.setattr(pipelines, "precision_supported", lambda: False)
    with pytest.raises(Pose3DError, match="--precision int8: not available yet"):
        bench.cmd_bench(_parse("--synthetic", "--precision", "int8", "--frames", "4"))
    monkeypatch.undo()
    if pipelines.precision_supported():  # scripted engines are not files: nothing to quantize
        with pytest.raises(Pose3DError):
            bench.cmd_bench(_parse("--synthetic", "--precision", "int8", "--frames", "4", "--repeats", "1",
                                   "--video-size", "64x48", "--stages", "det"))


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


# -- measurement -------------------------------------------------------------------------------------------------


def test_measure_interleaves_the_variants_of_a_stage_and_warms_each_up_first():
    calls = []

    def variant(stage, name, value, **kw):
        def run():
            calls.append(name)
            return value
        return measure.Variant(stage, name, UNIT_FRAME, run, 1, key=name, warmup=lambda: calls.append("w" + name),
                               **kw)

    rows = measure.measure([variant("det", "a", 2.0, baseline=True), variant("det", "b", 1.0),
                            variant("vis", "c", 3.0, note_after=lambda: "seen", info_after=lambda: {"x": 1})],
                           repeats=2, warmup=1)
    assert calls == ["wa", "wb", "a", "b", "a", "b", "wc", "c", "c"]
    assert [(r.key, r.median, r.n, r.baseline) for r in rows] == [("a", 2.0, 2, True), ("b", 1.0, 2, False),
                                                                   ("c", 3.0, 2, False)]
    assert rows[2].note == "seen" and rows[2].info == {"x": 1}


def test_rect_letterbox_shape_closed_form():
    assert measure.rect_hw((384, 640)) == (384, 640)  # the fixture video
    assert measure.rect_hw((1080, 1920)) == (384, 640)  # 16:9: 360 -> 384
    assert measure.rect_hw((480, 640)) == (480, 640)
    assert measure.rect_hw((1920, 1080)) == (640, 384)  # portrait
    assert measure.rect_hw((100, 100)) == (640, 640)  # up-scaled into the square


def test_stdout_to_stderr_keeps_stdout_for_the_json_object(capfd):
    with bench.stdout_to_stderr() as real:
        print("from python")
        os.write(1, b"from a native library\n")
        sys.stdout.flush()
    real.write("{}\n")
    real.flush()
    out, err = capfd.readouterr()
    assert out == "{}\n" and "from python" in err and "from a native library" in err


# -- the JSON summary and the acceptance figures (closed form) ----------------------------------------------------


def _e2e(key, fps, ppf, baseline=False, share=None):
    return make_row("e2e", key, UNIT_FPS, [fps], key=key, baseline=baseline,
                    info={"persons_per_frame": ppf, "non_network_share": share})


def test_bench_summary_reads_the_keyed_rows():
    rows = apply_ratios([
        make_row("det", "b", UNIT_FRAME, [400.0], key="baseline_det", baseline=True),
        make_row("det", "c", UNIT_FRAME, [200.0], key="det"),
        make_row("pose2d", "b", UNIT_CROP, [50.0], key="baseline_pose2d", baseline=True),
        make_row("pose2d", "c", UNIT_CROP, [10.0], key="pose2d"),
        make_row("lifter", "b", UNIT_PERSON_FRAME, [14.0], key="baseline_lifter", baseline=True),
        make_row("lifter", "c", UNIT_PERSON_FRAME, [0.25], key="lifter"),
        _e2e("baseline_e2e", 1.0, 3.5, baseline=True, share=0.25), _e2e("e2e", 3.5, 3.25, share=0.04)])
    s = bench.summary(rows)
    assert (s["det_ms"], s["pose2d_ms_per_crop"], s["lifter_ms_per_person_frame"], s["e2e_fps"]) == (200.0, 10.0,
                                                                                                     0.25, 3.5)
    assert s["vis_ms"] is None and s["baseline_fps"] == 1.0 and s["speedup"] == pytest.approx(3.5)
    assert s["baseline"] == {"det_ms": 400.0, "pose2d_ms_per_crop": 50.0, "lifter_ms_per_person_frame": 14.0,
                             "e2e_fps": 1.0, "persons_per_frame": 3.5, "non_network_share": 0.25}
    assert s["persons_per_frame"] == 3.25 and s["non_network_share"] == 0.04
    empty = bench.summary([])
    assert empty["speedup"] is None and empty["e2e_fps"] is None and empty["baseline"]["det_ms"] is None


def test_stage_acceptance_figures_closed_form():
    rows = apply_ratios([
        make_row("det", "b", UNIT_FRAME, [400.0], key="baseline_det", baseline=True),
        make_row("det", "sq", UNIT_FRAME, [380.0], key="det:cpu-fp32-square"),
        make_row("det", "rect", UNIT_FRAME, [228.0], key="det:cpu-fp32-rect"),
        make_row("det", "rect8", UNIT_FRAME, [91.2], key="det:cpu-int8-rect"),
        make_row("pose2d", "b", UNIT_CROP, [60.0], key="baseline_pose2d", baseline=True),
        make_row("pose2d", "ort", UNIT_CROP, [20.0], key="pose2d:cpu-fp32"),
        make_row("pose2d", "int8", UNIT_CROP, [6.0], key="pose2d:cpu-int8"),
        make_row("pose2d", "peer ort", UNIT_CROP, [21.0], key="pose2d:rtmlib-onnxruntime"),
        make_row("pose2d", "peer ov", UNIT_CROP, [12.0], key="pose2d:rtmlib-openvino"),
        make_row("lifter", "b", UNIT_PERSON_FRAME, [14.0], key="baseline_lifter", baseline=True),
        make_row("lifter", "s", UNIT_PERSON_FRAME, [0.28], key="lifter:cpu-fp32"),
        make_row("lifter", "s8", UNIT_PERSON_FRAME, [0.14], key="lifter:cpu-int8"),
        _e2e("baseline_e2e", 0.8, 3.5, baseline=True), _e2e("e2e:cpu-fp32-di1", 2.4, 3.5),
        _e2e("e2e:cpu-fp32-di5", 6.0, 3.0), _e2e("e2e:cpu-int8-di5", 12.8, 3.0)])
    acc = stages.acceptance(rows)
    assert acc["e2e_speedup"] == pytest.approx({"cpu-fp32-di1": 3.0, "cpu-fp32-di5": 7.5, "cpu-int8-di5": 16.0})
    assert acc["e2e_persons_per_frame"] == {"baseline": 3.5, "cpu-fp32-di1": 3.5, "cpu-fp32-di5": 3.0,
                                            "cpu-int8-di5": 3.0}
    assert (acc["pose2d_ours_fastest"], acc["pose2d_rtmlib_fastest"]) == ("pose2d:cpu-int8", "pose2d:rtmlib-openvino")
    assert acc["pose2d_vs_rtmlib"] == pytest.approx(2.0)  # 12 ms / 6 ms
    assert acc["det_rect_vs_square"] == pytest.approx(380 / 228)
    assert acc["det_int8_vs_fp32_rect"] == pytest.approx(2.5)
    assert acc["lifter_stream_vs_baseline"] == pytest.approx(50.0) and acc["lifter_ms_per_person_frame"] == 0.28
    lines = stages.summary_lines(acc, rows)
    assert any("3.00× the baseline (goal ≥ 3×), 3.50 persons per frame vs the baseline's 3.50" in ln for ln in lines)
    assert any("7.50× the baseline (goal ≥ 7×), 3.00 persons per frame vs the baseline's 3.50" in ln for ln in lines)
    assert any("pose2d:rtmlib-openvino" in ln and "2.00× (goal ≥ 1.5×)" in ln for ln in lines)
    assert acc["lifter_int8_ms_per_person_frame"] == 0.14
    assert any("0.280 ms per person-frame at 4 tracks, FP32; 0.140 ms INT8" in ln for ln in lines)
    assert acc["e2e_speedup_vs_demo_reference"] == {}  # no reference row
    demo = make_row("e2e", "mmpose demo (reference, measured elsewhere)", UNIT_FPS, [0.4], reference=True)
    acc = stages.acceptance(rows + [demo])
    assert acc["e2e_speedup"]["cpu-fp32-di1"] == pytest.approx(3.0)  # the acceptance baseline stays the same-run one
    assert acc["e2e_speedup_vs_demo_reference"] == pytest.approx({"cpu-fp32-di1": 6.0, "cpu-fp32-di5": 15.0,
                                                                  "cpu-int8-di5": 32.0})
    assert any("real mmpose demo" in ln and "cpu-fp32-di1 6.00×" in ln for ln in stages.summary_lines(acc, rows))
    # without peers or INT8 rows the figures are None, never invented
    acc = stages.acceptance([r for r in rows if "rtmlib" not in r.key and "int8" not in r.key])
    assert acc["pose2d_vs_rtmlib"] is None and acc["det_int8_vs_fp32_rect"] is None
    assert acc["lifter_int8_ms_per_person_frame"] is None
    assert "cpu-int8-di5" not in acc["e2e_speedup"]


def test_available_configs_leave_out_what_cannot_run(monkeypatch):
    monkeypatch.setattr(stages, "precision_supported", lambda: True)
    monkeypatch.setattr(stages, "openvino_available", lambda: True)
    monkeypatch.setattr(stages, "bf16_available", lambda: True)
    skipped = {}
    names = [c.name for c in stages.available_configs([], False, skipped)]
    assert names == ["cpu-fp32-di1", "cpu-fp32-di5", "cpu-int8-di5", "openvino-fp32-di1", "openvino-fp32-di5",
                     "openvino-int8-di5", "openvino-bf16-di1", "openvino-bf16-di5"] and skipped == {}
    monkeypatch.setattr(stages, "bf16_available", lambda: False)
    assert "openvino-bf16-di1" not in [c.name for c in stages.available_configs([], False, skipped)]
    assert skipped["bf16"] == "this CPU has no BF16 instructions (AVX512-BF16, AMX)"
    skipped = {}
    monkeypatch.setattr(stages, "openvino_available", lambda: False)
    names = [c.name for c in stages.available_configs(["int8"], False, skipped)]
    assert names == ["cpu-fp32-di1", "cpu-fp32-di5"]
    assert skipped["int8"] == "--without int8" and "not installed" in skipped["openvino"]
    skipped = {}
    stages.available_configs([], True, skipped)
    assert "--synthetic" in skipped["int8"]


# -- end to end (synthetic engines) ------------------------------------------------------------------------------

JSON_KEYS = {"det_ms", "pose2d_ms_per_crop", "lifter_ms_per_person_frame", "e2e_fps", "baseline_fps", "speedup"}


def _check_json_report(report):
    assert JSON_KEYS <= set(report)
    for key in JSON_KEYS:
        assert isinstance(report[key], float) and report[key] > 0, key
    assert report["speedup"] == pytest.approx(report["e2e_fps"] / report["baseline_fps"])
    assert set(report["baseline"]) >= {"det_ms", "pose2d_ms_per_crop", "lifter_ms_per_person_frame", "e2e_fps"}
    assert report["baseline"]["e2e_fps"] == report["baseline_fps"]
    assert report["config"]["precision"] == "fp32" and report["config"]["det_interval"] == 2
    env = report["environment"]
    assert {"cpu", "cpu_flags", "cores", "onnxruntime", "threads", "date"} <= set(env)
    assert {"avx2", "avx512f", "avx512_vnni", "avx512_bf16"} <= set(env["cpu_flags"])


def test_bench_json_prints_one_object_with_the_figures(tmp_path, capsys):
    args = _parse("--synthetic", "--json", "--repeats", "1", "--frames", "10", "--video-size", "160x120",
                  "--stage-frames", "2", "--lift-frames", "8", "--det-interval", "2")
    assert bench.cmd_bench(args) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    report = json.loads(out)
    _check_json_report(report)
    rows = [Row(**r) for r in report["rows"]]
    for stage in ("det", "pose2d", "lifter", "e2e"):
        stage_rows = [r for r in rows if r.stage == stage]
        assert [r.key for r in stage_rows] == [f"baseline_{stage}", stage]
        assert stage_rows[0].baseline and stage_rows[0].ratio == 1.0 and stage_rows[1].ratio > 0
    assert report["settings"]["synthetic"] is True and not any(r.reference for r in rows)
    assert not list(tmp_path.iterdir())  # no --out: no files


def test_pose3d_rt_bench_json_stdout_is_only_the_json_object(tmp_path):
    cmd = [sys.executable, "-m", "pose3d_rt.cli.main", "-v", "bench", "--synthetic", "--json", "--repeats", "1",
           "--frames", "6", "--video-size", "96x64", "--stage-frames", "2", "--lift-frames", "8",
           "--det-interval", "2", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=str(Path(__file__).resolve().parent.parent),
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    _check_json_report(json.loads(proc.stdout))
    assert "bench: stage e2e" in proc.stderr  # -v: logs on stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.json", "bench.md"]


def test_cmd_bench_only_some_stages_writes_the_report(tmp_path):
    args = _parse("--synthetic", "--repeats", "2", "--frames", "4", "--video-size", "64x48", "--stages",
                  "pose2d", "--stage-frames", "2", "--out", str(tmp_path))
    assert bench.cmd_bench(args) == 0
    report = json.loads((tmp_path / "bench.json").read_text())
    assert {r["stage"] for r in report["rows"]} == {"pose2d"} and [r["n"] for r in report["rows"]] == [2, 2]
    assert report["e2e_fps"] is None and report["speedup"] is None and report["pose2d_ms_per_crop"] > 0
    md = (tmp_path / "bench.md").read_text()
    assert md.startswith("# Speed: bench") and "(baseline)" in md and "CPU flags:" in md


def test_stages_synthetic_quick_run_has_every_table(tmp_path, monkeypatch):
    monkeypatch.setattr(stages, "openvino_available", lambda: True)  # scripted engines: the device is a label
    assert stages.main(["--synthetic", "--quick", "--frames", "6", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "stages.quick.json").read_text())
    rows = [Row(**r) for r in report["rows"]]
    keys = [r.key for r in rows]
    assert [k for k in keys if k.startswith(("e2e", "baseline_e2e"))] == [
        "baseline_e2e", "e2e:cpu-fp32-di1", "e2e:cpu-fp32-di5", "e2e:openvino-fp32-di1", "e2e:openvino-fp32-di5"]
    assert {"baseline_det", "baseline_pose2d", "pose2d:cpu-fp32", "pose2d:openvino-fp32", "baseline_lifter",
            "lifter:cpu-fp32", "lifter:cpu-fp32-strided", "vis"} <= set(keys)
    for stage in {r.stage for r in rows}:
        bases = [r for r in rows if r.stage == stage and r.baseline]
        assert len(bases) == 1 and bases[0].ratio == 1.0, stage
        assert all(r.ratio is not None and r.ratio > 0 for r in rows if r.stage == stage)
    acc = report["acceptance"]
    assert set(acc["e2e_speedup"]) == {"cpu-fp32-di1", "cpu-fp32-di5", "openvino-fp32-di1", "openvino-fp32-di5"}
    assert acc["e2e_speedup"]["cpu-fp32-di5"] == pytest.approx(
        next(r.ratio for r in rows if r.key == "e2e:cpu-fp32-di5"))
    assert report["not_measured"]["int8"] and report["not_measured"]["rtmlib"]
    assert report["settings"]["quick"] and report["settings"]["frames_per_e2e_run"] == 6
    md = (tmp_path / "stages.quick.md").read_text()
    assert "Summary:" in md and "the baseline (goal ≥ 3×)" in md and "skipped int8" in md


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
