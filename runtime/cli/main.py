"""The ``pose3d-rt`` command line: :func:`main` parses, dispatches to the command, and ends a user error in one line.

Sub-commands (each has ``--help`` with examples):

- ``pose3d-rt export CHECKPOINT -o OUT.onnx`` — official OpenMMLab ``.pth`` → ONNX (needs the ``[export]`` extra)
- ``pose3d-rt build-engine X.onnx -o X.engine`` — ONNX → TensorRT plan (needs the ``[trt]`` extra and a GPU)
- ``pose3d-rt run INPUT ...`` — the 3D pipeline on an image, a video, a folder, a URL or a camera
- ``pose3d-rt demo DET_CONFIG DET_CKPT POSE_CONFIG POSE_CKPT LIFT_CONFIG LIFT_CKPT --input ...`` — the mmpose
  demo's positional command line (configs read without mmengine)
- ``pose3d-rt quantize MODEL.onnx --calib INPUT`` — an INT8 (QDQ) copy of a detector or 2D model, calibrated on
  the user's frames, with a fidelity report against FP32
- ``pose3d-rt models list | fetch NAME | path NAME`` — the model zoo
- ``pose3d-rt inferencer INPUT [--pose3d human3d] ...`` — mmpose's ``inferencer_demo.py`` (MotionBERT), its
  numbers in ``--mode mmpose`` (default), the corrected pipeline in ``--mode default``
- ``pose3d-rt batch INPUT... --output-root DIR`` — ``run`` on many videos (local process pool or Ray), finished
  videos skipped on rerun, ``DIR/batch_summary.json``
- ``pose3d-rt bench ...`` — per-stage and end-to-end speed against the mmpose-demo-equivalent baseline
  (the source checkout's ``benchmarks/`` folder)

A user error (bad file, bad flag) prints one line ``pose3d-rt: error: ...`` on stderr and exits with code 2.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Callable, Dict, List, Optional, Sequence

from ..errors import Pose3DError
from .batch import cmd_batch
from .bench import cmd_bench
from .demo import cmd_demo
from .export import cmd_build_engine, cmd_export
from .inferencer import cmd_inferencer
from .models import cmd_models
from .parser import build_parser
from .quantize import cmd_quantize
from .run import cmd_run

COMMANDS: Dict[str, Callable[[argparse.Namespace], int]] = {
    "export": cmd_export, "build-engine": cmd_build_engine, "run": cmd_run, "demo": cmd_demo, "models": cmd_models,
    "bench": cmd_bench, "quantize": cmd_quantize, "inferencer": cmd_inferencer,
    "batch": cmd_batch,
}


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _terminate_as_interrupt() -> None:
    """SIGTERM (``kill``, a container stop) ends a run like Ctrl-C: outputs are closed, the video stays playable."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)


def main(argv: Optional[Sequence[str]] = None) -> int:
    # OpenCV's own warnings (camera probing, FFmpeg connection errors) would duplicate our one-line errors.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if args.command in ("run", "demo", "inferencer", "batch"):
        _terminate_as_interrupt()
    try:
        return COMMANDS[args.command](args)
    except Pose3DError as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"pose3d-rt: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pose3d-rt: interrupted", file=sys.stderr)
        return 130


def entry(argv: Optional[List[str]] = None) -> None:  # pragma: no cover - console_scripts shim
    sys.exit(main(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
