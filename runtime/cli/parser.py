"""The ``pose3d-rt`` argument parser: every sub-command's flags, help and examples.

The commands themselves live beside it: :mod:`.export` (``export``, ``build-engine``), :mod:`.run` (``run``),
:mod:`.demo` (``demo``), :mod:`.quantize` (``quantize``), :mod:`.models` (``models list|fetch|path``),
:mod:`.bench` (``bench``, from the checkout's ``benchmarks/`` folder); :mod:`.main` dispatches and turns errors
into one line.
"""
from __future__ import annotations

import argparse

from .._version import __version__
from ..hub.registry import default_alias
from ..hub.roles import Role
from .argtypes import batch_or_dynamic, nonneg_float, positive_int
from .batch import add_batch_parser
from .bench import benchmarks_module
from .inferencer import add_inferencer_parser

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

_QUANTIZE_EXAMPLES = """\
examples:
  pose3d-rt quantize rtmdet_m.onnx --calib video.mp4 -o rtmdet_m.int8.onnx
  pose3d-rt quantize rtmpose_m.onnx --calib frames/ --frames 64 --det rtmdet_m.onnx   # crops of rtmdet_m's boxes
  pose3d-rt run video.mp4 --det rtmdet_m.int8.onnx --pose2d rtmpose_m.int8.onnx --output-root out

Static INT8 (ONNX QDQ): Conv and MatMul only, weights per channel; box decoding and SimCC logits stay FP32.
Calibration tensors are made by the pipeline's own preprocessing from the first --frames frames of --calib
(a detector: the letterboxed frames; a 2D model: the crops of the persons an FP32 detector finds). The next
--holdout frames compare INT8 with FP32: box IoU, score difference, missed/extra boxes; keypoint error in
pixels, share within 2 px. The report is printed and saved as MODEL.int8.report.json beside the output.
The INT8 file keeps the FP32 file's metadata (plus precision=int8): it works everywhere an .onnx does, fastest
on the backend its --layout is made for (default: --device's): onnxruntime quantizes each Conv's output too
(ONNX Runtime fuses it into an integer convolution), openvino leaves it in float (OpenVINO fuses the activation
into the INT8 convolution; MODEL.int8-openvino.onnx).
This command does not take lifters; `run --precision int8` quantizes a VideoPose3D lifter dynamically (weights
INT8, no calibration). Needs the onnx package (extra [quantize]), not torch.
"""

_BENCH_EXAMPLES = """\
examples:
  pose3d-rt bench --input video.mp4 --json                       # run's default models, one JSON object on stdout
  pose3d-rt bench --det rtmdet_m.pth --pose2d rtmpose_m.pth --lifter vp3d_243.pth --input video.mp4 \\
                  --device openvino --precision int8 --det-interval 5 --threads 2 --json
  pose3d-rt bench --synthetic --repeats 3          # host code only (scripted engines), no models needed

The baseline is the mmpose demo's way, measured in the same run (mode mmpose: square letterbox, detection every
frame, flip test, fixed-point crop warp, a fresh 243-frame window per person and frame; FP32 ONNX Runtime); the
JSON has det_ms, pose2d_ms_per_crop, lifter_ms_per_person_frame, e2e_fps, baseline_fps and speedup.
`make bench` runs the full comparison on the fixture models.
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
    p.add_argument("--device", default="cpu", help="cpu | cuda[:N] | tensorrt[:N] | openvino[:CPU|GPU|NPU] (default cpu)")
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


def add_run_options(p: argparse.ArgumentParser) -> None:
    """``run``'s model and output flags (all but INPUT), shared with ``batch``: a new run flag goes here."""
    p.add_argument(Role.DETECTOR.flag, default=None, metavar="M",
                   help=f"person detector (RTMDet): alias, path or URL (default {_default_alias(Role.DETECTOR)})")
    p.add_argument(Role.POSE2D.flag, default=None, metavar="M",
                   help=f"2D pose model (RTMPose): alias, path or URL (default {_default_alias(Role.POSE2D)})")
    p.add_argument(Role.LIFTER.flag, default=None, metavar="M",
                   help=f"3D lifter (VideoPose3D): alias, path or URL, or 'none' for 2D only "
                   f"(default {_default_alias(Role.LIFTER)})")
    add_demo_flags(p)
    p.add_argument("--precision", choices=("fp32", "int8", "bf16"), default="fp32",
                   help="fp32 (default) or int8: the detector and the 2D model run as static INT8 (QDQ) files, "
                   "made once from the first 32 frames of INPUT and cached beside the FP32 exports in "
                   "$POSE3D_RT_HOME/onnx (needs the onnx package); a VideoPose3D lifter runs as dynamic INT8 "
                   "(weights INT8, no calibration), MotionBERT stays FP32. An .onnx already "
                   "quantized (pose3d-rt quantize) is used as is. bf16 (--device openvino): the detector and "
                   "the 2D model in OpenVINO's BF16 (fast on CPUs with AVX512-BF16 or AMX), the lifter in FP32")
    p.add_argument("--det-letterbox", choices=("rect", "square"), default=None,
                   help="detector input shape: 'rect' pads the resized frame to a multiple of 32 (default mode's "
                   "default; 640x384 for 16:9, ~40%% less work), 'square' pads to the model's square (mmpose mode, "
                   "always)")
    p.add_argument("--no-overlap", dest="overlap", action="store_false",
                   help="decode, draw, encode and write in the main thread instead of background threads "
                   "(same outputs; for debugging and A/B timing)")
    add_smooth_and_mocap_flags(p)


def add_smooth_and_mocap_flags(p: argparse.ArgumentParser) -> None:
    """``--smooth`` (pose3d_rt.smoothing) and the motion-capture files (pose3d_rt.io.mocap) of ``run``/``batch``."""
    from ..smoothing import DEFAULT_BETA, DEFAULT_MIN_CUTOFF

    p.add_argument("--smooth", action="store_true",
                   help="One-Euro temporal smoothing of the 2D and 3D keypoints, per track and joint, timed by the "
                   "video's timestamps (default mode only; off by default)")
    p.add_argument("--smooth-min-cutoff", type=nonneg_float, default=DEFAULT_MIN_CUTOFF, metavar="HZ",
                   help=f"--smooth: cut-off frequency of a still joint; lower = smoother (default {DEFAULT_MIN_CUTOFF})")
    p.add_argument("--smooth-beta", type=nonneg_float, default=DEFAULT_BETA, metavar="B",
                   help="--smooth: how fast the cut-off rises with speed (per body size per second); higher = "
                   f"less lag on fast moves (default {DEFAULT_BETA})")
    p.add_argument("--save-trc", action="store_true",
                   help="write results_<input>_track<ID>.trc per track: OpenSim markers (H36M-17 joints, mm, Y up)")
    p.add_argument("--save-bvh", action="store_true",
                   help="write results_<input>_track<ID>.bvh per track: a skeleton rooted at the pelvis with fixed "
                   "bone lengths and per-frame rotations (cm, Y up; Blender, MotionBuilder)")
    p.add_argument("--save-csv", action="store_true",
                   help="write results_<input>.csv: one row per frame, track and H36M-17 joint (2D px, score, 3D m)")


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
    p.add_argument("--batch", type=batch_or_dynamic, default="dynamic", help="'dynamic' (default) or a fixed batch size")
    p.add_argument("--nms", action="store_true", help="detector only: append in-graph NMS (outputs dets, labels)")
    p.add_argument(
        "--form",
        choices=("strided", "dilated", "stream"),
        default=None,
        help="lifter only: 'strided' = one window -> one frame (default), 'dilated' = a sequence -> T-RF+1 frames, "
        "'stream' = frame by frame with per-layer state inputs/outputs (what `run` uses in default mode)",
    )
    p.add_argument("--dynamic-hw", action="store_true",
                   help="detector only: any input height/width (multiples of 32), for rectangular letterboxes")
    p.add_argument("--causal", action="store_true",
                   help="lifter only: causal TCN (target = last frame of the window; from the config's causal=True, "
                   "not stored in checkpoints)")
    p.add_argument("--window", type=positive_int, default=None,
                   help="MotionBERT only: the longest clip the graph declares (default: the checkpoint's temp_embed "
                   "length, 243); more than that is an error")

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
    p.add_argument("--fp16", action="store_true",
                   help="FP16 (ScaleNorm and GAU layers, and MotionBERT's LayerNorm and Softmax, stay FP32)")
    p.add_argument("--max-batch", type=positive_int, default=32, help="largest batch of the profile (default 32)")
    p.add_argument("--max-time", type=positive_int, default=None,
                   help="lifters with a dynamic time axis: longest sequence of the profile (dilated TCN: default "
                   "RF+255; MotionBERT: 1..window, default the window)")

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
    add_run_options(p)
    add_batch_parser(sub, add_run_options)
    add_inferencer_parser(sub)

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
        "quantize",
        help="INT8 copy of a detector or 2D pose .onnx, calibrated on your frames, with a fidelity report",
        description="Quantize an RTMDet or RTMPose ONNX file to static INT8 (QDQ) with ONNX Runtime, calibrated "
        "on the first --frames frames of --calib, and compare it with FP32 on the next --holdout frames.",
        epilog=_QUANTIZE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="the FP32 .onnx (RTMDet detector or RTMPose; `pose3d-rt export` makes one)")
    p.add_argument("--calib", default=None, metavar="INPUT",
                   help="calibration frames: a video, a folder of images, an image, a URL or webcam[:N]")
    p.add_argument("-o", "--output", default=None,
                   help="the INT8 .onnx to write (default: MODEL.int8.onnx beside MODEL; MODEL.int8-openvino.onnx "
                   "for --layout openvino)")
    p.add_argument("--frames", type=int, default=32, help="calibration frames: the first N of INPUT (default 32)")
    p.add_argument("--holdout", type=int, default=32,
                   help="frames after the calibration ones for the fidelity report (default 32; 0 = no report)")
    p.add_argument(Role.DETECTOR.flag, default=None, metavar="M",
                   help="2D models only: the FP32 detector whose boxes give the calibration crops: alias, path or "
                   f"URL (default {_default_alias(Role.DETECTOR)})")
    p.add_argument("--activations", choices=("uint8", "int8"), default="uint8",
                   help="activation type (default uint8; weights are always int8 per channel)")
    p.add_argument("--layout", choices=("onnxruntime", "openvino"), default=None,
                   help="the backend the QDQ placement is made for (default: from --device); both files run "
                   "everywhere, at that backend's best speed on its own layout")
    p.add_argument("--device", default="cpu",
                   help="where FP32 and INT8 are compared: cpu | cuda[:N] | openvino[:DEVICE] (default cpu)")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads per model")
    p.add_argument("--det-cat-id", type=int, default=0, help="detector class kept (default 0 = person)")
    p.add_argument("--bbox-thr", type=nonneg_float, default=0.3,
                   help="detector score threshold for the boxes compared and cropped (default 0.3)")
    p.add_argument("--no-progress", action="store_true", help="no download progress bar")

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
    q.add_argument("--role", choices=[r.value for r in Role], default=None, help="only this role")
    q = msub.add_parser("fetch", help="download a model (and export it to ONNX once)")
    q.add_argument("names", nargs="*", metavar="NAME", help="aliases or URLs")
    q.add_argument("--all-defaults", action="store_true", help="the three default models")
    q.add_argument("--no-export", action="store_true", help="download only (no ONNX export)")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q = msub.add_parser("path", help="print where an alias is (or would be) cached")
    q.add_argument("name", metavar="NAME", help="alias or URL")

    p = sub.add_parser(
        "bench",
        help="per-stage and end-to-end speed of a run configuration, against the mmpose-demo-equivalent baseline",
        description="Median of repeated runs per stage (detector per frame, 2D per crop, lifter per person-frame, "
        "visualization) and end-to-end FPS for run's models and options, with the mmpose demo's settings as the "
        "baseline of each stage, measured in the same run. A Markdown table, or --json.",
        epilog=_BENCH_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench = benchmarks_module()
    if bench is not None:
        bench.configure_parser(p)
    return parser


def _default_alias(role: Role) -> str:
    try:
        return default_alias(role)
    except Exception:  # the help text must never fail
        return "?"


__all__ = ["build_parser", "add_demo_flags", "add_run_options"]
