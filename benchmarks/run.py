"""``make bench`` / ``python -m benchmarks``: every benchmark of this folder, results in benchmarks/results/
(JSON + Markdown).

Each benchmark runs in its own Python process, so that one's peak memory (the memory benchmark reads the peak RSS)
and thread pools cannot leak into another's figures.
"""
from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time
from typing import Optional, Sequence

# module -> what it measures (each is also runnable alone: python -m <module> --help)
BENCHMARKS = {
    "benchmarks.stages": "end to end and per stage on the fixture models and video, vs the mmpose-demo-equivalent "
                         "baseline and the rtmlib peer (stages.md, kernels.md)",
    "benchmarks.visualize": "ms per rendered frame of the visualizer (visualize.md)",
    "benchmarks.memory": "peak RSS after 1,000 and 10,000 frames, synthetic engines (memory.md)",
    "benchmarks.motionbert": "MotionBERT clip lifting, ms per person-frame with and without flip, batched tracks "
                             "(motionbert.md)",
}

log = logging.getLogger("benchmarks")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Run every benchmark (make bench), each in its own process; "
        "results in benchmarks/results/ (JSON + Markdown).",
        epilog="benchmarks:\n" + "\n".join(f"  {m.split('.')[-1]:<10} {what}" for m, what in BENCHMARKS.items())
        + "\n\nTo time your own models: pose3d-rt bench --det D --pose2d P --lifter L [--input VIDEO]",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("only", nargs="*", metavar="NAME", help="run only these benchmarks (default: all)")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: each benchmark's --quick (1 run per variant, short inputs); figures not stable")
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = _parser()
    args = ap.parse_args(list(argv) if argv is not None else None)
    unknown = sorted(set(args.only) - {m.split(".")[-1] for m in BENCHMARKS})
    if unknown:
        ap.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(m.split('.')[-1] for m in BENCHMARKS)}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    names = [m for m in BENCHMARKS if not args.only or m.split(".")[-1] in args.only]
    failed = 0
    for name in names:
        log.info("== %s", name)
        t0 = time.perf_counter()
        code = subprocess.run([sys.executable, "-m", name] + (["--quick"] if args.quick else [])).returncode
        log.info("== %s: %.0f s", name, time.perf_counter() - t0)
        if code != 0:  # a broken benchmark must not hide the others
            log.error("%s failed with exit code %d", name, code)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
