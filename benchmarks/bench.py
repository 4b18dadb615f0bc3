"""``pose3d-rt bench``: speed of every stage alone and of the whole pipeline, against the mmpose demo's settings.

``pose3d-rt bench --det D.onnx --pose2d P.onnx --lifter L.onnx [--input VIDEO]`` (or ``--synthetic``, with the
scripted engines of :mod:`benchmarks.fakes`) times, on CPU ONNX Runtime unless ``--device`` says otherwise, the
stages of :mod:`benchmarks.measure` (det, pose2d, lifter, vis, e2e). This module is the command: its arguments
(:func:`configure_parser`, shared by the product CLI and ``python -m benchmarks.stages``) and the run
(:func:`cmd_bench`).

Each variant is measured ``--repeats`` times; a row gives the median and the 90th percentile of the per-run
values, ``n`` = runs, and the ratio against its stage's baseline row (> 1 = faster than the baseline, see
:mod:`benchmarks.core`). Rows quoted from a timing file of the real mmpose demo (``--reference``, e.g.
``tests/fixtures/e2e/baseline_timing.json``) are marked as measured elsewhere.

Results go to ``<out>/<name>.json`` and ``<out>/<name>.md`` (each written atomically); the Markdown table is also
logged.
"""
from __future__ import annotations

import argparse
import logging
import tempfile
import time
from itertools import islice
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

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
    write_report,
)
from benchmarks.measure import STAGE_RUNNERS, StageContext
from benchmarks.reference import REPO_REFERENCE, reference_info, reference_rows
from benchmarks.synthetic import make_synthetic_video

log = logging.getLogger(__name__)

DEFAULT_OUT = Path("benchmarks") / "results"
# which stages need which model
_NEEDS = {"det": ("det", "pose2d", "vis", "e2e"), "pose2d": ("pose2d", "vis", "e2e"),
          "lifter": ("lifter", "vis", "e2e")}


# ---------------------------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------------------------


def _int_list(text: str) -> List[int]:
    try:
        vals = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}") from None
    if not vals or any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return vals


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


_pos = positive_int
_nonneg = nonneg_int


def configure_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``bench`` arguments to ``p`` (a sub-command parser or a standalone one)."""
    g = p.add_argument_group("models")
    g.add_argument("--det", default=None, help="person detector: .onnx, .engine, .pth, URL or zoo alias")
    g.add_argument("--pose2d", default=None, help="2D pose model: .onnx, .engine, .pth, URL or zoo alias")
    g.add_argument("--lifter", default=None,
                   help="lifter: .onnx, .engine, .pth, URL or zoo alias (strided export for .pth)")
    g.add_argument("--synthetic", action="store_true",
                   help="use the scripted engines of benchmarks/fakes.py instead of models (times the host code)")
    g = p.add_argument_group("input")
    g.add_argument("--input", default=None, metavar="VIDEO",
                   help="video (or folder of images) to run on; default: a generated synthetic video")
    g.add_argument("--video-frames", type=_pos, default=100, help="frames of the generated video (default 100)")
    g.add_argument("--video-size", type=_size, default=(640, 480), metavar="WxH",
                   help="size of the generated video (default 640x480)")
    g = p.add_argument_group("measurement")
    g.add_argument("--repeats", type=_pos, default=5, help="timed runs per variant; the median is reported (5)")
    g.add_argument("--warmup", type=_nonneg, default=1,
                   help="untimed warm-up calls per variant before the runs (e2e: frames) (1)")
    g.add_argument("--stages", type=_stage_list, default=list(STAGES),
                   help=f"comma list of {','.join(STAGES)} (default all)")
    g.add_argument("--batch-sizes", type=_int_list, default=[1, 4, 8], help="2D crops per call (default 1,4,8)")
    g.add_argument("--persons", type=_int_list, default=[1, 4], help="tracks lifted per frame (default 1,4)")
    g.add_argument("--frames", type=_pos, default=8, help="video frames per run of the det and vis stages (8)")
    g.add_argument("--crops", type=_pos, default=16, help="crops per run of the pose2d stage (16)")
    g.add_argument("--lift-frames", type=_pos, default=32, help="frames per run of the lifter stage (32)")
    g.add_argument("--e2e-frames", type=_nonneg, default=0, help="frames per e2e run, 0 = the whole video (0)")
    g.add_argument("--device", default="cpu", help="cpu (default), cuda[:N], tensorrt[:N]")
    g.add_argument("--threads", type=_nonneg, default=None, help="ONNX Runtime intra-op threads (default: its own)")
    g = p.add_argument_group("output")
    g.add_argument("--out", default=str(DEFAULT_OUT), help=f"results folder (default {DEFAULT_OUT})")
    g.add_argument("--name", default="stages", help="file stem of the results (default stages)")
    g.add_argument("--reference", default="auto",
                   help="mmpose demo timing JSON to quote as reference rows; 'auto' = the repository's "
                        "tests/fixtures/e2e/baseline_timing.json when present and not --synthetic; 'none'")
    g.add_argument("--reference-run", default="video_default", help="run of the reference file (video_default)")
    return p


def _load_engines(args: argparse.Namespace) -> Dict[str, Any]:
    """``{det|pose2d|lifter: Engine}`` for the requested stages: the scripted engines with ``--synthetic``, else
    each model argument through the one resolver of the hub (file, checkpoint, URL or zoo alias)."""
    if args.synthetic:
        from benchmarks.fakes import LinearLifter, ScriptedDetector, TemplatePose, walking_boxes

        return {"det": ScriptedDetector(walking_boxes(3, 320), 320), "pose2d": TemplatePose(),
                "lifter": LinearLifter(243)}
    from pose3d_rt.hub import Role, lifter_export_options, resolve

    needed = {m for m, users in _NEEDS.items() if set(users) & set(args.stages)}
    missing = [f"--{m}" for m in ("det", "pose2d", "lifter") if m in needed and getattr(args, m) is None]
    if missing:
        raise InputError(f"bench needs {', '.join(missing)} for stages {','.join(args.stages)} (or --synthetic)")
    roles = {"det": (Role.DETECTOR, None), "pose2d": (Role.POSE2D, None),
             "lifter": (Role.LIFTER, lifter_export_options())}
    engines = {}
    for m in ("det", "pose2d", "lifter"):
        if m in needed:
            role, opts = roles[m]
            engines[m] = resolve(getattr(args, m), role, device=args.device, threads=args.threads,
                                 export_options=opts)
            if engines[m] is None:  # the lifter's "none"
                raise InputError(f"--{m} none: stages {','.join(args.stages)} need a {role.label}")
    return engines


def _reference_path(args: argparse.Namespace) -> Optional[Path]:
    ref = str(args.reference or "none")
    if ref.lower() == "none":
        return None
    if ref.lower() == "auto":
        return REPO_REFERENCE if (REPO_REFERENCE.is_file() and not args.synthetic) else None
    path = Path(ref)
    if not path.is_file():
        raise InputError(f"--reference {ref}: no such file")
    return path


def _first_frames(video: Path, count: int) -> Tuple[List[Any], Any]:
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


def _settings(args: argparse.Namespace, info: Any, engines: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "input": str(args.input) if args.input else f"synthetic {args.video_size[0]}x{args.video_size[1]}, "
                                                    f"{args.video_frames} frames",
        "frames_in_video": info.total_frames, "frame_size": [info.width, info.height],
        "repeats": args.repeats, "warmup": args.warmup, "stages": list(args.stages),
        "batch_sizes": list(args.batch_sizes), "persons": list(args.persons), "frames_per_run": args.frames,
        "crops_per_run": args.crops, "lift_frames_per_run": args.lift_frames, "e2e_frames": args.e2e_frames,
        "synthetic": bool(args.synthetic),
        "models": {m: str(getattr(eng, "path", "?")) for m, eng in engines.items()},
        "providers": {m: list(getattr(eng, "providers", []) or []) for m, eng in engines.items()},
    }


def run_bench(args: argparse.Namespace) -> Dict[str, Any]:
    """Run the requested stages and return the report (rows, environment, settings, skipped stages)."""
    env = environment(args.threads, args.device)
    engines = _load_engines(args)
    with tempfile.TemporaryDirectory(prefix="pose3d_rt_bench_") as tmp:
        video = Path(args.input) if args.input else make_synthetic_video(tmp, args.video_frames, args.video_size)
        frames, info = _first_frames(video, args.frames)
        ctx = StageContext(args, engines, video, frames, (info.width, info.height))
        for stage in STAGES:
            if stage in args.stages:
                log.info("bench: stage %s", stage)
                t0 = time.perf_counter()
                STAGE_RUNNERS[stage](ctx)
                log.info("bench: stage %s done in %.1f s", stage, time.perf_counter() - t0)
    ref = _reference_path(args)
    if ref is not None:
        quoted = reference_rows(ref, args.reference_run, args.stages)
        ctx.rows.extend(quoted)
        if quoted:
            ctx.notes.append(f"reference: {reference_info(ref, args.reference_run)}")
    order = {s: i for i, s in enumerate(STAGES)}
    rows = sorted(ctx.rows, key=lambda r: (order[r.stage], not r.baseline, r.reference))
    apply_ratios(rows)
    env["loadavg_end"] = loadavg()
    return {"name": args.name, "environment": env, "settings": _settings(args, info, engines),
            "rows": [r.to_dict() for r in rows], "skipped": ctx.skipped, "notes": ctx.notes}


def cmd_bench(args: argparse.Namespace) -> int:
    """``pose3d-rt bench``: run, write ``<out>/<name>.json`` and ``<out>/<name>.md``, log the table."""
    report = run_bench(args)
    jpath, mpath = write_report(args.out, args.name, report, format_markdown(report))
    log.warning("%s\n%s", "bench results:", markdown_table([Row(**r) for r in report["rows"]]))
    log.warning("wrote %s and %s", jpath, mpath)
    return 0


__all__ = ["DEFAULT_OUT", "configure_parser", "run_bench", "cmd_bench"]
