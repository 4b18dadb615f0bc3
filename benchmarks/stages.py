"""Speed per stage and end to end with the fixture checkpoints on CPU ONNX Runtime, against the mmpose demo's
settings (flip test, a fresh 243-frame window per frame, one crop at a time), on the fixture video.

Rebuilds the fixture checkpoints (tests/fixtures/build_checkpoint.py, as tests/conftest.py does) into
``$POSE3D_RT_TEST_CACHE/checkpoints`` (default ``.cache/tests/checkpoints``) when missing, exports them to ONNX
once (cached by sha256 under ``$POSE3D_RT_HOME``, as the pipeline does for a .pth; needs the [export] extra) and
runs :mod:`pose3d_rt.bench` on ``tests/fixtures/inputs/synthetic_video.avi``, the video the reference timing of
the real demo (tests/fixtures/e2e/baseline_timing.json) was measured on.

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
from pathlib import Path
from typing import Dict

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
FIXTURES = REPO / "tests" / "fixtures"
VIDEO = FIXTURES / "inputs" / "synthetic_video.avi"
# the "heavy" combination of the reference demo run: (checkpoint name, role, export options of the pipeline)
MODELS = {
    "det": ("rtmdet_m_person", "detector", None),
    "pose2d": ("rtmpose_m_body8_256x192", "2D pose model", None),
    "lifter": ("videopose3d_243f_supv_cpn_ft", "lifter", {"form": "strided"}),
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
    from pose3d_rt.models import export_cached

    ckpts = build_checkpoints([m[0] for m in MODELS.values()], checkpoint_dir())
    return {key: export_cached(ckpts[name], role, opts) for key, (name, role, opts) in MODELS.items()}


def main(argv=None) -> int:
    from pose3d_rt.bench import cmd_bench, configure_parser

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    configure_parser(ap)
    ap.set_defaults(input=str(VIDEO), out=str(RESULTS), name="stages", **DEFAULTS)
    args = ap.parse_args(list(argv) if argv is not None else None)
    if not args.synthetic:
        exported = export_models()
        for key, path in exported.items():
            if getattr(args, key) is None:
                setattr(args, key, str(path))
    return cmd_bench(args)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.exit(main())
