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


_RUN_EXAMPLES = """\
examples:
  pose3d-rt run video.mp4 --det rtmdet_m.onnx --pose2d rtmpose_m.onnx --lifter vp3d_243.onnx --output-root out --save-predictions
  pose3d-rt run frames/ --det det.onnx --pose2d pose.onnx --lifter lift.onnx --output-root out --online
  pose3d-rt run image.jpg --det det.pth --pose2d pose.pth --lifter lift.pth --output-root out --mode mmpose
  pose3d-rt run webcam:0 --det det.onnx --pose2d pose.onnx --lifter lift.onnx --show
"""


def _nonneg_float(value: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not (v >= 0):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value!r}")
    return v


def add_demo_flags(p: argparse.ArgumentParser) -> None:
    """The flags of mmpose's body3d_pose_lifter_demo.py, same names and defaults, plus pose3d-rt's own."""
    p.add_argument("--show", action="store_true", help="display the visualization (non-blocking; Esc/q quits)")
    p.add_argument("--disable-rebase-keypoint", action="store_true",
                   help="do not shift each 3D pose so that its lowest joint is at Z=0")
    p.add_argument("--disable-norm-pose-2d", action="store_true",
                   help="do not normalise 2D poses to the lifter dataset's mean box before lifting")
    p.add_argument("--num-instances", type=int, default=1, help="3D skeletons drawn (negative: all; default 1)")
    p.add_argument("--output-root", default="", help="folder for the visualization and predictions")
    p.add_argument("--save-predictions", action="store_true", help="write results_<input>.json")
    p.add_argument("--save-npz", action="store_true", help="write results_<input>.npz (arrays)")
    p.add_argument("--device", default="cpu", help="cpu | cuda[:N] | tensorrt[:N] (default cpu)")
    p.add_argument("--det-cat-id", type=int, default=0, help="detector class kept (default 0 = person)")
    p.add_argument("--bbox-thr", type=_nonneg_float, default=0.3, help="detector score threshold (default 0.3)")
    p.add_argument("--kpt-thr", type=_nonneg_float, default=0.3, help="keypoint score threshold for drawing")
    p.add_argument("--use-oks-tracking", action="store_true", help="track by OKS instead of IoU")
    p.add_argument("--tracking-thr", type=_nonneg_float, default=0.3, help="tracking similarity threshold")
    p.add_argument("--show-interval", type=_nonneg_float, default=0, help="seconds to hold each shown frame")
    p.add_argument("--thickness", type=int, default=1, help="2D line width")
    p.add_argument("--radius", type=int, default=3, help="2D keypoint radius")
    p.add_argument("--online", action="store_true",
                   help="zero-latency lifting (frozen future) instead of exact lifting delayed by the model's context")
    p.add_argument("--mode", choices=("default", "mmpose"), default="default",
                   help="default: corrected pipeline; mmpose: reproduce the mmpose demo's numbers, quirks included")
    p.add_argument("--flip-test", action="store_true", default=None,
                   help="RTMPose flip test (on by default in --mode mmpose, off in default mode)")
    p.add_argument("--det-interval", type=_positive_int, default=1,
                   help="run the detector every N frames; boxes from the tracked poses in between")
    p.add_argument("--threads", type=_positive_int, default=None, help="CPU threads per model")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


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

    p = sub.add_parser(
        "run",
        help="3D pose on an image, a video, a folder of images, a URL or a camera",
        description="Detect persons, estimate their 2D keypoints, track them and lift them to 3D. "
        "INPUT is an image, a video, a folder of images (sorted), an http(s)/rtsp URL, or webcam[:N]. "
        "Models are .onnx, .engine or .pth paths (a .pth is exported once and cached).",
        epilog=_RUN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", help="image | video | folder | URL | webcam[:N]")
    p.add_argument("--det", required=True, help="person detector (RTMDet): .onnx, .engine or .pth")
    p.add_argument("--pose2d", required=True, help="2D pose model (RTMPose): .onnx, .engine or .pth")
    p.add_argument("--lifter", default=None, help="3D lifter (VideoPose3D): .onnx, .engine or .pth (omit for 2D only)")
    add_demo_flags(p)
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


def _pipeline_options(args: argparse.Namespace) -> dict:
    return dict(
        det_cat_id=args.det_cat_id, bbox_thr=args.bbox_thr, flip_test=args.flip_test,
        use_oks_tracking=args.use_oks_tracking, tracking_thr=args.tracking_thr,
        norm_pose_2d=not args.disable_norm_pose_2d, rebase_keypoint=not args.disable_rebase_keypoint,
        online=args.online, det_interval=args.det_interval, kpt_thr=args.kpt_thr,
    )


def _run_job(args: argparse.Namespace, det: str, pose2d: str, lifter: Optional[str]) -> int:
    from .app import run
    from .pipeline import Pose3DPipeline

    if args.save_predictions and not args.output_root:
        raise Pose3DError("--save-predictions needs --output-root")
    opts = _pipeline_options(args)

    def factory():
        return Pose3DPipeline(det, pose2d, lifter, device=args.device, mode=args.mode, threads=args.threads, **opts)

    visualizer = None
    if args.output_root or args.show:
        try:
            from .visualize import Visualizer
        except ImportError:  # pragma: no cover - visualize is part of the package
            Visualizer = None
        if Visualizer is not None:
            visualizer = Visualizer(kpt_thr=args.kpt_thr, radius=args.radius, thickness=args.thickness,
                                    num_instances=args.num_instances)
    summary = run(factory, args.input, output_root=args.output_root or None, save_predictions=args.save_predictions,
                  save_npz=args.save_npz, show=args.show, visualizer=visualizer, progress=not args.no_progress)
    for p in (summary.video_path, summary.json_path, summary.npz_path):
        if p is not None and p.exists():
            log.warning("wrote %s", p)
    if summary.error:
        print(f"pose3d-rt: warning: {summary.error}", file=sys.stderr)
    log.warning("%d frames, %d persons, %.1f FPS", summary.frames, summary.persons, summary.fps)
    return 130 if summary.interrupted else 0


def _cmd_run(args: argparse.Namespace) -> int:
    return _run_job(args, args.det, args.pose2d, args.lifter)


_COMMANDS = {"export": _cmd_export, "build-engine": _cmd_build_engine, "run": _cmd_run}


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
