"""The timed measurements of the benchmarks: a :class:`Variant` is one thing to time (a detector on video frames,
a 2D estimator on the crops of a frame, a lifter over tracks, a whole pipeline over a video); :func:`measure` runs
the variants of each stage interleaved, run after run, and turns their per-run values into rows
(:mod:`benchmarks.core`).

Factories, one per stage (each returns a :class:`Variant`; what it times is said in its docstring):

``det_variant``      ms per frame: a :class:`~pose3d_rt.rtmdet.detector.Detector` (letterbox + network + decode
                     + NMS), one frame per call; :func:`detector_at` runs a ``dynamic_hw`` export at a chosen
                     input size (square 640x640 or the "rect" 384x640 of a 16:9 frame);
``pose2d_variant``   ms per crop: a :class:`~pose3d_rt.rtmpose.estimator.PoseEstimator` on ``P`` person boxes per
                     frame (crops, network, SimCC decoding; flips too when its flip test is on);
``rtmlib_variant``   ms per crop: the peer rtmlib's ``RTMPose`` on the same boxes (one crop per network call);
``lifter_variant``   ms per person-frame: a :class:`~pose3d_rt.lifters.streaming.Lifter` fed ``P`` synthetic
                     tracks frame after frame, in its steady state (the lifter keeps its history across runs);
``e2e_variant``      FPS: a :class:`~pose3d_rt.pipeline.Pose3DPipeline` over (the first frames of) a video,
                     decoding included, results dropped at once (memory stays bounded);
``vis_variant``      ms per frame: ``Visualizer().render(frame, result)``.

Only the per-run numbers are kept, never the results.
"""
from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from benchmarks.core import (
    UNIT_CROP,
    UNIT_FPS,
    UNIT_FRAME,
    UNIT_PERSON_FRAME,
    Row,
    make_row,
)
from benchmarks.synthetic import person_boxes, synthetic_tracks

log = logging.getLogger(__name__)

RUNTIME_INPUT = 640  # RTMDet's square input side; rect inputs keep the long side at this size


@dataclass
class Variant:
    """One timed variant: ``run()`` does one timed run and returns its value in ``unit`` (ms per item, or FPS);
    ``warmup()`` is called (untimed) before the first run."""

    stage: str
    label: str
    unit: str
    run: Callable[[], float]
    items: int
    key: str = ""
    baseline: bool = False
    note: str = ""
    warmup: Optional[Callable[[], None]] = None
    note_after: Optional[Callable[[], str]] = None  # a note known only after the runs (e.g. persons per frame)
    info_after: Optional[Callable[[], Dict[str, Any]]] = None  # figures known only after the runs


def _ms(t0: float, items: int) -> float:
    return (time.perf_counter() - t0) * 1000.0 / max(items, 1)


def measure(variants: Sequence[Variant], repeats: int, warmup: int = 1) -> List[Row]:
    """Time every variant ``repeats`` times; the variants of a stage run interleaved (repeat ``i`` of each
    before repeat ``i + 1`` of any), so that a change of machine load hits them alike. ``warmup`` untimed calls of
    each variant's ``warmup`` (or ``run``) first. Returns one row per variant, in the given order."""
    stages: Dict[str, List[Variant]] = {}
    for v in variants:
        stages.setdefault(v.stage, []).append(v)
    samples: Dict[int, List[float]] = {id(v): [] for v in variants}
    for stage, group in stages.items():
        log.info("bench: stage %s, %d variant(s) x %d run(s)", stage, len(group), repeats)
        t0 = time.perf_counter()
        for v in group:
            for _ in range(warmup):
                (v.warmup or v.run)()
        for i in range(repeats):
            for v in group:
                value = v.run()
                samples[id(v)].append(value)
                log.debug("run %d %s: %.4g %s", i, v.label, value, v.unit)
        log.info("bench: stage %s done in %.1f s", stage, time.perf_counter() - t0)
    rows = []
    for v in variants:
        note = v.note
        if v.note_after is not None:
            note = "; ".join(x for x in (note, v.note_after()) if x)
        rows.append(make_row(v.stage, v.label, v.unit, samples[id(v)], baseline=v.baseline, items_per_run=v.items,
                             note=note, key=v.key, info=v.info_after() if v.info_after else None))
    return rows


# ---------------------------------------------------------------------------------------------------------------
# detector
# ---------------------------------------------------------------------------------------------------------------


def rect_hw(frame_hw: Tuple[int, int], size: int = RUNTIME_INPUT, multiple: int = 32) -> Tuple[int, int]:
    """The "rect" letterbox of a frame: the keep-ratio resize into ``size`` x ``size``, padded to the next
    multiple of ``multiple`` instead of the square (640x384 -> (384, 640); 1920x1080 -> (384, 640))."""
    h, w = (int(v) for v in frame_hw)
    f = min(size / h, size / w)
    return (min(size, math.ceil(int(h * f + 0.5) / multiple) * multiple),
            min(size, math.ceil(int(w * f + 0.5) / multiple) * multiple))


def is_dynamic_hw(engine: Any) -> bool:
    """True for an RTMDet export that takes any H x W (``pose3d-rt export --dynamic-hw``)."""
    from pose3d_rt.engines.base import static_dim

    inputs = list(getattr(engine, "inputs", ()))
    return bool(inputs) and len(inputs[0].shape) == 4 and all(static_dim(d) is None for d in inputs[0].shape[2:])


def detector_at(engine: Any, letterbox: Optional[str] = None) -> Any:
    """A :class:`~pose3d_rt.rtmdet.detector.Detector` on ``engine`` with the ``"square"`` or ``"rect"``
    letterbox (a ``dynamic_hw`` export runs either; None = the Detector's choice)."""
    from pose3d_rt.rtmdet.detector import Detector

    return Detector(engine) if letterbox is None else Detector(engine, letterbox=letterbox)


def det_variant(key: str, label: str, detector: Callable[[np.ndarray], Any], frames: Sequence[np.ndarray], *,
                baseline: bool = False, note: str = "") -> Variant:
    """ms per frame of ``detector(frame)`` over ``frames``, one frame per call."""
    frames = list(frames)

    def run() -> float:
        t0 = time.perf_counter()
        for f in frames:
            detector(f)
        return _ms(t0, len(frames))

    return Variant("det", label, UNIT_FRAME, run, len(frames), key=key, baseline=baseline,
                   note="; ".join(x for x in (f"{len(frames)} frames per run", note) if x),
                   warmup=lambda: detector(frames[0]))


# ---------------------------------------------------------------------------------------------------------------
# 2D pose
# ---------------------------------------------------------------------------------------------------------------


def crop_inputs(frames: Sequence[np.ndarray], persons: int) -> Tuple[List[np.ndarray], np.ndarray]:
    """The frames of the 2D stage and ``persons`` person boxes spread over each (the same boxes on every frame)."""
    h, w = frames[0].shape[:2]
    return list(frames), person_boxes(persons, (w, h))


def pose2d_variant(key: str, label: str, estimator: Callable[[np.ndarray, np.ndarray], Any],
                   frames: Sequence[np.ndarray], boxes: np.ndarray, *, baseline: bool = False,
                   note: str = "") -> Variant:
    """ms per crop of ``estimator(frame, boxes)`` (all boxes of a frame in one call of the estimator)."""
    frames = list(frames)
    crops = len(frames) * len(boxes)

    def run() -> float:
        t0 = time.perf_counter()
        for f in frames:
            estimator(f, boxes)
        return _ms(t0, crops)

    return Variant("pose2d", label, UNIT_CROP, run, crops, key=key, baseline=baseline,
                   note="; ".join(x for x in (f"{len(boxes)} persons x {len(frames)} frames per run", note) if x),
                   warmup=lambda: estimator(frames[0], boxes))


@contextlib.contextmanager
def _stdout_to_stderr():
    """rtmlib prints to stdout when it loads a model; stdout may carry a JSON report."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def rtmlib_pose(onnx_path: str, backend: str, input_wh: Tuple[int, int] = (192, 256)) -> Any:
    """rtmlib's ``RTMPose`` (its own crops, normalisation and decoding, one crop per network call) on
    ``onnx_path`` with rtmlib's ``backend`` (``onnxruntime`` or ``openvino``) and its defaults (device cpu;
    ONNX Runtime's default threads; OpenVINO's LATENCY hint, no precision hint)."""
    from rtmlib import RTMPose

    with _stdout_to_stderr():
        return RTMPose(str(onnx_path), model_input_size=tuple(input_wh), backend=backend, device="cpu")


def rtmlib_variant(key: str, label: str, model: Any, frames: Sequence[np.ndarray], boxes: np.ndarray, *,
                   note: str = "") -> Variant:
    """ms per crop of rtmlib's ``model(frame, bboxes)`` (it loops over the boxes, one network call each)."""
    box_list = [list(map(float, b)) for b in boxes]
    return pose2d_variant(key, label, lambda f, _b: model(f, bboxes=box_list), frames, boxes, note=note)


# ---------------------------------------------------------------------------------------------------------------
# lifter
# ---------------------------------------------------------------------------------------------------------------


def make_lifter(engine: Any, mode: str, frame_wh: Tuple[int, int]) -> Any:
    """The :class:`~pose3d_rt.lifters.streaming.Lifter` a pipeline of ``mode`` builds around ``engine`` (COCO 2D
    input, per-frame rebase; tracks are never ended automatically)."""
    from pose3d_rt.lifters import Lifter

    if mode == "mmpose":
        return Lifter(engine, mode="mmpose", keypoint_source="coco", rebase="frame", frame_size=frame_wh)
    return Lifter(engine, mode="default", keypoint_source="coco", rebase="frame", max_missing=None,
                  frame_size=frame_wh)


def lifter_variant(key: str, label: str, lifter: Any, persons: int, frames_per_run: int,
                   frame_wh: Tuple[int, int], *, baseline: bool = False, note: str = "") -> Variant:
    """ms per person-frame of ``lifter.update`` with ``persons`` synthetic tracks, ``frames_per_run`` frames per
    run. The lifter keeps its state across runs (the stream just goes on): runs after the warm-up run are in the
    steady state (a stream-form lifter calls its engine once per chunk of frames: keep ``frames_per_run`` a
    multiple of the chunk). The warm-up goes past the lifter's delay first."""
    pool = 64
    kp, sc, bb = synthetic_tracks(persons, pool, frame_wh)
    ids = np.arange(persons)
    clock = [0]

    def frames(n: int) -> None:
        for _ in range(n):
            t = clock[0] % pool
            lifter.update(kp[t], ids, scores_2d=sc[t], bboxes=bb[t], frame_size=frame_wh)
            clock[0] += 1

    def run() -> float:
        t0 = time.perf_counter()
        frames(frames_per_run)
        return _ms(t0, frames_per_run * persons)

    # warm-up: past the lifter's delay (exact mode emits nothing, and calls a windowed model for nothing, before
    # it), then one run's worth of frames
    return Variant("lifter", label, UNIT_PERSON_FRAME, run, frames_per_run * persons, key=key, baseline=baseline,
                   note="; ".join(x for x in (f"{persons} tracks x {frames_per_run} frames per run", note) if x),
                   warmup=lambda: frames(int(getattr(lifter, "latency", 0)) + frames_per_run))


# ---------------------------------------------------------------------------------------------------------------
# end to end, visualization
# ---------------------------------------------------------------------------------------------------------------


def open_limited(video: Path, limit: int) -> Tuple[Any, Any]:
    """``(source, owner)``: the first ``limit`` frames of ``video`` (all when ``limit`` <= 0) as a
    :class:`~pose3d_rt.io.sources.FrameSource`, and the opened source to close."""
    from pose3d_rt.io.sources import FrameSource, open_source

    src = open_source(str(video))
    if limit <= 0:
        return src, src
    info = src.info
    total = min(limit, info.total_frames) if info.total_frames else limit
    return FrameSource.from_frames(islice(iter(src), limit), info.width, info.height, info.fps, total), src


def e2e_variant(key: str, label: str, pipe: Any, video: Path, frames: int, warm_frames: Sequence[np.ndarray], *,
                baseline: bool = False, note: str = "") -> Variant:
    """FPS of ``pipe.stream`` over the first ``frames`` frames of ``video`` (0 = all), reading and decoding the
    video included; the warm-up streams ``warm_frames``."""
    from pose3d_rt.io.sources import FrameSource
    from pose3d_rt.timing import engine_clock

    seen: Dict[str, Any] = {"frames": 0, "persons": 0, "shares": []}

    def run() -> float:
        source, owner = open_limited(video, frames)
        n = persons = 0
        try:
            with engine_clock(pipe) as clock:
                t0 = time.perf_counter()
                for res in pipe.stream(source):
                    n += 1
                    persons += len(res)
                dt = time.perf_counter() - t0
        finally:
            owner.close()
        seen.update(frames=n, persons=persons)
        if dt > 0:  # the time outside engine calls (decode, pre/post-processing, tracking) as a share of the run
            seen["shares"].append(max(0.0, dt - clock.seconds) / dt)
        return n / dt if dt > 0 else float("inf")

    def warmup() -> None:
        h, w = warm_frames[0].shape[:2]
        for _ in pipe.stream(FrameSource.from_frames(iter(warm_frames), w, h, total_frames=len(warm_frames))):
            pass

    def share() -> float:
        return float(np.median(seen["shares"])) if seen["shares"] else float("nan")

    def after() -> str:
        return (f"{seen['frames']} frames per run, {seen['persons'] / max(seen['frames'], 1):.2f} persons per "
                f"frame, decoding included; non-network share {100 * share():.1f}%")

    def info() -> Dict[str, Any]:
        return {"frames": seen["frames"], "persons_per_frame": seen["persons"] / max(seen["frames"], 1),
                "non_network_share": share()}

    return Variant("e2e", label, UNIT_FPS, run, frames, key=key, baseline=baseline, note=note, warmup=warmup,
                   note_after=after, info_after=info)


def vis_variant(key: str, frames: Sequence[np.ndarray], results: Sequence[Any]) -> Variant:
    """ms per frame of ``Visualizer().render(frame, result)`` (raises ImportError without the module)."""
    from pose3d_rt.visualize import Visualizer

    vis = Visualizer()
    pairs = list(zip(frames, results))
    persons = sum(len(r) for _, r in pairs) / max(len(pairs), 1)

    def run() -> float:
        t0 = time.perf_counter()
        for f, r in pairs:
            vis.render(f, r)
        return _ms(t0, len(pairs))

    return Variant("vis", "Visualizer().render(frame, result)", UNIT_FRAME, run, len(pairs), key=key,
                   baseline=True, note=f"{len(pairs)} frames per run, {persons:.1f} persons per frame",
                   warmup=lambda: vis.render(*pairs[0]))


__all__ = ["Variant", "measure", "rect_hw", "is_dynamic_hw", "detector_at", "det_variant", "crop_inputs",
           "pose2d_variant", "rtmlib_pose", "rtmlib_variant", "make_lifter", "lifter_variant", "open_limited",
           "e2e_variant", "vis_variant"]
