"""Visualization cost: milliseconds per rendered composite (pose3d_rt.visualize.Visualizer.render).

Synthetic standing persons (COCO-17 2D + H36M-17 3D) on a 640×480 frame: 1, 2 and 5 persons with 1 and 2 3D
slots, the 2D panel alone, and 2 persons rendered into a reused output buffer (``render(out=...)``). Each case is
rendered a few times to warm up, then timed render by render (perf_counter): median and 90th percentile of the
wall time, and the median thread CPU time (time.thread_time). Budget: 3 ms for 2 persons and 1 slot (median wall
time).

    python -m benchmarks.visualize             # writes benchmarks/results/visualize.json and .md
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from benchmarks.core import RESULTS, write_report
from benchmarks.synthetic import synthetic_result

BUDGET_MS = 3.0

log = logging.getLogger("benchmarks.visualize")


def time_case(persons: int, slots: int, show_3d: bool, iters: int, warmup: int, width: int, height: int,
              reuse: bool = False) -> Dict:
    """Render one configuration ``warmup + iters`` times; per-render statistics in milliseconds.

    ``reuse``: render into one output buffer (``render(..., out=buf)``) instead of a new array per frame.
    """
    from pose3d_rt.visualize import Visualizer

    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    res = synthetic_result(persons, width, height)
    vis = Visualizer(num_instances=slots, show_3d=show_3d)
    out = None
    for _ in range(warmup):
        out = vis.render(frame, res, out=out if reuse else None)
    times = np.empty(iters, np.float64)
    cpu = np.empty(iters, np.float64)
    for i in range(iters):
        c0 = time.thread_time()
        t0 = time.perf_counter()
        out = vis.render(frame, res, out=out if reuse else None)
        times[i] = time.perf_counter() - t0
        cpu[i] = time.thread_time() - c0
    ms = times * 1e3
    return {
        "panel": ("2D + 3D" if show_3d else "2D only") + (", out= reused" if reuse else ""),
        "persons": persons,
        "num_instances": slots if show_3d else 0,
        "frame": f"{width}x{height}",
        "output": f"{out.shape[1]}x{out.shape[0]}",
        "renders": iters,
        "median_ms": float(np.median(ms)),
        "p90_ms": float(np.percentile(ms, 90)),
        "mean_ms": float(ms.mean()),
        "min_ms": float(ms.min()),
        "cpu_median_ms": float(np.median(cpu) * 1e3),  # thread CPU time: insensitive to other processes
    }


def _environment() -> Dict:
    import cv2

    return {"python": platform.python_version(), "numpy": np.__version__, "opencv": cv2.__version__,
            "cpus": os.cpu_count(), "opencv_threads": cv2.getNumThreads(), "machine": platform.machine()}


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iters", type=int, default=200, help="timed renders per case (default 200)")
    ap.add_argument("--warmup", type=int, default=20, help="untimed renders first (default 20)")
    ap.add_argument("--persons", type=int, nargs="+", default=[1, 2, 5])
    ap.add_argument("--instances", type=int, nargs="+", default=[1, 2], help="3D slots (num_instances)")
    ap.add_argument("--size", type=int, nargs=2, default=[640, 480], metavar=("W", "H"))
    ap.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    ap.add_argument("--quick", action="store_true", help="20 renders per case after 5 warm-up ones (a smoke run; writes visualize.quick.*)")
    args = ap.parse_args(list(argv) if argv is not None else None)
    if args.quick:
        args.iters, args.warmup = min(args.iters, 20), min(args.warmup, 5)
    w, h = args.size
    rows: List[Dict] = []
    for slots in args.instances:
        for p in args.persons:
            rows.append(time_case(p, slots, True, args.iters, args.warmup, w, h))
            log.info("%s", rows[-1])
    rows.append(time_case(2, 1, False, args.iters, args.warmup, w, h))
    for slots in args.instances:
        rows.append(time_case(2, slots, True, args.iters, args.warmup, w, h, reuse=True))
    budget_row = next((r for r in rows if r["panel"] == "2D + 3D" and r["persons"] == 2 and r["num_instances"] == 1),
                      None)
    report = {"budget_ms": BUDGET_MS,
              "budget_case": "640x480, 2 persons, num_instances 1 (median)",
              "within_budget": None if budget_row is None else budget_row["median_ms"] <= BUDGET_MS,
              "environment": _environment(), "rows": rows}
    lines = ["| panel | persons | 3D slots | output | median ms | p90 ms | CPU median ms | renders/s (median) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['panel']} | {r['persons']} | {r['num_instances']} | {r['output']} "
                     f"| {r['median_ms']:.2f} | {r['p90_ms']:.2f} | {r['cpu_median_ms']:.2f} | {1e3 / r['median_ms']:.0f} |")
    table = "\n".join(lines)
    env = report["environment"]
    head = (f"# Visualization: ms per rendered frame ({w}x{h} input, {args.iters} renders after {args.warmup} "
            f"warm-up)\n\nOpenCV {env['opencv']}, numpy {env['numpy']}, {env['cpus']} CPUs. "
            f"Budget {BUDGET_MS:g} ms for 2 persons / 1 slot: "
            f"{'met' if report['within_budget'] else 'NOT met' if report['within_budget'] is False else 'n/a'}.\n\n")
    write_report(args.out, "visualize.quick" if args.quick else "visualize", report, head + table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    sys.exit(main())
