"""MotionBERT (DSTformer, 243 frames) lifting cost on this machine: milliseconds per person-frame.

What the runtime's clip lifter (pose3d_rt.lifters.motionbert_stream) runs, network plus flip/decode, on the
fixture checkpoint's ONNX export (ONNX Runtime, CPU, its default threads):

- one 243-frame clip, and the clips of 4 tracks batched into one engine call, with and without the flip test
  (flip doubles the batch: ``[x; flip(x)]`` in one call);
- 4 tracks whose clips have different lengths (243, 200, 150, 100 frames): grouped by length (one call per length,
  exact) against padded to 243 frames (one call; the edge padding changes the attention, so it is not exact);
- the streaming lifter end to end (MotionBERTLifter.update/flush) on 4 tracks x 486 frames (2 clips each).

Online mode runs one 243-frame window per person and frame, so its per person-frame cost is the single-clip call
time (not divided by 243).

    python -m benchmarks.motionbert              # writes benchmarks/results/motionbert.json and .md
    python -m benchmarks.motionbert --lifter X   # another MotionBERT .pth / .onnx / alias
"""
from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from benchmarks.core import RESULTS, write_report

FIXTURE_MODEL = "motionbert_dstformer_243f_ft_h36m"
log = logging.getLogger("benchmarks.motionbert")


def _engine(lifter: Optional[str], threads: Optional[int]) -> Any:
    from pose3d_rt.hub import Role, lifter_export_options, resolve

    if lifter is None:
        from benchmarks.stages import build_checkpoints, checkpoint_dir

        lifter = str(build_checkpoints([FIXTURE_MODEL], checkpoint_dir())[FIXTURE_MODEL])
    # the pipeline's export options, so the cached export is the one `pose3d-rt run` uses
    return resolve(lifter, Role.LIFTER, threads=threads, export_options=lifter_export_options(mode="default"))


def _time(fn: Callable[[], Any], repeats: int, warmup: int) -> List[Tuple[float, float]]:
    """``(wall s, process CPU s)`` per run; the CPU time (all threads) is what a person-frame costs even when
    other processes share the cores."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0, time.process_time() - c0))
    return out


def _clips(tracks: int, frames: int, seed: int = 0) -> np.ndarray:
    """Encoded inputs ``(tracks, frames, 17, 3)``: random walks in the normalised space, scores in [0.3, 1]."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-0.3, 0.3, (tracks, 1, 17, 2)) + np.cumsum(rng.normal(0, 0.003, (tracks, frames, 1, 2)), 1)
    sc = rng.uniform(0.3, 1.0, (tracks, frames, 17, 1))
    return np.concatenate([xy, sc], -1).astype(np.float32)


def _row(case: str, flip: bool, person_frames: int, calls: int, runs: Sequence[Tuple[float, float]]
         ) -> Dict[str, Any]:
    wall, cpu = (np.array([r[i] for r in runs]) for i in (0, 1))
    med, cpu_med = float(np.median(wall)), float(np.median(cpu))
    return {"case": case, "flip": flip, "person_frames": person_frames, "engine_calls": calls,
            "median_s": med, "min_s": float(wall.min()), "cpu_median_s": cpu_med, "runs": len(runs),
            "ms_per_person_frame": med * 1e3 / person_frames,
            "cpu_ms_per_person_frame": cpu_med * 1e3 / person_frames}


def measure_clips(engine: Any, window: int, repeats: int, warmup: int) -> List[Dict[str, Any]]:
    """Single clip and 4 batched clips of ``window`` frames, with and without flip; mixed lengths grouped/padded."""
    from pose3d_rt.lifters.motionbert import MotionBERTModel, decode

    rows = []
    for flip in (False, True):
        m = MotionBERTModel(engine, flip=flip, max_frames=8 * window)
        for tracks in (1, 4):
            x = _clips(tracks, window)
            secs = _time(lambda m=m, x=x: decode(m.infer(x), 1000, 1000), repeats, warmup)
            rows.append(_row(f"{tracks} track(s) x {window} frames, one call", flip, tracks * window, 1, secs))
            log.info("%s", rows[-1])
    m = MotionBERTModel(engine, flip=True, max_frames=8 * window)
    lengths = [window, int(window * 0.82), int(window * 0.62), int(window * 0.41)]
    xs = [_clips(1, n, seed=i) for i, n in enumerate(lengths)]
    padded = np.concatenate([np.pad(x, ((0, 0), (0, window - x.shape[1]), (0, 0), (0, 0)), mode="edge") for x in xs])
    secs = _time(lambda: [m.infer(x) for x in xs], repeats, warmup)
    rows.append(_row(f"4 tracks, clips of {lengths} frames, grouped by length", True, sum(lengths), 4, secs))
    secs = _time(lambda: m.infer(padded), repeats, warmup)
    rows.append(_row(f"4 tracks, clips of {lengths} frames, padded to {window}", True, sum(lengths), 1, secs))
    return rows


def measure_stream(engine: Any, window: int, repeats: int, flip: bool = True) -> Dict[str, Any]:
    """MotionBERTLifter over 4 tracks x 2 clips (pixels in, display-frame 3D out)."""
    from pose3d_rt.lifters.motionbert import MAX_FRAMES_PER_CALL
    from pose3d_rt.lifters.motionbert_stream import MotionBERTLifter

    frames, tracks = 2 * window, 4
    rng = np.random.default_rng(1)
    kp = (rng.uniform(200, 400, (tracks, 1, 17, 2)) + np.cumsum(rng.normal(0, 1, (tracks, frames, 1, 2)), 1))
    kp = kp.astype(np.float32)
    sc = rng.uniform(0.3, 1.0, (tracks, frames, 17)).astype(np.float32)
    ids = np.arange(tracks)

    def run():
        lifter = MotionBERTLifter(engine, flip=flip, clip_frames=window, norm_pose_2d=False, frame_size=(640, 480))
        n = sum(len(lifter.update(kp[:, t], ids, scores_2d=sc[:, t])) for t in range(frames))
        return n + len(lifter.flush())

    secs = _time(run, repeats, 0)
    per_call = max(1, MAX_FRAMES_PER_CALL // ((2 if flip else 1) * window))  # clips per engine call
    calls = 2 * -(-tracks // per_call)  # two rounds of clips
    return _row(f"MotionBERTLifter, {tracks} tracks x {frames} frames", flip, tracks * frames, calls, secs)


def _markdown(report: Dict[str, Any]) -> str:
    lines = [f"# MotionBERT lifting cost ({report['model']}, ONNX Runtime CPU, {report['cpus']} CPUs)", "",
             "| case | flip | person-frames | engine calls | median s | ms / person-frame | CPU ms / person-frame |",
             "|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        lines.append(f"| {r['case']} | {'yes' if r['flip'] else 'no'} | {r['person_frames']} | {r['engine_calls']} "
                     f"| {r['median_s']:.2f} | {r['ms_per_person_frame']:.2f} | {r['cpu_ms_per_person_frame']:.2f} |")
    lines += ["", f"Load average at the start: {report['load_average']}. CPU ms = process CPU time (all threads) "
              "per person-frame; wall ms / person-frame on an idle machine is about CPU ms / cores.",
              "Online mode: one window per person and frame, i.e. the single-clip call time per person-frame.", ""]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lifter", help="a MotionBERT .pth / .onnx / zoo alias (default: the fixture checkpoint)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (default: all cores)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    ap.add_argument("--quick", action="store_true", help="1 run, 27-frame clips (a smoke run; motionbert.quick.*)")
    args = ap.parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from pose3d_rt.lifters.motionbert import MotionBERTModel

    load = [round(v, 2) for v in os.getloadavg()]
    engine = _engine(args.lifter, args.threads)
    window = MotionBERTModel(engine).spec.window
    if args.quick:
        args.repeats, args.warmup, window = 1, 0, min(window, 27)
    rows = measure_clips(engine, window, args.repeats, args.warmup)
    rows.append(measure_stream(engine, window, max(1, args.repeats - 2)))
    log.info("%s", rows[-1])
    report = {"model": args.lifter or FIXTURE_MODEL, "window": window, "cpus": os.cpu_count(), "rows": rows,
              "load_average": load}
    md = _markdown(report)
    write_report(args.out, "motionbert.quick" if args.quick else "motionbert", report, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
