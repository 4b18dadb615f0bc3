"""The ``pose3d-rt`` command line.

Sub-commands (each has ``--help`` with examples):

- ``pose3d-rt export CHECKPOINT -o OUT.onnx`` — official OpenMMLab ``.pth`` → ONNX (needs the ``[export]`` extra)
- ``pose3d-rt build-engine X.onnx -o X.engine`` — ONNX → TensorRT plan (needs the ``[trt]`` extra and a GPU)
- ``pose3d-rt run INPUT ...`` — the 3D pipeline on an image, a video, a folder or a camera

A user error (bad file, bad flag) prints one line ``pose3d-rt: error: ...`` on stderr and exits with code 2.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from ._version import __version__
from .errors import Pose3DError

log = logging.getLogger("pose3d_rt")

_EXPORT_EXAMPLES = """\
examples:
  pose3d-rt export rtmdet_m_8xb32-100e_coco-obj365-person-235e8209.pth -o rtmdet_m.onnx
  pose3d-rt export rtmpose-m_simcc-body7_pt-body7_420e-256x192-e48f03d0_20230504.pth -o rtmpose_m.onnx --batch 4
  pose3d-rt export videopose_h36m_243frames_fullconv_supervised_cpn_ft-88f5abbb_20210527.pth -o vp3d_243.onnx --form dilated
  pose3d-rt export rtmdet_nano.pth -o rtmdet_nano_nms.onnx --nms
"""

_BUILD_EXAMPLES = """\
examples:
  pose3d-rt build-engine rtmpose_m.onnx -o rtmpose_m.engine --fp16 --max-batch 32
  pose3d-rt build-engine rtmdet_m.onnx -o rtmdet_m.engine
"""


def _batch_arg(value: str):
    if value == "dynamic":
        return "dynamic"
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--batch must be 'dynamic' or a positive integer, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"--batch must be 'dynamic' or a positive integer, got {value!r}")
    return n


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return n


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pose3d-rt",
        description="3D human pose estimation (RTMDet -> RTMPose -> tracking -> VideoPose3D) without mmlab.",
    )
    parser.add_argument("--version", action="version", version=f"pose3d-rt {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "export",
        help="convert an official OpenMMLab checkpoint (.pth) to ONNX",
        description="Convert an official OpenMMLab .pth (RTMDet, RTMPose, VideoPose3D) to ONNX. "
        "The model family and variant are detected from the checkpoint's tensors. Needs the [export] extra.",
        epilog=_EXPORT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", help="the .pth file")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    p.add_argument("--arch", default=None, help="force a variant (e.g. rtmdet-m, rtmpose-m-256x192, tcn-243)")
    p.add_argument("--opset", type=_positive_int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--batch", type=_batch_arg, default="dynamic", help="'dynamic' (default) or a fixed batch size")
    p.add_argument("--nms", action="store_true", help="detector only: append in-graph NMS (outputs dets, labels)")
    p.add_argument(
        "--form",
        choices=("strided", "dilated"),
        default=None,
        help="lifter only: 'strided' = one window -> one frame (default), 'dilated' = a sequence -> T-RF+1 frames",
    )

    p = sub.add_parser(
        "build-engine",
        help="build a TensorRT engine from an ONNX file (needs a GPU and the [trt] extra)",
        description="Build a TensorRT 10 engine with an optimization profile for the dynamic batch. "
        "The engine file starts with a JSON header (TensorRT version, GPU, precision, profile, ONNX sha256) "
        "that the loader checks.",
        epilog=_BUILD_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("onnx", help="the .onnx file")
    p.add_argument("-o", "--output", required=True, help="the .engine file to write")
    p.add_argument("--fp16", action="store_true", help="FP16 (ScaleNorm and GAU layers stay FP32)")
    p.add_argument("--max-batch", type=_positive_int, default=32, help="largest batch of the profile (default 32)")
    return parser


def _cmd_export(args: argparse.Namespace) -> int:
    try:
        from .export import export_onnx  # lazy: torch is imported only here
    except ImportError as exc:  # torch or onnx missing
        raise Pose3DError(
            f"exporting needs the [export] extra (torch, onnx): pip install 'pose3d-rt[export]' ({exc})"
        ) from None
    out = export_onnx(
        args.checkpoint, args.output, arch=args.arch, opset=args.opset, batch=args.batch, nms=args.nms, form=args.form
    )
    log.info("wrote %s", out)
    print(out)
    return 0


def _cmd_build_engine(args: argparse.Namespace) -> int:
    try:
        from .export.trt_build import build_engine
    except ImportError as exc:
        raise Pose3DError(f"building engines needs the [export] and [trt] extras ({exc})") from None
    out = build_engine(args.onnx, args.output, fp16=args.fp16, max_batch=args.max_batch)
    print(out)
    return 0


_COMMANDS = {"export": _cmd_export, "build-engine": _cmd_build_engine}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return _COMMANDS[args.command](args)
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
