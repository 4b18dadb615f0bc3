"""``pose3d-rt bench``: the speed of one configuration of ``run``, stage by stage and end to end, against the
mmpose-demo-equivalent baseline measured in the same run.

    pose3d-rt bench --det D --pose2d P --lifter L --input VIDEO [--device openvino] [--precision int8]
                    [--det-interval 5] [--threads 2] [--frames 64] [--json]

The models are ``run``'s (zoo aliases, .pth / .onnx / .engine paths, URLs; the defaults when omitted), resolved
by :func:`pose3d_rt.hub.resolve` (a .pth is exported once, the lifter in the form each mode needs). ``--synthetic``
uses the scripted engines of :mod:`benchmarks.fakes` instead (times the host code). The baseline is
:meth:`benchmarks.pipelines.Pipelines.baseline` (mode mmpose, CPU ONNX Runtime, FP32); the configuration is
the default mode with the given device, precision and detection interval.

Stages (:mod:`benchmarks.measure`), each with a baseline row and the configuration's row:

- ``det``     ms per frame of the detector (letterbox + network + decode/NMS), one frame per call;
- ``pose2d``  ms per crop of the 2D stage with ``--persons`` boxes per frame;
- ``lifter``  ms per person-frame of the lifter with ``--persons`` tracks, in its steady state;
- ``vis``     ms per frame of the visualizer;
- ``e2e``     frames per second of the whole pipeline over the input (decoding included).

``--json`` prints ONE JSON object on stdout (logs go to stderr): ``det_ms``, ``pose2d_ms_per_crop``,
``lifter_ms_per_person_frame``, ``vis_ms``, ``e2e_fps``, ``baseline_fps``, ``speedup`` (= e2e_fps / baseline_fps),
``baseline`` (the baseline's stage figures), ``config``, ``environment`` (CPU model and flags), ``settings``,
``rows``. Without it the Markdown table is logged. ``--out DIR`` also writes ``DIR/<name>.json`` and ``.md``
(atomically).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
from itertools import islice
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from pose3d_rt.cli.argtypes import nonneg_int, positive_int
from pose3d_rt.errors import InputError

from benchmarks.core import (
    STAGES,
    Row,
    apply_ratios,
    environment,
    format_markdown,
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
    e2e_variant,
    lifter_variant,
    make_lifter,
    measure,
    pose2d_variant,
    vis_variant,
)
from benchmarks.pipelines import PRECISIONS, Config, Models, Pipelines, check_precision
from benchmarks.reference import REPO_REFERENCE, reference_info, reference_rows
from benchmarks.synthetic import make_synthetic_video

log = logging.getLogger(__name__)

DEFAULT_SYNTHETIC_FRAMES = 100
FIXTURE_VIDEO = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "inputs" / "synthetic_video.avi"
# JSON summary key -> row key of the configuration (the baseline's row key is "baseline_" + it)
SUMMARY_KEYS = {"det_ms": "det", "pose2d_ms_per_crop": "pose2d", "lifter_ms_per_person_frame": "lifter",
                "vis_ms": "vis", "e2e_fps": "e2e"}


# ---------------------------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------------------------


def _stage_list(text: str) -> List[str]:
    vals = [v.strip() for v in str(text).split(",") if v.strip()]
    bad = [v for v in vals if v not in STAGES]
    if not vals or bad:
        raise argparse.ArgumentTypeError(f"stages must be a comma list of {','.join(STAGES)}; got {text!r}")
    return list(dict.fromkeys(vals))


def _size(text: str) -> Tuple[int, int]:
    try:
        w, h = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT of at least 16x16, got {text!r}")
    return w, h


def configure_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``bench`` arguments to ``p`` (a sub-command parser or a standalone one)."""
    g = p.add_argument_group("models (as `run` takes them)")
    g.add_argument("--det", default=None, metavar="M", help="person detector: alias, .pth/.onnx/.engine or URL "
                   "(default: run's default)")
    g.add_argument("--pose2d", default=None, metavar="M", help="2D pose model (default: run's default)")
    g.add_argument("--lifter", default=None, metavar="M", help="3D lifter, or 'none' (default: run's default)")
    g.add_argument("--baseline-lifter", default=None, metavar="M",
                   help="lifter of the baseline (mode mmpose needs a windowed/strided export; default: --lifter)")
    g.add_argument("--synthetic", action="store_true",
                   help="scripted engines of benchmarks/fakes.py instead of models (times the host code)")
    g = p.add_argument_group("configuration (as `run` takes it; the baseline is always mode mmpose, cpu, fp32)")
    g.add_argument("--device", default="cpu", help="cpu (ONNX Runtime, default), openvino[:DEVICE], cuda[:N], "
                   "tensorrt[:N]")
    g.add_argument("--precision", choices=PRECISIONS, default="fp32", help="network precision (default fp32)")
    g.add_argument("--det-interval", type=positive_int, default=1,
                   help="run the detector every N frames (default 1)")
    g.add_argument("--threads", type=positive_int, default=None, help="CPU threads per model (default: backend's)")
    g = p.add_argument_group("input")
    g.add_argument("--input", default=None, metavar="VIDEO",
                   help="video (or folder of images); default: a generated synthetic video")
    g.add_argument("--frames", type=nonneg_int, default=0,
                   help=f"frames per end-to-end run, 0 = the whole input (default 0; the generated video has "
                        f"this many frames, {DEFAULT_SYNTHETIC_FRAMES} when 0)")
    g.add_argument("--video-size", type=_size, default=(640, 360), metavar="WxH",
                   help="size of the generated video (default 640x360)")
    g = p.add_argument_group("measurement")
    g.add_argument("--repeats", type=positive_int, default=5, help="timed runs per variant; median reported (5)")
    g.add_argument("--warmup", type=nonneg_int, default=1, help="untimed warm-up runs per variant (1)")
    g.add_argument("--stages", type=_stage_list, default=list(STAGES),
                   help=f"comma list of {','.join(STAGES)} (default all)")
    g.add_argument("--persons", type=positive_int, default=4,
                   help="crops per frame of the pose2d stage and tracks of the lifter stage (4)")
    g.add_argument("--stage-frames", type=positive_int, default=8,
                   help="video frames per run of the det, pose2d and vis stages (8)")
    g.add_argument("--lift-frames", type=positive_int, default=16,
                   help="frames per run of the lifter stage; a multiple of the stream lifter's chunk, 8 (16)")
    g = p.add_argument_group("output")
    g.add_argument("--json", action="store_true", help="print one JSON object on stdout (logs on stderr)")
    g.add_argument("--out", default=None, metavar="DIR", help="also write DIR/<name>.json and DIR/<name>.md")
    g.add_argument("--name", default="bench", help="file stem of the results in --out (default bench)")
    g.add_argument("--reference", default="auto",
                   help="mmpose demo timing JSON quoted as reference rows; 'auto' = the repository's "
                        "tests/fixtures/e2e/baseline_timing.json when the input is the fixture video; 'none'")
    g.add_argument("--reference-run", default="video_default", help="run of the reference file (video_default)")
    return p


# ---------------------------------------------------------------------------------------------------------------
# models, input
# ---------------------------------------------------------------------------------------------------------------


def synthetic_models() -> Models:
    from benchmarks.fakes import LinearLifter, ScriptedDetector, TemplatePose, walking_boxes

    return Models(ScriptedDetector(walking_boxes(3, 320), 320), TemplatePose(), LinearLifter(243))


def models_from_args(args: argparse.Namespace) -> Models:
    """The model arguments: the scripted engines with ``--synthetic``; else ``run``'s (default aliases for the
    ones not given), checked without network access (a typo fails naming its flag before anything loads)."""
    if args.synthetic:
        return synthetic_models()
    from pose3d_rt.cli.run import flagged, model_choices
    from pose3d_rt.hub import Role, check

    det, pose2d, lifter = (m.arg for m in model_choices((args.det, args.pose2d, args.lifter)))
    if args.baseline_lifter is not None:
        flagged("--baseline-lifter", check, args.baseline_lifter, Role.LIFTER)
    return Models(det, pose2d, lifter, args.baseline_lifter)


def first_frames(video: Path, count: int) -> Tuple[List[Any], Any]:
    """The first ``count`` frames of ``video`` and its :class:`~pose3d_rt.io.sources.VideoInfo`."""
    from pose3d_rt.io.sources import open_source

    src = open_source(str(video))
    try:
        info = src.info
        frames = list(islice(iter(src), count))
    finally:
        src.close()
    if not frames:
        raise InputError(f"{video}: no frame could be read")
    return frames, info


def reference_path(args: argparse.Namespace, video: Path) -> Optional[Path]:
    ref = str(args.reference or "none")
    if ref.lower() == "none":
        return None
    if ref.lower() == "auto":
        same = video.is_file() and FIXTURE_VIDEO.is_file() and os.path.samefile(video, FIXTURE_VIDEO)
        return REPO_REFERENCE if (REPO_REFERENCE.is_file() and same and not args.synthetic) else None
    path = Path(ref)
    if not path.is_file():
        raise InputError(f"--reference {ref}: no such file")
    return path


@contextlib.contextmanager
def bench_input(args: argparse.Namespace) -> Iterator[Path]:
    """The input video: ``--input``, or a synthetic video generated into a temporary folder."""
    if args.input:
        path = Path(args.input)
        if not path.exists():
            raise InputError(f"--input {args.input}: no such file or folder")
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="pose3d_rt_bench_") as tmp:
        yield make_synthetic_video(tmp, args.frames or DEFAULT_SYNTHETIC_FRAMES, args.video_size)


# ---------------------------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------------------------


def _results(pipe: Any, frames: List[Any]) -> List[Any]:
    from pose3d_rt.io.sources import FrameSource

    h, w = frames[0].shape[:2]
    return list(pipe.stream(FrameSource.from_frames(iter(frames), w, h, total_frames=len(frames))))


def config_variants(args: argparse.Namespace, pipes: Pipelines, cfg: Config, video: Path, frames: List[Any],
                    skipped: Dict[str, str]) -> List[Variant]:
    """Baseline and configuration variants of every requested stage."""
    base, pipe = pipes.baseline(), pipes.config(cfg)
    h, w = frames[0].shape[:2]
    crop_frames, boxes = crop_inputs(frames, args.persons)
    out: List[Variant] = []
    for stage in args.stages:
        if stage == "det":
            out += [det_variant("baseline_det", "baseline: mmpose mode, square 640x640 letterbox, FP32 ONNX Runtime",
                                base.detector, frames, baseline=True),
                    det_variant("det", cfg.label, pipe.detector, frames)]
        elif stage == "pose2d":
            out += [pose2d_variant("baseline_pose2d", "baseline: mmpose mode, flip test, fixed-point warp, "
                                   "FP32 ONNX Runtime", base.pose2d, crop_frames, boxes, baseline=True),
                    pose2d_variant("pose2d", cfg.label, pipe.pose2d, crop_frames, boxes)]
        elif stage == "lifter":
            if base.lifter_engine is None or pipe.lifter_engine is None:
                skipped["lifter"] = "no lifter (--lifter none)"
                continue
            out += [lifter_variant("baseline_lifter", "baseline: mmpose mode, a fresh window per frame and person",
                                   make_lifter(base.lifter_engine, "mmpose", (w, h)), args.persons,
                                   args.lift_frames, (w, h), baseline=True),
                    lifter_variant("lifter", cfg.label, make_lifter(pipe.lifter_engine, "default", (w, h)),
                                   args.persons, args.lift_frames, (w, h))]
        elif stage == "vis":
            try:
                out.append(vis_variant("vis", frames, _results(pipe, frames)))
            except ImportError as exc:
                skipped["vis"] = f"pose3d_rt.visualize is not importable ({exc})"
        elif stage == "e2e":
            warm = frames[:1]
            out += [e2e_variant("baseline_e2e", "baseline: Pose3DPipeline(mode='mmpose'), mmpose demo settings",
                                base, video, args.frames, warm, baseline=True),
                    e2e_variant("e2e", cfg.label, pipe, video, args.frames, warm)]
    return out


def summary(rows: List[Row]) -> Dict[str, Any]:
    """The figures a script compares: the configuration's, the baseline's, and the end-to-end speed-up."""

    def med(key: str) -> Optional[float]:
        r = row_by_key(rows, key)
        return None if r is None else r.median

    out: Dict[str, Any] = {name: med(key) for name, key in SUMMARY_KEYS.items()}
    out["baseline_fps"] = med("baseline_e2e")
    out["speedup"] = speed_ratio(row_by_key(rows, "e2e"), row_by_key(rows, "baseline_e2e"))
    out["baseline"] = {name: med("baseline_" + key) for name, key in SUMMARY_KEYS.items() if key != "vis"}
    for target, key in ((out, "e2e"), (out["baseline"], "baseline_e2e")):  # the work each end-to-end run saw
        r = row_by_key(rows, key)
        target["persons_per_frame"] = None if r is None else r.info.get("persons_per_frame")
        target["non_network_share"] = None if r is None else r.info.get("non_network_share")
    return out


def _models_text(models: Models) -> Dict[str, str]:
    return {k: str(getattr(v, "path", v)) for k, v in vars(models).items() if v is not None}


def run_bench(args: argparse.Namespace) -> Dict[str, Any]:
    """Run the requested stages for the configuration of ``args`` and its baseline; return the report."""
    check_precision(args.precision)
    cfg = Config(args.device, args.precision, args.det_interval)
    env = environment(args.threads, args.device)
    models = models_from_args(args)
    skipped: Dict[str, str] = {}
    notes: List[str] = []
    with bench_input(args) as video:
        frames, info = first_frames(video, args.stage_frames)
        pipes = Pipelines(models, args.threads, calibration=str(video))
        rows = measure(config_variants(args, pipes, cfg, video, frames, skipped), args.repeats, args.warmup)
        ref = reference_path(args, video)
        input_text = str(video) if args.input else (f"synthetic {args.video_size[0]}x{args.video_size[1]}, "
                                                    f"{args.frames or DEFAULT_SYNTHETIC_FRAMES} frames")
    if ref is not None:
        quoted = reference_rows(ref, args.reference_run, args.stages)
        rows.extend(quoted)
        if quoted:
            notes.append(f"reference: {reference_info(ref, args.reference_run)}")
    order = {s: i for i, s in enumerate(STAGES)}
    rows.sort(key=lambda r: (order[r.stage], not r.baseline, r.reference))
    apply_ratios(rows)
    env["loadavg_end"] = loadavg()
    settings = {"input": input_text, "frames_in_video": info.total_frames, "frame_size": [info.width, info.height],
                "frames_per_e2e_run": args.frames or info.total_frames, "repeats": args.repeats,
                "warmup": args.warmup, "stages": list(args.stages), "persons": args.persons,
                "stage_frames": args.stage_frames, "lift_frames": args.lift_frames, "synthetic": bool(args.synthetic),
                "models": _models_text(models)}
    config = {"mode": "default", "device": cfg.device, "precision": cfg.precision, "det_interval": cfg.det_interval,
              "threads": args.threads, **_models_text(models)}
    return {**summary(rows), "name": args.name, "config": config, "environment": env, "settings": settings,
            "rows": [r.to_dict() for r in rows], "skipped": skipped, "notes": notes}


def _flush_c_stdio() -> None:
    """Flush the C library's stdio buffers (a native library's printf would otherwise land after the switch)."""
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):  # pragma: no cover - no C library to talk to
        pass


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[Any]:
    """Everything written to stdout inside (Python prints, and native libraries writing to file descriptor 1)
    goes to stderr; yields the real ``sys.stdout``, for the one JSON object."""
    real = sys.stdout
    real.flush()
    _flush_c_stdio()
    try:
        saved: Optional[int] = os.dup(1)
        os.dup2(2, 1)
    except OSError:  # no file descriptor 1
        saved = None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield real
    finally:
        sys.stderr.flush()
        _flush_c_stdio()
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


def cmd_bench(args: argparse.Namespace) -> int:
    """``pose3d-rt bench``: run; ``--json``: print the report as one JSON object on stdout, else log the table;
    ``--out``: write ``<out>/<name>.json`` and ``.md``."""
    if args.json:
        with stdout_to_stderr() as real_stdout:
            report = run_bench(args)
        real_stdout.write(json.dumps(report) + "\n")
        real_stdout.flush()
    else:
        report = run_bench(args)
        log.warning("bench results:\n%s", markdown_table([Row(**r) for r in report["rows"]]))
        if report.get("speedup") is not None:
            log.warning("end to end: %.2f FPS vs baseline %.2f FPS: %.2fx", report["e2e_fps"], report["baseline_fps"],
                        report["speedup"])
    if args.out:
        jpath, mpath = write_report(args.out, args.name, report, format_markdown(report))
        log.warning("wrote %s and %s", jpath, mpath)
    return 0


__all__ = ["FIXTURE_VIDEO", "SUMMARY_KEYS", "configure_parser", "models_from_args", "first_frames", "bench_input",
           "config_variants", "summary", "run_bench", "stdout_to_stderr", "cmd_bench"]
