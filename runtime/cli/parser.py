"""The ``pose3d-rt`` command line.

Sub-commands (each has ``--help`` with examples):

- ``pose3d-rt export CHECKPOINT -o OUT.onnx`` — official OpenMMLab ``.pth`` → ONNX (needs the ``[export]`` extra)
- ``pose3d-rt build-engine X.onnx -o X.engine`` — ONNX → TensorRT plan (needs the ``[trt]`` extra and a GPU)
- ``pose3d-rt run INPUT ...`` — the 3D pipeline on an image, a video, a folder, a URL or a camera
- ``pose3d-rt demo DET_CONFIG DET_CKPT POSE_CONFIG POSE_CKPT LIFT_CONFIG LIFT_CKPT --input ...`` — the mmpose
  demo's positional command line (configs read without mmengine)
- ``pose3d-rt models list | fetch NAME | path NAME`` — the model zoo
- ``pose3d-rt bench ...`` — per-stage and end-to-end speed against the mmpose-demo-equivalent baseline

A user error (bad file, bad flag) prints one line ``pose3d-rt: error: ...`` on stderr and exits with code 2.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import List, Optional, Sequence

from .._version import __version__
from ..errors import Pose3DError
from .argtypes import nonneg_float, positive_int

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


_RUN_EXAMPLES = """\
examples:
  pose3d-rt run video.mp4 --output-root out --save-predictions     # default models, fetched on first use
  pose3d-rt run video.mp4 --det rtmdet_m.onnx --pose2d rtmpose_m.onnx --lifter vp3d_243.onnx --output-root out
  pose3d-rt run frames/ --det rtmdet-nano-person --pose2d rtmpose-t --output-root out --online
  pose3d-rt run image.jpg --det det.pth --pose2d pose.pth --lifter lift.pth --output-root out --mode mmpose
  pose3d-rt run https://example.com/clip.mp4 --output-root out --lifter none       # 2D only
  pose3d-rt run webcam:0 --show --det-interval 3

A model is a zoo alias (`pose3d-rt models list`), a path (.pth / .onnx / .engine) or an http(s) URL of a .pth.
"""

_DEMO_EXAMPLES = """\
examples:
  # the mmpose demo's command line, with only the program name changed
  pose3d-rt demo \\
    demo/mmdetection_cfg/rtmdet_m_640-8xb32_coco-person.py \\
    https://download.openmmlab.com/mmpose/v1/projects/rtmpose/rtmdet_m_8xb32-100e_coco-obj365-person-235e8209.pth \\
    configs/body_2d_keypoint/rtmpose/body8/rtmpose-m_8xb256-420e_body8-256x192.py \\
    https://download.openmmlab.com/mmpose/v1/projects/rtmposev1/rtmpose-m_simcc-body7_pt-body7_420e-256x192-e48f03d0_20230504.pth \\
    configs/body_3d_keypoint/video_pose_lift/h36m/video-pose-lift_tcn-243frm-supv-cpn-ft_8xb128-200e_h36m.py \\
    https://download.openmmlab.com/mmpose/body3d/videopose/videopose_h36m_243frames_fullconv_supervised_cpn_ft-88f5abbb_20210527.pth \\
    --input video.mp4 --output-root vis_results --save-predictions --mode mmpose

Config files are read without mmengine (never executed) for the fields that matter: detector test_cfg
thresholds, the pose model's flip_test, the lifter's causal flag and sequence length. A config that does not
exist locally is skipped with a warning (the checkpoint's own metadata is used). Checkpoints may be paths, URLs
or zoo aliases.
"""

_BENCH_EXAMPLES = """\
examples:
  pose3d-rt bench --det rtmdet_m.onnx --pose2d rtmpose_m.onnx --lifter vp3d_243.onnx --input video.mp4
  pose3d-rt bench --det rtmdet_m.onnx --pose2d rtmpose_m.onnx --stages det,pose2d --batch-sizes 1,8,32
  pose3d-rt bench --synthetic --repeats 3          # host code only (scripted engines), no models needed

Each stage's baseline row is the mmpose demo's way (flip test, one crop per call, a fresh 243-frame window per
person and frame, mode="mmpose" end to end); ratios are against it. `make bench` runs it on the fixture models.
"""

_MODELS_EXAMPLES = """\
examples:
  pose3d-rt models list
  pose3d-rt models list --role lifter
  pose3d-rt models fetch rtmpose-m            # download (resumable, hash-checked) and export to ONNX once
  pose3d-rt models fetch --all-defaults
  pose3d-rt models path videopose3d-243f-supv-cpn-ft

Files go to $POSE3D_RT_HOME (default ~/.cache/pose3d_rt). VideoPose3D weights are CC BY-NC 4.0 (non-commercial).
"""


def add_demo_flags(p: argparse.ArgumentParser) -> None:
    """The flags of mmpose's body3d_pose_lifter_demo.py, same names and defaults, plus pose3d-rt's own."""
    p.add_argument("--show", action="store_true", help="display the visualization (non-blocking; Esc/q quits)")
    p.add_argument("--disable-rebase-keypoint", action="store_true",
                   help="do not shift each 3D pose so that its lowest joint is at Z=0")
    p.add_argument("--disable-norm-pose-2d", action="store_true",
                   help="do not normalise 2D poses to the lifter dataset's mean box before lifting")
    p.add_argument("--num-instances", type=int, default=1, help="3D skeletons drawn beside the frame (0: none; negative: as many as the first frame has; default 1)")
    p.add_argument("--output-root", default="", help="folder for the visualization and predictions")
    p.add_argument("--save-predictions", action="store_true", help="write results_<input>.json")
    p.add_argument("--save-npz", action="store_true", help="write results_<input>.npz (arrays)")
    p.add_argument("--device", default="cpu", help="cpu | cuda[:N] | tensorrt[:N] (default cpu)")
    p.add_argument("--det-cat-id", type=int, default=0, help="detector class kept (default 0 = person)")
    p.add_argument("--bbox-thr", type=nonneg_float, default=0.3, help="detector score threshold (default 0.3)")
    p.add_argument("--kpt-thr", type=nonneg_float, default=0.3, help="keypoint score threshold for drawing")
    p.add_argument("--use-oks-tracking", action="store_true", help="track by OKS instead of IoU")
    p.add_argument("--tracking-thr", type=nonneg_float, default=0.3, help="tracking similarity threshold")
    p.add_argument("--show-interval", type=nonneg_float, default=0, help="seconds to hold each shown frame")
    p.add_argument("--thickness", type=int, default=1, help="2D line width")
    p.add_argument("--radius", type=int, default=3, help="2D keypoint radius")
    p.add_argument("--online", action="store_true",
                   help="zero-latency lifting (frozen future) instead of exact lifting delayed by the model's context")
    p.add_argument("--mode", choices=("default", "mmpose"), default="default",
                   help="default: corrected pipeline; mmpose: reproduce the mmpose demo's numbers, quirks included")
    p.add_argument("--flip-test", action=argparse.BooleanOptionalAction, default=None,
                   help="RTMPose flip test (default: on in --mode mmpose, off in default mode; "
                   "for `demo`, the pose config's flip_test)")
    p.add_argument("--det-interval", type=positive_int, default=1,
                   help="run the detector every N frames; boxes from the tracked poses in between")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads per model")
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
    p.add_argument("--opset", type=positive_int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--batch", type=_batch_arg, default="dynamic", help="'dynamic' (default) or a fixed batch size")
    p.add_argument("--nms", action="store_true", help="detector only: append in-graph NMS (outputs dets, labels)")
    p.add_argument(
        "--form",
        choices=("strided", "dilated"),
        default=None,
        help="lifter only: 'strided' = one window -> one frame (default), 'dilated' = a sequence -> T-RF+1 frames",
    )
    p.add_argument("--causal", action="store_true",
                   help="lifter only: causal TCN (target = last frame of the window; from the config's causal=True, "
                   "not stored in checkpoints)")

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
    p.add_argument("--max-batch", type=positive_int, default=32, help="largest batch of the profile (default 32)")

    p = sub.add_parser(
        "run",
        help="3D pose on an image, a video, a folder of images, a URL or a camera",
        description="Detect persons, estimate their 2D keypoints, track them and lift them to 3D. "
        "INPUT is an image, a video, a folder of images (sorted), an http(s)/rtsp URL, or webcam[:N]. "
        "Models are .onnx, .engine or .pth paths (a .pth is exported once and cached).",
        epilog=_RUN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", help="image | video | folder | http(s)/rtsp URL | webcam[:N]")
    p.add_argument("--det", default=None, metavar="M",
                   help=f"person detector (RTMDet): alias, path or URL (default {_default_alias('detector')})")
    p.add_argument("--pose2d", default=None, metavar="M",
                   help=f"2D pose model (RTMPose): alias, path or URL (default {_default_alias('pose2d')})")
    p.add_argument("--lifter", default=None, metavar="M",
                   help=f"3D lifter (VideoPose3D): alias, path or URL, or 'none' for 2D only "
                   f"(default {_default_alias('lifter')})")
    add_demo_flags(p)

    p = sub.add_parser(
        "demo",
        help="the mmpose demo's positional command line (configs + checkpoints)",
        description="body3d_pose_lifter_demo.py's command line: the same positional arguments and flags. "
        "Configs are read without mmengine; checkpoints are paths, URLs or zoo aliases.",
        epilog=_DEMO_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("det_config", help="mmdet config of the detector (.py; may be missing locally)")
    p.add_argument("det_checkpoint", help="detector checkpoint: path, URL or alias")
    p.add_argument("pose_estimator_config", help="mmpose config of the 2D model (.py; may be missing locally)")
    p.add_argument("pose_estimator_checkpoint", help="2D model checkpoint: path, URL or alias")
    p.add_argument("pose_lifter_config", help="mmpose config of the lifter (.py; may be missing locally)")
    p.add_argument("pose_lifter_checkpoint", help="lifter checkpoint: path, URL or alias")
    p.add_argument("--input", type=str, default="", help="image | video | folder | URL | webcam[:N]")
    add_demo_flags(p)

    p = sub.add_parser(
        "models",
        help="the model zoo: list aliases, fetch (download + export), print cached paths",
        description="Official OpenMMLab checkpoints by alias. Downloads retry, resume, check the sha256 prefix "
        "carried in the file name and land atomically in $POSE3D_RT_HOME (default ~/.cache/pose3d_rt).",
        epilog=_MODELS_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    q = msub.add_parser("list", help="aliases, roles, licences, input sizes; * = default, [cached] = downloaded")
    q.add_argument("--role", choices=("detector", "pose2d", "lifter"), default=None, help="only this role")
    q = msub.add_parser("fetch", help="download a model (and export it to ONNX once)")
    q.add_argument("names", nargs="*", metavar="NAME", help="aliases or URLs")
    q.add_argument("--all-defaults", action="store_true", help="the three default models")
    q.add_argument("--no-export", action="store_true", help="download only (no ONNX export)")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q = msub.add_parser("path", help="print where an alias is (or would be) cached")
    q.add_argument("name", metavar="NAME", help="alias or URL")

    p = sub.add_parser(
        "bench",
        help="per-stage and end-to-end speed, with the mmpose-demo-equivalent baseline and ratios",
        description="Median of repeated runs per stage (detector, 2D per batch of crops, lifter per person-frame, "
        "visualization) and end-to-end FPS, with the mmpose demo's settings as the baseline of each stage. "
        "Results as JSON and a Markdown table.",
        epilog=_BENCH_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench = _benchmarks()
    if bench is not None:
        bench.configure_parser(p)
    return parser


def _benchmarks():
    """The benchmarking code lives in the source checkout's ``benchmarks/`` folder, not in the package: import it
    from there (None when pose3d-rt is installed from a wheel)."""
    try:
        import benchmarks.bench as bench
    except ImportError:
        root = Path(__file__).resolve().parents[2]
        if not (root / "benchmarks" / "bench.py").is_file():
            return None
        sys.path.insert(0, str(root))
        import benchmarks.bench as bench
    return bench


def _cmd_export(args: argparse.Namespace) -> int:
    try:
        from ..export import export_onnx  # lazy: torch is imported only here
    except ImportError as exc:  # torch or onnx missing
        raise Pose3DError(
            f"exporting needs the [export] extra (torch, onnx): pip install 'pose3d-rt[export]' ({exc})"
        ) from None
    out = export_onnx(
        args.checkpoint, args.output, arch=args.arch, opset=args.opset, batch=args.batch, nms=args.nms, form=args.form,
        causal=args.causal or None,
    )
    log.info("wrote %s", out)
    print(out)
    return 0


def _cmd_build_engine(args: argparse.Namespace) -> int:
    try:
        from ..export.trt_build import build_engine
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


def _default_alias(role: str) -> str:
    try:
        from ..hub import registry as zoo

        return zoo.default_alias(role)
    except Exception:  # the help text must never fail
        return "?"


ROLES = ("detector", "pose2d", "lifter")


def _model_args(models: Sequence[Optional[str]], flags: Sequence[str]):
    """``(arg, role, flag)`` of each model to load: ``None`` becomes the role's default alias; ``--lifter none``
    (2D only) is left out."""
    from ..hub import registry as zoo

    out = []
    for arg, role, flag in zip(models, ROLES, flags):
        if arg is None:
            arg = zoo.default_alias(role)
            log.info("%s: using the default model %s", flag, arg)
        if not (role == "lifter" and str(arg).strip().lower() == "none"):
            out.append((arg, role, flag))
    return out


def _flagged(flag: str, call, *a, **kw):
    """``call(*a, **kw)``, with ``flag`` put in front of the message of a user error."""
    try:
        return call(*a, **kw)
    except Pose3DError as exc:
        raise type(exc)(f"{flag}: {exc}") from None


def _run_job(args: argparse.Namespace, det: Optional[str], pose2d: Optional[str], lifter: Optional[str],
             flags: Sequence[str] = ("--det", "--pose2d", "--lifter"), extra_options: Optional[dict] = None,
             check=None) -> int:
    from ..job import run
    from ..pipeline import Pose3DPipeline

    if args.save_predictions and not args.output_root:
        raise Pose3DError("--save-predictions needs --output-root")
    from ..engines.onnxruntime import parse_device
    from ..hub import registry as zoo

    _flagged("--device", parse_device, args.device)
    opts = _pipeline_options(args)
    opts.update(extra_options or {})
    progress = not args.no_progress
    models = _model_args((det, pose2d, lifter), flags)
    for arg, role, flag in models:
        _flagged(flag, zoo.check_model_arg, arg, role)  # typos and wrong roles fail before any download

    def factory():
        paths = {role: str(_flagged(flag, zoo.resolve_model, arg, role, progress=progress))
                 for arg, role, flag in models}
        pipe = Pose3DPipeline(paths["detector"], paths["pose2d"], paths.get("lifter"), device=args.device,
                              mode=args.mode, threads=args.threads, **opts)
        if check is not None:
            check(pipe)
        return pipe

    visualizer = None
    if args.output_root or args.show:
        try:
            from ..visualize import Visualizer
        except ImportError:  # pragma: no cover - visualize is part of the package
            Visualizer = None
        if Visualizer is not None:
            visualizer = Visualizer(kpt_thr=args.kpt_thr, radius=args.radius, thickness=args.thickness,
                                    num_instances=args.num_instances)
    if not args.input:
        raise Pose3DError("no input: give an image, a video, a folder, a URL or webcam[:N]")
    summary = run(factory, args.input, output_root=args.output_root or None, save_predictions=args.save_predictions,
                  save_npz=args.save_npz, show=args.show, visualizer=visualizer, progress=progress,
                  show_interval=args.show_interval)
    for p in (summary.video_path, summary.json_path, summary.npz_path):
        if p is not None and p.exists():
            print(f"pose3d-rt: wrote {p}", file=sys.stderr)
    if summary.error:
        print(f"pose3d-rt: warning: {summary.error}", file=sys.stderr)
    print(f"pose3d-rt: {summary.frames} frames, {summary.persons} person detections, {summary.fps:.1f} FPS"
          + (" (interrupted)" if summary.interrupted else ""), file=sys.stderr)
    return 130 if summary.interrupted else 0


def _cmd_run(args: argparse.Namespace) -> int:
    return _run_job(args, args.det, args.pose2d, args.lifter)


def _demo_options(cfgs: dict, args: argparse.Namespace) -> dict:
    """Pipeline options taken from the configs (flags the user gave win)."""
    out: dict = {}
    det, pose, lift = cfgs.get("detector"), cfgs.get("pose2d"), cfgs.get("lifter")
    if det is not None:
        for src, dst in (("score_thr", "det_score_thr"), ("nms_iou_threshold", "det_nms_iou_thr"),
                         ("nms_pre", "det_nms_pre"), ("max_per_img", "det_max_per_img")):
            value = getattr(det, src)
            if value is not None:
                out[dst] = value
    if pose is not None and pose.flip_test is not None and args.flip_test is None:
        out["flip_test"] = bool(pose.flip_test)
    if lift is not None and lift.causal is not None:
        out["causal"] = bool(lift.causal)
    return out


def _demo_check(cfgs: dict):
    """Warn where a config and the loaded model disagree (the model is what runs)."""

    def check(pipe) -> None:
        det, pose, lift = cfgs.get("detector"), cfgs.get("pose2d"), cfgs.get("lifter")
        if det is not None and det.input_size is not None:
            hw = tuple(pipe.detector.input_hw)
            if (hw[1], hw[0]) != tuple(det.input_size):
                log.warning("detector config %s says input size %s but the model takes %dx%d; using the model's",
                            det.source, "x".join(map(str, det.input_size)), hw[1], hw[0])
        if pose is not None and pose.input_size is not None:
            size = getattr(pipe.pose2d, "input_size", None)
            if size is not None and tuple(size) != tuple(pose.input_size):
                log.warning("pose config %s says input size %s but the model takes %s; using the model's",
                            pose.source, tuple(pose.input_size), tuple(size))
        spec = pipe.lifter_spec
        if lift is not None and spec is not None:
            rf = spec.receptive_field
            want = lift.seq_len if lift.seq_len and lift.seq_len > 1 else lift.receptive_field
            if want is not None and int(rf) != int(want):
                log.warning("lifter config %s says %d frames but the checkpoint's receptive field is %d; using %d",
                            lift.source, want, rf, rf)

    return check


def _cmd_demo(args: argparse.Namespace) -> int:
    from ..mmconfig.evaluator import load_optional

    cfgs = {
        "detector": load_optional(args.det_config, "detector"),
        "pose2d": load_optional(args.pose_estimator_config, "pose2d"),
        "lifter": load_optional(args.pose_lifter_config, "lifter"),
    }
    for role, cfg in cfgs.items():
        if cfg is not None:
            log.info("%s config %s: %s", role, cfg.source, cfg.known())
    return _run_job(args, args.det_checkpoint, args.pose_estimator_checkpoint, args.pose_lifter_checkpoint,
                    flags=("det_checkpoint", "pose_estimator_checkpoint", "pose_lifter_checkpoint"),
                    extra_options=_demo_options(cfgs, args), check=_demo_check(cfgs))


def _cmd_models(args: argparse.Namespace) -> int:
    from ..hub import registry as zoo

    action = args.models_command
    if action is None or action == "list":
        entries = zoo.list_models(getattr(args, "role", None))
        print(zoo.describe(entries))
        return 0
    if action == "path":
        print(zoo.path(args.name))
        return 0
    names = list(args.names)
    if args.all_defaults:
        names += [zoo.default_alias(r) for r in ("detector", "pose2d", "lifter")]
    if not names:
        raise Pose3DError("models fetch: give one or more aliases or URLs, or --all-defaults")
    for name in names:
        if args.no_export or zoo.is_url(name):  # a bare URL has no known role to export it for
            out = zoo.fetch(name, progress=not args.no_progress)
        else:
            out = zoo.fetch_and_export(name, progress=not args.no_progress)
        print(out)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    bench = _benchmarks()
    if bench is None:
        raise Pose3DError("bench runs from a source checkout (its benchmarks/ folder is not part of the package)")
    return bench.cmd_bench(args)


_COMMANDS = {"export": _cmd_export, "build-engine": _cmd_build_engine, "run": _cmd_run, "demo": _cmd_demo,
             "models": _cmd_models, "bench": _cmd_bench}


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
    if args.command in ("run", "demo"):
        _terminate_as_interrupt()
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
