"""The per-stage speed measurements of ``pose3d-rt bench``: one function per stage, each appending its rows
(one baseline row with the mmpose demo's settings, and the variants pose3d-rt runs) to a :class:`StageContext`.

``det``     the detector (letterbox + network + decode + NMS), ms per frame, one frame per call;
``pose2d``  RTMPose, ms per crop: 1/4/8 crops in one network call without flip test (the default mode) against
            the BASELINE of one crop per call with flip test (the mmpose demo's settings);
``lifter``  the lifter, ms per person-frame: the ring-buffer :class:`~pose3d_rt.lifters.streaming.Lifter` (one
            batched call per frame for P tracks) against the BASELINE of a fresh receptive-field window built per
            frame per person and run alone (:class:`~pose3d_rt.lifters.streaming.Lifter` ``mode="mmpose"``, one
            instance per person);
``vis``     ``pose3d_rt.visualize.Visualizer().render(frame, result)``, ms per frame (skipped, with a note, when
            that module is not importable);
``e2e``     frames per second over the whole video: :class:`~pose3d_rt.pipeline.Pose3DPipeline` ``mode="default"``
            against the BASELINE ``mode="mmpose"`` with flip test.

Each variant is measured ``--repeats`` times, the variants of a stage interleaved (so that a change of machine
load hits them alike). Only the per-run numbers are kept, never the pipeline's results.
"""
from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Sequence, Tuple

import numpy as np

from benchmarks.core import (
    UNIT_BATCH,
    UNIT_CROP,
    UNIT_FPS,
    UNIT_FRAME,
    UNIT_PERSON_FRAME,
    Row,
    format_value,
    make_row,
)
from benchmarks.synthetic import person_boxes, synthetic_tracks

log = logging.getLogger(__name__)


def _interleaved(variants: Mapping[str, Callable[[], float]], repeats: int) -> Dict[str, List[float]]:
    """Run each variant ``repeats`` times, variant after variant within a repeat; each call returns its value."""
    samples: Dict[str, List[float]] = {k: [] for k in variants}
    for i in range(repeats):
        for k, fn in variants.items():
            v = fn()
            samples[k].append(v)
            log.debug("run %d %s: %.4g", i, k, v)
    return samples


class _Prefillable:
    """:class:`~pose3d_rt.lifters.LifterModel` that returns zeros while ``off`` (filling a lifter's history or
    ring buffer to its steady state without paying for the network), the real model otherwise."""

    def __init__(self, model: Any) -> None:
        from pose3d_rt.lifters import as_lifter_model

        self.model = as_lifter_model(model)
        self.spec = self.model.spec
        self.off = False

    def infer(self, windows: np.ndarray) -> np.ndarray:
        if self.off:
            sp = self.spec
            frames = windows.shape[1] - sp.receptive_field + 1 if sp.form == "dilated" else sp.output_frames
            return np.zeros((windows.shape[0], frames, 17, 3), np.float32)
        return self.model.infer(windows)


@dataclass
class StageContext:
    """What the stage measurements share: the command's arguments, the engines, the input video and its first
    frames; each measurement appends its rows, and a skipped stage says why."""

    args: argparse.Namespace
    engines: Dict[str, Any]
    video: Path
    frames: List[np.ndarray]  # the first --frames frames of the video (bounded)
    frame_wh: Tuple[int, int]
    rows: List[Row] = field(default_factory=list)
    skipped: Dict[str, str] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)


def _ms(t0: float, items: int) -> float:
    return (time.perf_counter() - t0) * 1000.0 / max(items, 1)


def measure_det(ctx: StageContext) -> None:
    from pose3d_rt.rtmdet.detector import Detector

    det = Detector(ctx.engines["det"])
    frames = ctx.frames
    for _ in range(ctx.args.warmup):
        det(frames[0])

    def run() -> float:
        t0 = time.perf_counter()
        for f in frames:
            det(f)
        return _ms(t0, len(frames))

    s = _interleaved({"det": run}, ctx.args.repeats)
    ctx.rows.append(make_row("det", "preprocess + network + decode/NMS, one frame per call (both modes)",
                             UNIT_FRAME, s["det"], baseline=True, items_per_run=len(frames),
                             note=f"{len(frames)} video frames per run"))


def measure_pose2d(ctx: StageContext) -> None:
    from pose3d_rt.rtmpose.estimator import PoseEstimator

    args, engine = ctx.args, ctx.engines["pose2d"]
    per_frame = max(args.batch_sizes)
    boxes = person_boxes(per_frame, ctx.frame_wh)
    nframes = -(-args.crops // per_frame)
    frames = [ctx.frames[i % len(ctx.frames)] for i in range(nframes)]
    crops = nframes * per_frame
    estimators = {b: PoseEstimator(engine, flip_test=False, max_batch=b) for b in args.batch_sizes}
    baseline = PoseEstimator(engine, flip_test=True)

    def batched(b: int) -> Callable[[], float]:
        est = estimators[b]

        def run() -> float:
            t0 = time.perf_counter()
            for f in frames:
                for s in range(0, per_frame, b):
                    est(f, boxes[s:s + b])
            return _ms(t0, crops)
        return run

    def one_at_a_time() -> float:
        t0 = time.perf_counter()
        for f in frames:
            for i in range(per_frame):
                baseline(f, boxes[i:i + 1])
        return _ms(t0, crops)

    for _ in range(args.warmup):
        baseline(frames[0], boxes[:1])
        for b, est in estimators.items():
            est(frames[0], boxes[:b])
    variants: Dict[str, Callable[[], float]] = {"base": one_at_a_time}
    variants.update({f"b{b}": batched(b) for b in args.batch_sizes})
    s = _interleaved(variants, args.repeats)
    ctx.rows.append(make_row("pose2d", "one crop per call, flip test (mmpose demo settings)", UNIT_CROP, s["base"],
                             baseline=True, items_per_run=crops,
                             note=f"{crops} crops per run; original + flipped crop in one call"))
    for b in args.batch_sizes:
        med = float(np.median(s[f"b{b}"]))
        ctx.rows.append(make_row("pose2d", f"batch of {b} crop{'s' if b > 1 else ''} in one call, no flip "
                                           "(default mode)", UNIT_CROP, s[f"b{b}"], items_per_run=crops,
                                 note=f"{crops} crops per run; {format_value(med * b)} {UNIT_BATCH}"))


# a lifter variant: the lifter(s) it keeps across runs, the track ids each one lifts, the persons per frame
_LifterVariant = Tuple[List[Any], List[Sequence[int]], int]


def _lifter_variants(model: _Prefillable, persons: Sequence[int], wh: Tuple[int, int]) -> Dict[str, _LifterVariant]:
    """Every variant keeps its own lifter(s) across runs: the stream just goes on, in its steady state."""
    from pose3d_rt.lifters import Lifter

    def ring() -> Lifter:
        return Lifter(model, mode="default", keypoint_source="coco", rebase="frame", max_missing=None,
                      frame_size=wh)

    def fresh() -> Lifter:
        return Lifter(model, mode="mmpose", keypoint_source="coco", rebase="frame", frame_size=wh)

    pmax = max(persons)
    setups: Dict[str, _LifterVariant] = {f"ring{p}": ([ring()], [list(range(p))], p) for p in persons}
    setups["fresh_batched"] = ([fresh()], [list(range(pmax))], pmax)
    setups["base"] = ([fresh() for _ in range(pmax)], [[i] for i in range(pmax)], pmax)
    return setups


def _lifter_rows(ctx: StageContext, s: Mapping[str, List[float]], window: int, persons: Sequence[int],
                 nframes: int) -> None:
    pmax = max(persons)
    ctx.rows.append(make_row("lifter", f"fresh {window}-frame window per frame per person, run alone, P={pmax} "
                                       "(mmpose demo equivalent)", UNIT_PERSON_FRAME, s["base"], baseline=True,
                             items_per_run=nframes * pmax,
                             note=f"{nframes} frames x {pmax} persons per run; Lifter(mode='mmpose') per person"))
    for p in persons:
        ctx.rows.append(make_row("lifter", f"ring buffer, one batched call per frame, P={p} (default mode)",
                                 UNIT_PERSON_FRAME, s[f"ring{p}"], items_per_run=nframes * p,
                                 note=f"{nframes} frames x {p} persons per run; exact (delayed) lifting"))
    ctx.rows.append(make_row("lifter", f"fresh {window}-frame window per frame, P={pmax} persons in one call "
                                       "(mmpose mode)", UNIT_PERSON_FRAME, s["fresh_batched"],
                             items_per_run=nframes * pmax, note="what the demo's inference_pose_lifter_model does"))


def measure_lifter(ctx: StageContext) -> None:
    args, wh = ctx.args, ctx.frame_wh
    persons = sorted(set(args.persons))
    pool = 64
    kp, sc, bb = synthetic_tracks(max(persons), pool, wh)
    model = _Prefillable(ctx.engines["lifter"])
    nframes = args.lift_frames
    setups = _lifter_variants(model, persons, wh)
    clock = dict.fromkeys(setups, 0)

    def step(key: str) -> None:
        lifters, groups, _ = setups[key]
        t = clock[key] % pool
        for lifter, g in zip(lifters, groups):
            lifter.update(kp[t, g], g, scores_2d=sc[t, g], bboxes=bb[t, g], frame_size=wh)
        clock[key] += 1

    model.off = True  # fill histories / ring buffers (no network), then warm up
    for key in setups:
        for _ in range(model.spec.window):
            step(key)
    model.off = False
    for key in setups:
        for _ in range(args.warmup):
            step(key)

    def runner(key: str) -> Callable[[], float]:
        def run() -> float:
            t0 = time.perf_counter()
            for _ in range(nframes):
                step(key)
            return _ms(t0, nframes * setups[key][2])
        return run

    _lifter_rows(ctx, _interleaved({k: runner(k) for k in setups}, args.repeats), model.spec.window, persons, nframes)


def measure_vis(ctx: StageContext) -> None:
    try:
        from pose3d_rt.visualize import Visualizer  # written separately; optional here
    except ImportError as exc:
        why = f"pose3d_rt.visualize is not importable ({exc})"
        log.warning("vis stage skipped: %s", why)
        ctx.skipped["vis"] = why
        return
    from pose3d_rt.io.sources import FrameSource
    from pose3d_rt.pipeline import Pose3DPipeline

    frames = ctx.frames
    w, h = ctx.frame_wh
    e = ctx.engines
    pipe = Pose3DPipeline(e["det"], e["pose2d"], e["lifter"], mode="default")
    results = list(pipe.stream(FrameSource.from_frames(iter(frames), w, h, total_frames=len(frames))))
    try:
        vis = Visualizer()
        for _ in range(ctx.args.warmup):
            vis.render(frames[0], results[0])

        def run() -> float:
            t0 = time.perf_counter()
            for f, r in zip(frames, results):
                vis.render(f, r)
            return _ms(t0, len(frames))

        s = _interleaved({"vis": run}, ctx.args.repeats)
    except Exception as exc:  # the module is young: a failure must not cost the other stages
        why = f"Visualizer().render(frame, result) failed: {type(exc).__name__}: {exc}"
        log.warning("vis stage skipped: %s", why)
        ctx.skipped["vis"] = why
        return
    persons = sum(len(r) for r in results) / max(len(results), 1)
    ctx.rows.append(make_row("vis", "Visualizer().render(frame, result)", UNIT_FRAME, s["vis"], baseline=True,
                             items_per_run=len(frames),
                             note=f"{len(frames)} frames per run, {persons:.1f} persons per frame"))


def _limited(video: Path, limit: int):
    from pose3d_rt.io.sources import FrameSource, open_source

    src = open_source(str(video))
    if limit <= 0:
        return src, src
    info = src.info
    total = min(limit, info.total_frames) if info.total_frames else limit
    return FrameSource.from_frames(islice(iter(src), limit), info.width, info.height, info.fps, total), src


def measure_e2e(ctx: StageContext) -> None:
    from pose3d_rt.io.sources import FrameSource
    from pose3d_rt.pipeline import Pose3DPipeline

    args, e = ctx.args, ctx.engines
    pipes = {
        "base": Pose3DPipeline(e["det"], e["pose2d"], e["lifter"], mode="mmpose", flip_test=True),
        "default": Pose3DPipeline(e["det"], e["pose2d"], e["lifter"], mode="default"),
    }
    w, h = ctx.frame_wh
    warm = ctx.frames[:max(1, min(args.warmup, len(ctx.frames)))]
    for pipe in pipes.values():
        if args.warmup:
            for _ in pipe.stream(FrameSource.from_frames(iter(warm), w, h, total_frames=len(warm))):
                pass
    counts: Dict[str, int] = {}

    def runner(key: str) -> Callable[[], float]:
        def run() -> float:
            source, owner = _limited(ctx.video, args.e2e_frames)
            n = 0
            try:
                t0 = time.perf_counter()
                for _ in pipes[key].stream(source):  # results are dropped at once: memory stays bounded
                    n += 1
                dt = time.perf_counter() - t0
            finally:
                owner.close()
            counts[key] = n
            return n / dt if dt > 0 else float("inf")
        return run

    s = _interleaved({k: runner(k) for k in pipes}, args.repeats)
    ctx.rows.append(make_row("e2e", "Pose3DPipeline(mode='mmpose'), flip test (mmpose demo settings)", UNIT_FPS,
                             s["base"], baseline=True, items_per_run=counts.get("base"),
                             note=f"{counts.get('base')} frames per run, decoding included"))
    ctx.rows.append(make_row("e2e", "Pose3DPipeline(mode='default')", UNIT_FPS, s["default"],
                             items_per_run=counts.get("default"),
                             note=f"{counts.get('default')} frames per run, decoding included"))


# stage name -> its measurement, in the order of core.STAGES
STAGE_RUNNERS: Dict[str, Callable[[StageContext], None]] = {
    "det": measure_det, "pose2d": measure_pose2d, "lifter": measure_lifter, "vis": measure_vis, "e2e": measure_e2e}

__all__ = ["StageContext", "STAGE_RUNNERS", "measure_det", "measure_pose2d", "measure_lifter", "measure_vis",
           "measure_e2e"]
