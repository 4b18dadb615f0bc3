"""``pose3d-rt inferencer INPUT [--pose3d human3d] ...``: mmpose's ``demo/inferencer_demo.py`` command line with the
program name changed (the flags of mmpose 1.3.2, same names and defaults), plus ``--mode``.

``--mode mmpose`` (the default of this command) reproduces the Inferencer's numbers, quirks included
(docs/spec/inferencer.md I1-I10); ``--mode default`` is the normal pose3d-rt pipeline with the same models and
output files. The work is in :mod:`pose3d_rt.inferencer`; this module has the flags and the report.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from ..errors import InputError
from .argtypes import nonneg_float, positive_int

log = logging.getLogger("pose3d_rt")

_EXAMPLES = """\
examples:
  # the reference page's command, with only the program name changed
  pose3d-rt inferencer tests/data/coco/000000000785.jpg --pose3d human3d --vis-out-dir vis_results/human3d
  # explicit configs and checkpoints, predictions as JSON (one file per image / video)
  pose3d-rt inferencer video.mp4 --pose3d motionbert_dstformer-ft-243frm_8xb32-120e_h36m.py \\
      --pose3d-weights motionbert_ft_h36m-d80af323_20230531.pth --pose2d rtmpose-m_8xb256-420e_body8-256x192.py \\
      --pose2d-weights rtmpose-m.pth --det-model rtmdet_m_640-8xb32_coco-person.py --det-weights rtmdet_m.pth \\
      --det-cat-ids 0 --pred-out-dir out
  # the same command, with the product's corrections (tracking, 243-frame clips, 2D scores as input)
  pose3d-rt inferencer video.mp4 --pred-out-dir out --mode default

--mode mmpose (default) gives mmpose's Inferencer numbers, quirks included: every person gets a new id in every
frame and MotionBERT sees one frame at a time with a constant confidence channel. Outputs: --pred-out-dir D writes
D/<image stem>.json (a list of instances) or D/<video stem>.json ([{"frame_id", "instances"}], 0-based);
--vis-out-dir D writes the 2D + 3D drawing as D/<input file name>. 3D values are in "metres" only through
MotionBERT's fixed factor 4 (mm per pixel at 1000 px width); see README.
"""

# flags of inferencer_demo.py that have no effect on the 3D Inferencer (not in Pose3DInferencer's kwarg sets)
_DROPPED = ("draw_heatmap", "skeleton_style", "black_background", "pose_based_nms")


def _truthy(arg: str) -> bool:
    """``--pose-based-nms``'s value parser in inferencer_demo.py."""
    return arg.lower() in ("true", "yes", "t", "y", "1")


def _model_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="?", default=None, help="image | folder of images | video | URL | webcam[:N]")
    p.add_argument("--pose2d", default=None, help="2D model: mmpose alias (human, body, body17), zoo alias, model "
                   "name or config .py (default human = RTMPose-m body8)")
    p.add_argument("--pose2d-weights", default=None, help="2D checkpoint: path, URL or zoo alias")
    p.add_argument("--pose3d", default=None, help="3D lifter: mmpose alias (human3d), zoo alias, model name or "
                   "config .py (default human3d = MotionBERT ft H36M)")
    p.add_argument("--pose3d-weights", default=None, help="3D lifter checkpoint: path, URL or zoo alias")
    p.add_argument("--det-model", default=None, help="detector: zoo alias, model name, config .py, or whole_image "
                   "(default: RTMDet-m person)")
    p.add_argument("--det-weights", default=None, help="detector checkpoint: path, URL or zoo alias")
    p.add_argument("--det-cat-ids", type=int, nargs="+", default=None,
                   help="detector class ids kept (default 0; ignored with the default detector, as in mmpose)")
    p.add_argument("--scope", default="mmpose", help="accepted for compatibility (no registries here)")
    p.add_argument("--device", default=None, help="cpu | cuda[:N] | tensorrt[:N] | openvino[:X] (default cpu)")
    p.add_argument("--show-progress", action="store_true", help="accepted for compatibility")


def _call_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--show", action="store_true", help="display the visualization")
    p.add_argument("--draw-bbox", action="store_true", help="draw the person boxes")
    p.add_argument("--draw-heatmap", action="store_true", help="no effect for 3D (as in mmpose)")
    p.add_argument("--bbox-thr", type=nonneg_float, default=0.3, help="detector score threshold (default 0.3)")
    p.add_argument("--nms-thr", type=nonneg_float, default=0.3, help="box NMS IoU threshold (default 0.3)")
    p.add_argument("--pose-based-nms", type=_truthy, default=False, help="no effect for 3D (as in mmpose)")
    p.add_argument("--kpt-thr", type=nonneg_float, default=0.3, help="keypoint score threshold for drawing")
    p.add_argument("--tracking-thr", type=nonneg_float, default=0.3, help="tracking threshold")
    p.add_argument("--use-oks-tracking", action="store_true", help="track by OKS instead of IoU")
    p.add_argument("--disable-norm-pose-2d", action="store_true",
                   help="do not map each 2D pose onto the lifter dataset's mean box before lifting")
    p.add_argument("--disable-rebase-keypoint", action="store_true", help="no per-frame Z rebase of the 3D poses")
    p.add_argument("--num-instances", type=int, default=1, help="3D poses drawn (negative: all of the frame)")
    p.add_argument("--radius", type=int, default=3, help="keypoint radius for visualization")
    p.add_argument("--thickness", type=int, default=1, help="link thickness for visualization")
    p.add_argument("--skeleton-style", default="mmpose", choices=("mmpose", "openpose"),
                   help="no effect for 3D (as in mmpose)")
    p.add_argument("--black-background", action="store_true", help="no effect for 3D (as in mmpose)")
    p.add_argument("--vis-out-dir", default="", help="folder (or, for a video or one image, file) for drawings")
    p.add_argument("--pred-out-dir", default="", help="folder for the predictions JSON")
    p.add_argument("--show-alias", action="store_true", help="list the model aliases and exit")


def add_inferencer_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``inferencer`` on the ``pose3d-rt`` sub-parsers."""
    p = sub.add_parser(
        "inferencer",
        help="mmpose's inferencer_demo.py (--pose3d human3d: MotionBERT) without mmlab",
        description="mmpose's demo/inferencer_demo.py for 3D: detect, 2D pose, lift with MotionBERT. The same "
        "flags and defaults; configs are read without mmengine. --mode mmpose (default) reproduces mmpose's "
        "numbers; --mode default is pose3d-rt's corrected pipeline.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _model_flags(p)
    _call_flags(p)
    p.add_argument("--mode", choices=("mmpose", "default"), default="mmpose",
                   help="mmpose (default): the Inferencer's numbers; default: tracking and clip lifting")
    p.add_argument("--flip-test", action=argparse.BooleanOptionalAction, default=None,
                   help="RTMPose flip test (default: the pose config's, else on)")
    p.add_argument("--online", action="store_true", help="default mode: each frame lifted from the window ending "
                   "at it (no delay)")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads per model")
    p.add_argument("--no-progress", action="store_true", help="no download progress bar")
    return p


def _show_alias() -> int:
    from ..hub.registry import list_models
    from ..inferencer.models import MMPOSE_ALIASES

    rows = [(a, f"{z} (zoo)") for aliases in MMPOSE_ALIASES.values() for a, z in aliases.items()]
    rows += [(e.alias, e.config.rsplit("/", 1)[-1][:-3] if e.config else e.file_name) for e in list_models()]
    width = max(len(a) for a, _ in rows) + 2
    print(f'{"ALIAS".ljust(width)}MODEL_NAME')
    for alias, name in sorted(rows):
        print(f"{alias.ljust(width)}{name}")
    return 0


def _report(summary: Any) -> int:
    for p in (summary.json_paths + summary.vis_paths)[:20]:
        print(f"pose3d-rt: wrote {p}", file=sys.stderr)
    print(f"pose3d-rt: {summary.inputs} input(s), {summary.frames} frames, {summary.persons} person detections, "
          f"{summary.fps:.1f} FPS" + (" (interrupted)" if summary.interrupted else ""), file=sys.stderr)
    return 130 if summary.interrupted else 0


def cmd_inferencer(args: argparse.Namespace) -> int:
    from ..engines.onnxruntime import parse_device
    from ..inferencer import (
        EngineOptions,
        InferencerOptions,
        OutputOptions,
        build_default,
        build_mmpose,
        inferencer_models,
        run_inferencer,
    )
    from .run import flagged

    if args.show_alias:
        return _show_alias()
    if not args.inputs:
        raise InputError("no input: give an image, a folder of images, a video, a URL or webcam[:N]")
    device = args.device or "cpu"
    flagged("--device", parse_device, device)
    for name in _DROPPED:
        if getattr(args, name) not in (False, "mmpose"):
            log.info("--%s has no effect on 3D inference (mmpose drops it too)", name.replace("_", "-"))
    models = inferencer_models(args.pose3d, args.pose3d_weights, args.pose2d, args.pose2d_weights, args.det_model,
                               args.det_weights, args.det_cat_ids)
    options = InferencerOptions(bbox_thr=args.bbox_thr, nms_thr=args.nms_thr, det_cat_ids=models.det_cat_ids,
                                disable_norm_pose_2d=args.disable_norm_pose_2d,
                                disable_rebase_keypoint=args.disable_rebase_keypoint)
    options.validate()
    eng = EngineOptions(device=device, threads=args.threads, progress=not args.no_progress)
    if args.mode == "mmpose":
        def factory():
            return build_mmpose(models, options, eng, flip_test=args.flip_test)
    else:
        def factory():
            return build_default(models, options, eng, flip_test=args.flip_test, tracking_thr=args.tracking_thr,
                                 use_oks_tracking=args.use_oks_tracking, online=args.online)
    visualizer = None
    if args.vis_out_dir or args.show:
        from ..job import check_show_supported
        from ..visualize import Visualizer

        if args.show:
            check_show_supported()
        visualizer = Visualizer(kpt_thr=args.kpt_thr, radius=args.radius, thickness=args.thickness,
                                num_instances=args.num_instances, draw_bbox=args.draw_bbox)
    out = OutputOptions(pred_out_dir=args.pred_out_dir, vis_out_dir=args.vis_out_dir, visualizer=visualizer,
                        show=args.show)
    return _report(run_inferencer(factory, args.inputs, out, mode=args.mode))


__all__ = ["add_inferencer_parser", "cmd_inferencer"]
