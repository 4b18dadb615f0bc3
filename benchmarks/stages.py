"""``make bench``'s speed tables: the fixture checkpoints (RTMDet-m, RTMPose-m, VideoPose3D-243) on the fixture
video (tests/fixtures/inputs/synthetic_video.avi, 640x384, 64 frames, ~3.5 persons per frame: the video the real
mmpose demo's timing file was measured on), every row measured in ONE process run, medians of repeated runs, and
ratios against the mmpose-demo-equivalent baseline row of each stage measured in the same run.

End to end (FPS over the whole video, decoding included), ratios against the BASELINE ``mode="mmpose"`` (square
letterbox, detection on every frame, flip test, fixed-point crop warp, a fresh 243-frame window per frame and
person; FP32 ONNX Runtime): the default mode detecting every frame (FP32), with ``--det-interval 5`` (FP32), with
``--det-interval 5 --precision int8`` (when the pipeline has INT8), and the same on ``device="openvino"`` (when
the openvino package is installed). The pipelines are built from the .pth checkpoints exactly as ``run`` builds
them (exports and INT8 files cached).

Per stage:

- ``det``: RTMDet-m, ms per frame: square 640x640 vs rect 384x640 letterbox (a ``dynamic_hw`` export run at either
  size; the baseline is the static square export), FP32 and INT8, ONNX Runtime and OpenVINO, and the default
  pipeline's own detector;
- ``pose2d``: RTMPose-m, ms per crop at 4 persons a frame: ONNX Runtime FP32, OpenVINO f32, INT8 (the default
  pipeline's estimator: no flip, one batched call) against the baseline (flip test, fixed-point warp), and the
  PEER rows: rtmlib 0.0.16's ``RTMPose`` on the same RTMPose-m ONNX (exported with ``--batch 1``, the input shape
  rtmlib's own models have) with its onnxruntime and its openvino backends (its defaults), one crop per call;
- ``lifter``: ms per person-frame at 4 tracks: the baseline's windowed strided 243-frame lifter (mmpose mode),
  the default-mode Lifter on the strided export (ring buffer, one window per track and frame) and on the stream
  export (chunk of 8 frames per engine call), per device and precision;
- ``vis``: the visualizer, ms per frame.

Then the network kernels alone, ONNX Runtime vs PyTorch (``kernels.json``/``.md``).

    python -m benchmarks.stages                   # writes benchmarks/results/stages.json and .md
    python -m benchmarks.stages --quick           # 1 run per variant, 16 frames end to end, no kernels table
                                                  # (writes stages.quick.json/.md)
    python -m benchmarks.stages --without openvino,kernels
"""
from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from pose3d_rt.cli.argtypes import nonneg_int, positive_int
from pose3d_rt.hub import Role, lifter_export_options

from benchmarks.bench import FIXTURE_VIDEO, first_frames, stdout_to_stderr, synthetic_models
from benchmarks.core import (
    RESULTS,
    STAGES,
    Row,
    apply_ratios,
    environment,
    format_markdown,
    format_value,
    loadavg,
    markdown_table,
    row_by_key,
    speed_ratio,
    write_report,
)
from benchmarks.measure import (
    Variant,
    crop_inputs,
    det_variant,
    detector_at,
    e2e_variant,
    is_dynamic_hw,
    lifter_variant,
    make_lifter,
    measure,
    pose2d_variant,
    rect_hw,
    rtmlib_pose,
    rtmlib_variant,
    vis_variant,
)
from benchmarks.pipelines import (
    Config,
    Models,
    Pipelines,
    bf16_available,
    openvino_available,
    precision_supported,
    rtmlib_available,
)
from benchmarks.reference import REPO_REFERENCE, reference_info, reference_rows

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
VIDEO = FIXTURE_VIDEO
CHECKPOINTS = {"det": "rtmdet_m_person", "pose2d": "rtmpose_m_body8_256x192", "lifter": "videopose3d_243f_supv_cpn_ft"}
# the end-to-end rows, in table order (those needing INT8 or OpenVINO only when available)
E2E_CONFIGS = (Config("cpu", "fp32", 1), Config("cpu", "fp32", 5), Config("cpu", "int8", 5),
               Config("openvino", "fp32", 1), Config("openvino", "fp32", 5), Config("openvino", "int8", 5),
               Config("openvino", "bf16", 1), Config("openvino", "bf16", 5))
# acceptance goals of issue 10 (end-to-end speed-up over the baseline; our 2D stage over rtmlib's fastest)
GOALS = {"cpu-fp32-di1": 3.0, "cpu-fp32-di5": 7.0, "cpu-int8-di5": 15.0, "pose2d_vs_rtmlib": 1.5}
OPTIONAL = ("int8", "openvino", "bf16", "rtmlib", "kernels")
DEFAULTS = dict(repeats=3, warmup=1, frames=0, stage_frames=4, lift_frames=32, persons=4)
QUICK = dict(repeats=1, warmup=1, frames=16, stage_frames=2, lift_frames=16, persons=4)

log = logging.getLogger("benchmarks.stages")


# ---------------------------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------------------------


def checkpoint_dir() -> Path:
    return Path(os.environ.get("POSE3D_RT_TEST_CACHE", REPO / ".cache" / "tests")) / "checkpoints"


def _recipe_digest(model: str) -> str:
    """sha256 of what a fixture checkpoint is rebuilt from (as tests/conftest.py stamps its cache)."""
    import hashlib

    h = hashlib.sha256()
    for p in (FIXTURES / "build_checkpoint.py", *sorted((FIXTURES / "weights").glob(f"{model}.*"))):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def build_checkpoints(names: Sequence[str], out: Path) -> Dict[str, Path]:
    """``{name: .pth}``, rebuilt bit-exactly from the fixture recipe when missing or stale (needs torch); the
    cache and its stamps are the tests' (tests/conftest.py)."""

    def stale(n: str) -> bool:
        stamp = out / f"{n}.recipe-sha256"
        return not (out / f"{n}.pth").is_file() or not stamp.is_file() or stamp.read_text() != _recipe_digest(n)

    missing = [n for n in names if stale(n)]
    if missing:
        out.mkdir(parents=True, exist_ok=True)
        log.info("rebuilding fixture checkpoints %s into %s", ", ".join(missing), out)
        subprocess.run([sys.executable, str(FIXTURES / "build_checkpoint.py"), *missing, "--out", str(out)],
                       check=True, cwd=str(FIXTURES), stdout=sys.stderr)
        for n in missing:
            (out / f"{n}.recipe-sha256").write_text(_recipe_digest(n))
    return {n: out / f"{n}.pth" for n in names}


@dataclass
class StageModels:
    """The models of the stage tables: the checkpoints the pipelines are built from (as ``run`` would), and the
    explicit exports of the per-stage rows (None: that row is skipped)."""

    pipelines: Models
    det_square: Any = None  # static 640x640 export (the baseline's)
    det_dynamic: Any = None  # dynamic_hw export: square and rect inputs
    pose2d: Any = None  # the dynamic-batch export (ours)
    pose2d_batch1: Any = None  # --batch 1 export, for rtmlib
    lifter_strided: Any = None
    lifter_stream: Any = None


def fixture_models() -> StageModels:
    """The fixture checkpoints, and their exports (cached by sha256 under ``$POSE3D_RT_HOME``)."""
    from pose3d_rt.hub import export_cached
    from pose3d_rt.hub.cache import detector_export_options

    ck = build_checkpoints(list(CHECKPOINTS.values()), checkpoint_dir())
    det, pose, lift = (ck[CHECKPOINTS[k]] for k in ("det", "pose2d", "lifter"))
    return StageModels(
        pipelines=Models(det, pose, lift),
        det_square=export_cached(det, Role.DETECTOR, detector_export_options("mmpose")),
        det_dynamic=export_cached(det, Role.DETECTOR, detector_export_options("default")),
        pose2d=export_cached(pose, Role.POSE2D), pose2d_batch1=export_cached(pose, Role.POSE2D, {"batch": 1}),
        lifter_strided=export_cached(lift, Role.LIFTER, lifter_export_options(mode="mmpose")),
        lifter_stream=export_cached(lift, Role.LIFTER, lifter_export_options(mode="default")))


def _load(model: Any, device: str, threads: Optional[int]) -> Any:
    """An Engine for an exported file (an Engine as is)."""
    from pose3d_rt.engines import load_engine

    return model if hasattr(model, "run") else load_engine(str(model), device=device, threads=threads)


# ---------------------------------------------------------------------------------------------------------------
# the plan
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """What one ``stages`` run measures."""

    args: argparse.Namespace
    models: StageModels
    pipes: Pipelines
    video: Path
    frames: List[Any]
    configs: List[Config]
    skipped: Dict[str, str]

    @property
    def wh(self):
        h, w = self.frames[0].shape[:2]
        return w, h

    def engine_sets(self) -> List[Config]:
        """One configuration per (device, precision) of the end-to-end rows."""
        seen: Dict[tuple, Config] = {}
        for c in self.configs:
            seen.setdefault((c.device, c.precision), Config(c.device, c.precision, 1))
        return list(seen.values())


def available_configs(without: Sequence[str], synthetic: bool, skipped: Dict[str, str]) -> List[Config]:
    """The end-to-end configurations this machine and this pose3d-rt can run."""
    out = []
    for c in E2E_CONFIGS:
        if c.precision == "int8" and ("int8" in without or synthetic or not precision_supported()):
            why = ("--without int8" if "int8" in without else "needs model files (--synthetic)" if synthetic
                   else "not available yet: Pose3DPipeline has no precision option")
            skipped.setdefault("int8", why)
            continue
        if c.device.startswith("openvino") and ("openvino" in without or not openvino_available()):
            skipped.setdefault("openvino", "--without openvino" if "openvino" in without
                               else "the openvino package is not installed (extra [openvino])")
            continue
        if c.precision == "bf16" and ("bf16" in without or synthetic or not bf16_available()):
            skipped.setdefault("bf16", "--without bf16" if "bf16" in without else "needs model files (--synthetic)"
                               if synthetic else "this CPU has no BF16 instructions (AVX512-BF16, AMX)")
            continue
        out.append(c)
    return out


def det_variants(plan: Plan) -> List[Variant]:
    frames, m, threads = plan.frames[: plan.args.stage_frames], plan.models, plan.args.threads
    rect = "x".join(map(str, rect_hw(frames[0].shape[:2])))
    out = [det_variant("baseline_det", "baseline: static 640x640 export, square letterbox, FP32 ONNX Runtime "
                       "(mmpose mode)", plan.pipes.baseline().detector, frames, baseline=True)]
    for c in plan.engine_sets():
        if c.precision == "fp32":
            if m.det_dynamic is None:
                plan.skipped.setdefault("det square vs rect", "no dynamic_hw export (--synthetic)")
                continue
            engine = _load(m.det_dynamic, c.device, threads)
        else:
            engine = plan.pipes.engines(c)[0]
        for letterbox in (("square", "rect") if is_dynamic_hw(engine) else ("square",)):
            shape = "640x640 square" if letterbox == "square" else f"{rect} rect"
            out.append(det_variant(f"det:{c.device}-{c.precision}-{letterbox}",
                                   f"RTMDet {shape}, {c.precision.upper()} {c.backend}", detector_at(engine, letterbox),
                                   frames, note="dynamic_hw export" if is_dynamic_hw(engine) else "static export"))
    if plan.configs:
        c = plan.configs[0]
        det = plan.pipes.config(c).detector
        out.append(det_variant(f"det:{c.name}-pipeline", f"the default pipeline's detector ({c.label})", det,
                               frames, note=f"{getattr(det, 'letterbox', '?')} letterbox"))
    return out


def pose2d_variants(plan: Plan) -> List[Variant]:
    args, m = plan.args, plan.models
    frames, boxes = crop_inputs(plan.frames[: args.stage_frames], args.persons)
    out = [pose2d_variant("baseline_pose2d", "baseline: flip test, fixed-point warp, FP32 ONNX Runtime (mmpose mode)",
                          plan.pipes.baseline().pose2d, frames, boxes, baseline=True)]
    for c in plan.engine_sets():
        out.append(pose2d_variant(f"pose2d:{c.device}-{c.precision}", f"ours: default mode, no flip, one batched "
                                  f"call, {c.precision.upper()} {c.backend}", plan.pipes.config(c).pose2d, frames, boxes))
    if "rtmlib" in args.without or not rtmlib_available() or m.pose2d_batch1 is None:
        plan.skipped["rtmlib"] = ("--without rtmlib" if "rtmlib" in args.without else "rtmlib is not installed "
                                  "(dev extra)" if not rtmlib_available() else "needs an ONNX file (--synthetic)")
        return out
    for backend in ("onnxruntime", "openvino"):
        if backend == "openvino" and not openvino_available():
            continue
        model = rtmlib_pose(str(m.pose2d_batch1), backend)
        out.append(rtmlib_variant(f"pose2d:rtmlib-{backend}", f"peer: rtmlib RTMPose, {backend} backend "
                                  "(its defaults), one crop per call", model, frames, boxes,
                                  note="same RTMPose-m ONNX, --batch 1 export"))
    return out


def lifter_variants(plan: Plan) -> List[Variant]:
    args, wh, m = plan.args, plan.wh, plan.models
    base = plan.pipes.baseline()

    def var(key: str, label: str, engine: Any, mode: str, baseline: bool = False, note: str = "") -> Variant:
        lifter = make_lifter(engine, mode, wh)
        stream = getattr(lifter, "_stream", None)
        note = "; ".join(x for x in (note, stream and f"chunk of {stream.chunk} frames per engine call") if x)
        return lifter_variant(key, label, lifter, args.persons, args.lift_frames, wh, baseline=baseline, note=note)

    out = [var("baseline_lifter", "baseline: windowed strided 243, a fresh window per frame, all tracks in one call "
               "(mmpose mode)", base.lifter_engine, "mmpose", baseline=True)]
    strided = base.lifter_engine if m.lifter_strided is None else _load(m.lifter_strided, "cpu", args.threads)
    out.append(var("lifter:cpu-fp32-strided", "default-mode Lifter on the strided export (ring buffer, one window "
                   "per track and frame), FP32 ONNX Runtime", strided, "default"))
    seen = set()
    for c in plan.engine_sets():
        engine = plan.pipes.engines(c)[2]
        if (c.device, str(getattr(engine, "path", id(engine)))) in seen:
            continue  # one row per lifter file and device (INT8 pipelines have their dynamic INT8 lifter)
        seen.add((c.device, str(getattr(engine, "path", id(engine)))))
        form = (getattr(engine, "metadata", None) or {}).get("form", "?")
        out.append(var(f"lifter:{c.device}-{c.precision}", f"default-mode Lifter as the pipeline runs it "
                       f"({form} form), {c.precision.upper()} {c.backend}", engine, "default"))
    return out


def e2e_variants(plan: Plan) -> List[Variant]:
    args, warm = plan.args, plan.frames[:1]
    out = [e2e_variant("baseline_e2e", "baseline: Pose3DPipeline(mode='mmpose'), mmpose demo settings, FP32 ONNX "
                       "Runtime", plan.pipes.baseline(), plan.video, args.frames, warm, baseline=True)]
    for c in plan.configs:
        out.append(e2e_variant(f"e2e:{c.name}", c.label, plan.pipes.config(c), plan.video, args.frames, warm))
    return out


def vis_variants(plan: Plan) -> List[Variant]:
    from pose3d_rt.io.sources import FrameSource

    frames = plan.frames[: plan.args.stage_frames]
    h, w = frames[0].shape[:2]
    pipe = plan.pipes.config(plan.configs[0]) if plan.configs else plan.pipes.baseline()
    try:
        results = list(pipe.stream(FrameSource.from_frames(iter(frames), w, h, total_frames=len(frames))))
        return [vis_variant("vis", frames, results)]
    except ImportError as exc:
        plan.skipped["vis"] = f"pose3d_rt.visualize is not importable ({exc})"
        return []


STAGE_PLANS = {"det": det_variants, "pose2d": pose2d_variants, "lifter": lifter_variants, "vis": vis_variants,
               "e2e": e2e_variants}


# ---------------------------------------------------------------------------------------------------------------
# summary
# ---------------------------------------------------------------------------------------------------------------


def _fastest(rows: Sequence[Row], prefix: str) -> Optional[Row]:
    cands = [r for r in rows if r.key.startswith(prefix)]
    return min(cands, key=lambda r: r.median) if cands else None


def acceptance(rows: Sequence[Row]) -> Dict[str, Any]:
    """The figures the issue's acceptance reads, with their goals: the end-to-end speed-up of each configuration
    over the baseline, and our fastest 2D stage over rtmlib's fastest backend, per crop."""
    out: Dict[str, Any] = {"e2e_speedup": {}, "e2e_persons_per_frame": {}, "goals": dict(GOALS)}
    base = row_by_key(rows, "baseline_e2e")
    if base is not None:
        out["e2e_persons_per_frame"]["baseline"] = base.info.get("persons_per_frame")
    demo = next((r for r in rows if r.stage == "e2e" and r.reference), None)
    out["e2e_speedup_vs_demo_reference"] = {}
    for r in rows:
        if r.key.startswith("e2e:"):
            out["e2e_speedup"][r.key[4:]] = speed_ratio(r, base)
            out["e2e_persons_per_frame"][r.key[4:]] = r.info.get("persons_per_frame")
            if demo is not None:
                out["e2e_speedup_vs_demo_reference"][r.key[4:]] = speed_ratio(r, demo)
    ours = next((r for r in sorted((r for r in rows if r.key.startswith("pose2d:") and "rtmlib" not in r.key),
                                   key=lambda r: r.median)), None)
    peer = _fastest(rows, "pose2d:rtmlib-")
    out["pose2d_ours_fastest"] = None if ours is None else ours.key
    out["pose2d_rtmlib_fastest"] = None if peer is None else peer.key
    out["pose2d_vs_rtmlib"] = speed_ratio(ours, peer)
    for a, b, name in (("det:cpu-fp32-rect", "det:cpu-fp32-square", "det_rect_vs_square"),
                       ("det:cpu-int8-rect", "det:cpu-fp32-rect", "det_int8_vs_fp32_rect"),
                       ("lifter:cpu-fp32", "baseline_lifter", "lifter_stream_vs_baseline")):
        out[name] = speed_ratio(row_by_key(rows, a), row_by_key(rows, b))
    stream = row_by_key(rows, "lifter:cpu-fp32")
    out["lifter_ms_per_person_frame"] = None if stream is None else stream.median
    stream8 = row_by_key(rows, "lifter:cpu-int8")
    out["lifter_int8_ms_per_person_frame"] = None if stream8 is None else stream8.median
    return out


def summary_lines(acc: Dict[str, Any], rows: Sequence[Row]) -> List[str]:
    def x(v: Optional[float]) -> str:
        return "—" if v is None else f"{v:.2f}×"

    lines = []
    base = row_by_key(rows, "baseline_e2e")
    base_ppf = None if base is None else base.info.get("persons_per_frame")
    for name, ratio in acc["e2e_speedup"].items():
        goal = GOALS.get(name)
        row = row_by_key(rows, f"e2e:{name}")
        ppf = None if row is None else row.info.get("persons_per_frame")
        seen = "" if ppf is None or base_ppf is None else f", {ppf:.2f} persons per frame vs the baseline's {base_ppf:.2f}"
        lines.append(f"end to end, {row.variant if row else name}: {x(ratio)} the baseline"
                     + (f" (goal ≥ {goal:g}×)" if goal else "") + seen)
    vs_demo = acc.get("e2e_speedup_vs_demo_reference") or {}
    if vs_demo:
        lines.append("against the real mmpose demo's own timing (reference row: PyTorch, another run, not the "
                     "acceptance baseline): " + ", ".join(f"{k} {x(v)}" for k, v in vs_demo.items()))
    if acc["pose2d_vs_rtmlib"] is not None:
        lines.append(f"2D stage per crop at 4 persons, our fastest ({acc['pose2d_ours_fastest']}) vs rtmlib's "
                     f"fastest ({acc['pose2d_rtmlib_fastest']}): {x(acc['pose2d_vs_rtmlib'])} (goal ≥ 1.5×)")
    for key, what in (("det_rect_vs_square", "RTMDet rect 384x640 vs square 640x640 (FP32 ONNX Runtime)"),
                      ("det_int8_vs_fp32_rect", "RTMDet INT8 vs FP32 (rect, ONNX Runtime)"),
                      ("lifter_stream_vs_baseline", "lifter, stream form vs the baseline's windows")):
        if acc.get(key) is not None:
            lines.append(f"{what}: {x(acc[key])}")
    if acc.get("lifter_ms_per_person_frame") is not None:
        int8 = acc.get("lifter_int8_ms_per_person_frame")
        lines.append(f"stream lifter: {format_value(acc['lifter_ms_per_person_frame'])} ms per person-frame at 4 "
                     "tracks, FP32" + ("" if int8 is None else f"; {format_value(int8)} ms INT8 (dynamic)")
                     + " (target ≤ 0.3 ms)")
    return lines


# ---------------------------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.stages", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 run per variant, 16 frames end to end, small stage "
                    "runs, no kernels table (a smoke run; figures are not stable)")
    ap.add_argument("--without", type=lambda t: [v.strip() for v in t.split(",") if v.strip()], default=[],
                    help=f"comma list of optional parts to leave out: {','.join(OPTIONAL)}")
    ap.add_argument("--synthetic", action="store_true", help="scripted engines instead of the fixture models")
    ap.add_argument("--input", default=str(VIDEO), help="video (default: the fixture video)")
    ap.add_argument("--repeats", type=positive_int, default=None, help=f"runs per variant ({DEFAULTS['repeats']})")
    ap.add_argument("--warmup", type=nonneg_int, default=None, help="untimed warm-up runs per variant (1)")
    ap.add_argument("--frames", type=nonneg_int, default=None, help="frames per end-to-end run, 0 = all (0)")
    ap.add_argument("--stage-frames", type=positive_int, default=None, help="frames per det/pose2d/vis run (4)")
    ap.add_argument("--lift-frames", type=positive_int, default=None, help="frames per lifter run (16)")
    ap.add_argument("--persons", type=positive_int, default=None, help="persons of the 2D and lifter stages (4)")
    ap.add_argument("--threads", type=positive_int, default=None, help="CPU threads per model (backend default)")
    ap.add_argument("--stages", default=",".join(STAGES), help=f"comma list of {','.join(STAGES)}")
    ap.add_argument("--out", default=str(RESULTS), help="results folder (benchmarks/results)")
    ap.add_argument("--name", default=None, help="file stem (stages; stages.quick with --quick)")
    return ap


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    ap = _parser()
    args = ap.parse_args(list(argv) if argv is not None else None)
    for k, v in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    bad = sorted(set(args.without) - set(OPTIONAL))
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    if bad or not stages or set(stages) - set(STAGES):
        ap.error(f"--without takes {','.join(OPTIONAL)}; --stages takes {','.join(STAGES)}")
    args.stages = stages
    if args.name is None:  # a smoke run never overwrites the real results
        args.name = "stages.quick" if args.quick else "stages"
    return args


def run_stages(args: argparse.Namespace, models: StageModels) -> Dict[str, Any]:
    """Measure every table of the module docstring; return the report."""
    env = environment(args.threads, "cpu, openvino")
    skipped: Dict[str, str] = {}
    configs = available_configs(args.without, args.synthetic, skipped)
    video = Path(args.input)
    frames, info = first_frames(video, max(args.stage_frames, 1))
    plan = Plan(args, models, Pipelines(models.pipelines, args.threads, calibration=str(video)), video, frames, configs, skipped)
    variants: List[Variant] = []
    for stage in STAGES:
        if stage in args.stages:
            variants += STAGE_PLANS[stage](plan)
    rows = measure(variants, args.repeats, args.warmup)
    if not args.synthetic and REPO_REFERENCE.is_file() and video.resolve() == VIDEO.resolve():
        rows += reference_rows(REPO_REFERENCE, "video_default", args.stages)
    order = {s: i for i, s in enumerate(STAGES)}
    rows.sort(key=lambda r: (order[r.stage], not r.baseline, r.reference))
    apply_ratios(rows)
    acc = acceptance(rows)
    env["loadavg_end"] = loadavg()
    notes = [f"skipped {what}: {why}" for what, why in skipped.items()]
    ref = reference_info(REPO_REFERENCE, "video_default") if any(r.reference for r in rows) else None
    if ref:
        notes.append(f"reference: {ref}")
    settings = {"input": str(video), "frames_in_video": info.total_frames, "frame_size": [info.width, info.height],
                "frames_per_e2e_run": args.frames or info.total_frames, "repeats": args.repeats,
                "warmup": args.warmup, "persons": args.persons, "stage_frames": args.stage_frames,
                "lift_frames": args.lift_frames, "synthetic": bool(args.synthetic), "quick": bool(args.quick),
                "configs": [c.name for c in configs],
                "models": {k: str(getattr(v, "path", v)) for k, v in vars(models).items()
                           if v is not None and k != "pipelines"}}
    return {"name": args.name, "environment": env, "settings": settings, "acceptance": acc,
            "summary_lines": summary_lines(acc, rows), "rows": [r.to_dict() for r in rows],
            "not_measured": skipped, "notes": notes}


def kernels(ckpts: Dict[str, Path], onnx: Dict[str, Path], out: Path, repeats: int = 5, crops: int = 8,
            tracks: int = 4) -> str:
    """Network-only time, same inputs, same process: ONNX Runtime (what pose3d-rt runs) vs PyTorch's CPU kernels
    (what mmdet/mmpose run; 2 threads as in the reference demo). Writes kernels.json/.md; returns the Markdown."""
    import numpy as np
    import torch
    from pose3d_rt.engines import load_engine
    from pose3d_rt.export.torch_engine import TorchEngine

    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    cases = {  # network: (input shape, note)
        "det": ((1, 3, 640, 640), "RTMDet-m, one 640x640 frame"),
        "pose2d": ((2 * crops, 3, 256, 192), f"RTMPose-m, {crops} crops + their flips in one call"),
        "lifter": ((tracks, 243, 17, 2), f"TCN-243 strided, {tracks} windows in one call"),
    }
    rows = []
    for key, (shape, note) in cases.items():
        x = rng.standard_normal(shape).astype(np.float32)
        times = {}
        for backend, engine in (("onnxruntime", load_engine(str(onnx[key]))),
                                ("pytorch", TorchEngine.from_checkpoint(ckpts[key]))):
            name = engine.inputs[0].name
            engine.run({name: x})  # warm-up
            ts = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                engine.run({name: x})
                ts.append((time.perf_counter() - t0) * 1000)
            times[backend] = float(np.median(ts))
        rows.append({"network": key, "case": note, "onnxruntime_ms": times["onnxruntime"],
                     "pytorch_ms": times["pytorch"], "speedup": times["pytorch"] / times["onnxruntime"]})
    md = ["# Network kernels: ONNX Runtime vs PyTorch, same inputs, same process (CPU)", "",
          f"Median of {repeats} calls after one warm-up; PyTorch {torch.__version__} with 2 threads (as the reference "
          "demo), ONNX Runtime with its default threads. Fixture checkpoints (random weights; speed does not depend "
          "on the values).", "", "| network | case | ONNX Runtime ms | PyTorch ms | speed-up |", "|---|---|---:|---:|---:|"]
    md += [f"| {r['network']} | {r['case']} | {r['onnxruntime_ms']:.1f} | {r['pytorch_ms']:.1f} | {r['speedup']:.2f}x |"
           for r in rows]
    text = "\n".join(md) + "\n"
    write_report(out, "kernels", {"rows": rows, "repeats": repeats}, text)
    return text


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    with stdout_to_stderr():  # exporters and peers print; stdout stays clean
        models = StageModels(synthetic_models()) if args.synthetic else fixture_models()
        report = run_stages(args, models)
    report["settings"]["seconds"] = round(time.perf_counter() - t0, 1)
    jpath, mpath = write_report(args.out, args.name, report, format_markdown(report))
    log.warning("%s\n\n%s", "\n".join(report["summary_lines"]), markdown_table([Row(**r) for r in report["rows"]]))
    log.warning("wrote %s and %s (%.0f s)", jpath, mpath, report["settings"]["seconds"])
    if not (args.quick or args.synthetic or "kernels" in args.without):
        m = models.pipelines
        onnx = {"det": models.det_square, "pose2d": models.pose2d, "lifter": models.lifter_strided}
        log.warning("%s", kernels({"det": m.det, "pose2d": m.pose2d, "lifter": m.lifter}, onnx, Path(args.out)))
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.exit(main())
