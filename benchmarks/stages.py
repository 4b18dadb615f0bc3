"""Speed per stage and end to end with the fixture checkpoints on CPU ONNX Runtime, against the mmpose demo's
settings (flip test, a fresh 243-frame window per frame, one crop at a time), on the fixture video.

Rebuilds the fixture checkpoints (tests/fixtures/build_checkpoint.py, as tests/conftest.py does) into
``$POSE3D_RT_TEST_CACHE/checkpoints`` (default ``.cache/tests/checkpoints``) when missing, exports them to ONNX
once (cached by sha256 under ``$POSE3D_RT_HOME``, as the pipeline does for a .pth; needs the [export] extra) and
runs the ``pose3d-rt bench`` command (:mod:`benchmarks.bench`) on ``tests/fixtures/inputs/synthetic_video.avi``,
the video the reference timing of the real demo (tests/fixtures/e2e/baseline_timing.json) was measured on. Then
times the networks alone, ONNX Runtime against PyTorch (``kernels.json``/``.md``).

    python -m benchmarks.stages                 # writes benchmarks/results/stages.json and .md
    python -m benchmarks.stages --repeats 5     # any `pose3d-rt bench` option is accepted
    python -m benchmarks.stages --e2e-frames 0  # e2e over the whole video (64 frames) instead of the first 16
"""
from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict

from pose3d_rt.hub import Role, lifter_export_options

from benchmarks.bench import cmd_bench, configure_parser
from benchmarks.core import RESULTS, write_report

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
VIDEO = FIXTURES / "inputs" / "synthetic_video.avi"
# the "heavy" combination of the reference demo run: (checkpoint name, role, export options of the pipeline)
MODELS = {
    "det": ("rtmdet_m_person", Role.DETECTOR, None),
    "pose2d": ("rtmpose_m_body8_256x192", Role.POSE2D, None),
    "lifter": ("videopose3d_243f_supv_cpn_ft", Role.LIFTER, lifter_export_options()),
}
# Modest defaults, so that a run stays under 10 minutes on a busy 2-core machine (RTMDet-m at 640 costs 0.7-2 s
# per frame there): 3 runs per variant, and e2e over the first 16 frames of the video (--e2e-frames 0 = all 64).
DEFAULTS = dict(repeats=3, frames=4, crops=16, lift_frames=16, e2e_frames=16, warmup=1)

log = logging.getLogger("benchmarks.stages")


def checkpoint_dir() -> Path:
    return Path(os.environ.get("POSE3D_RT_TEST_CACHE", REPO / ".cache" / "tests")) / "checkpoints"


def build_checkpoints(names, out: Path) -> Dict[str, Path]:
    """``{name: .pth}``, rebuilt bit-exactly from the fixture recipe when missing (needs torch)."""
    missing = [n for n in names if not (out / f"{n}.pth").is_file()]
    if missing:
        out.mkdir(parents=True, exist_ok=True)
        log.info("rebuilding fixture checkpoints %s into %s", ", ".join(missing), out)
        subprocess.run([sys.executable, str(FIXTURES / "build_checkpoint.py"), *missing, "--out", str(out)],
                       check=True, cwd=str(FIXTURES))
    return {n: out / f"{n}.pth" for n in names}


def export_models() -> Dict[str, Path]:
    """``{det|pose2d|lifter: .onnx}`` exported from the fixture checkpoints (cached)."""
    from pose3d_rt.hub import export_cached

    ckpts = build_checkpoints([m[0] for m in MODELS.values()], checkpoint_dir())
    return {key: export_cached(ckpts[name], role, opts) for key, (name, role, opts) in MODELS.items()}


def kernels(ckpts: Dict[str, Path], onnx: Dict[str, Path], repeats: int = 5, crops: int = 8, tracks: int = 4) -> str:
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
    write_report(RESULTS, "kernels", {"rows": rows, "repeats": repeats}, text)
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    configure_parser(ap)
    ap.set_defaults(input=str(VIDEO), out=str(RESULTS), name="stages", **DEFAULTS)
    args = ap.parse_args(list(argv) if argv is not None else None)
    if args.synthetic:
        return cmd_bench(args)
    exported = export_models()
    for key, path in exported.items():
        if getattr(args, key) is None:
            setattr(args, key, str(path))
    code = cmd_bench(args)
    ckpts = build_checkpoints([m[0] for m in MODELS.values()], checkpoint_dir())
    log.warning("%s", kernels({key: ckpts[name] for key, (name, _, _) in MODELS.items()}, exported))
    return code


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.exit(main())
