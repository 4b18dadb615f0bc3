"""Memory boundedness of the streaming pipeline: peak RSS after N frames, for N = 1,000 and 10,000.

Runs the real pipeline code (detector decoding, top-down crops, SimCC decoding, tracking, ring-buffer lifting,
JSON streaming to disk) with the synthetic engines of benchmarks/fakes.py so that 10,000 frames take seconds. Each N
runs in a fresh subprocess; the peak resident set size (ru_maxrss) of each is compared.

    python -m benchmarks.memory                # writes benchmarks/results/memory.json and .md
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.core import RESULTS, write_report


def _child(frames: int, persons: int, json_path: str) -> dict:
    import numpy as np
    from pose3d_rt.io.sinks import PredictionWriter, json_instances
    from pose3d_rt.io.sources import FrameSource
    from pose3d_rt.pipeline import Pose3DPipeline

    from benchmarks.fakes import LinearLifter, ScriptedDetector, TemplatePose, walking_boxes

    det = ScriptedDetector(walking_boxes(persons, 320, gap_every=50, gap_len=3), input_size=320)
    pipe = Pose3DPipeline(det, TemplatePose(), LinearLifter(243), mode="default")
    w, h = 320, 240

    def gen():
        for i in range(frames):
            yield np.full((h, w, 3), i % 255, np.uint8)

    src = FrameSource.from_frames(gen(), w, h, total_frames=frames)
    t0 = time.perf_counter()
    n = 0
    with PredictionWriter(json_path, {"dataset_name": "h36m"}) as out:
        for res in pipe.stream(src):
            out.write_frame(res.frame_index, json_instances(res, "mmpose"))
            n += 1
    dt = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"frames": n, "seconds": dt, "peak_rss_mb": peak_kb / 1024.0, "persons": persons}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--persons", type=int, default=3)
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="200 and 2,000 frames (a smoke run; writes memory.quick.*)")
    args = ap.parse_args(argv)
    if args.quick:
        args.frames = [200, 2000]
    if args.child is not None:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(_child(args.child, args.persons, str(Path(tmp) / "out.json"))))
        return 0
    rows = []
    for n in args.frames:
        out = subprocess.run([sys.executable, "-m", "benchmarks.memory", "--child", str(n), "--persons",
                              str(args.persons)], check=True, capture_output=True, text=True,
                             cwd=str(Path(__file__).resolve().parent.parent))
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = rows[0]["peak_rss_mb"]
    for r in rows:
        r["delta_vs_first_mb"] = r["peak_rss_mb"] - base
    lines = ["| frames | persons | peak RSS (MB) | Δ vs first (MB) | s | frames/s |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['frames']} | {r['persons']} | {r['peak_rss_mb']:.1f} | {r['delta_vs_first_mb']:+.1f} "
                     f"| {r['seconds']:.1f} | {r['frames'] / r['seconds']:.0f} |")
    table = "\n".join(lines)
    write_report(RESULTS, "memory.quick" if args.quick else "memory", rows, "# Memory: peak RSS vs stream length (synthetic engines)\n\n" + table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
