"""``pose3d-rt run INPUT``, and the job wiring it shares with ``demo``.

A job: check every model argument without network access (typos and wrong roles fail before any download),
then :func:`pose3d_rt.job.run` opens the input and calls the pipeline factory, which resolves each model with
:func:`pose3d_rt.hub.resolve` (download, export, load) and builds the :class:`~pose3d_rt.pipeline.Pose3DPipeline`.
"""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

from ..errors import Pose3DError
from ..hub import Role, check, default_alias, detector_export_options, lifter_export_options, resolve

log = logging.getLogger("pose3d_rt")
T = TypeVar("T")
RUN_FLAGS = tuple(role.flag for role in Role)  # --det, --pose2d, --lifter


@dataclass(frozen=True)
class ModelChoice:
    """One model of a job: what the user passed (or the default alias), its role and the flag that took it."""

    arg: str
    role: Role
    flag: str


def flagged(flag: str, call: Callable[..., T], *a: Any, **kw: Any) -> T:
    """``call(*a, **kw)``, with ``flag`` put in front of the message of a user error."""
    try:
        return call(*a, **kw)
    except Pose3DError as exc:
        raise type(exc)(f"{flag}: {exc}") from None


def model_choices(models: Sequence[Optional[str]], flags: Sequence[str] = RUN_FLAGS) -> List[ModelChoice]:
    """The detector, 2D and lifter arguments as :class:`ModelChoice`s, checked without network access; ``None``
    becomes the role's default alias. Errors name the flag."""
    out = []
    for arg, role, flag in zip(models, Role, flags):
        if arg is None:
            arg = default_alias(role)
            log.info("%s: using the default model %s", flag, arg)
        flagged(flag, check, arg, role)
        out.append(ModelChoice(str(arg), role, flag))
    return out


def pipeline_options(args: argparse.Namespace) -> Dict[str, Any]:
    """``Pose3DPipeline`` options from the flags ``run`` and ``demo`` share."""
    return dict(
        det_cat_id=args.det_cat_id, bbox_thr=args.bbox_thr, flip_test=args.flip_test,
        use_oks_tracking=args.use_oks_tracking, tracking_thr=args.tracking_thr,
        norm_pose_2d=not args.disable_norm_pose_2d, rebase_keypoint=not args.disable_rebase_keypoint,
        online=args.online, det_interval=args.det_interval, kpt_thr=args.kpt_thr,
        **({"det_letterbox": args.det_letterbox} if getattr(args, "det_letterbox", None) else {}),
        **{k: getattr(args, k) for k in ("smooth", "smooth_min_cutoff", "smooth_beta") if hasattr(args, k)},
    )


def _with_precision(args: argparse.Namespace, models: Sequence[ModelChoice],
                    lifter_options: Optional[Dict[str, Any]] = None) -> Sequence[ModelChoice]:
    """``--precision int8``: the detector and the 2D model replaced by their INT8 files, made once (calibrated on
    the first frames of the run's input) beside the cached FP32 exports (:func:`pose3d_rt.calibration.int8_models`);
    a VideoPose3D lifter by its dynamic INT8 file (:func:`pose3d_rt.calibration.int8_lifter`)."""
    if getattr(args, "precision", "fp32") != "int8":
        return models
    from ..calibration import int8_lifter, int8_models

    by_role = {m.role: m for m in models}
    int8 = dict(zip((Role.DETECTOR, Role.POSE2D), int8_models(
        by_role[Role.DETECTOR].arg, by_role[Role.POSE2D].arg, args.input, mode=args.mode, device=args.device,
        threads=args.threads, progress=not args.no_progress)))
    lifter = by_role.get(Role.LIFTER)
    if lifter is not None and str(lifter.arg).lower() != "none":
        int8[Role.LIFTER] = flagged(lifter.flag, int8_lifter, lifter.arg, lifter_options, device=args.device,
                                    progress=not args.no_progress)
    return [ModelChoice(str(int8[m.role]), m.role, m.flag) if m.role in int8 else m for m in models]


def pipeline_factory(args: argparse.Namespace, models: Sequence[ModelChoice], options: Dict[str, Any],
                     check_pipe: Optional[Callable[[Any], None]]) -> Callable[[], Any]:
    """The pipeline factory :func:`pose3d_rt.job.run` calls once the input is open."""

    def factory():
        from ..calibration import precision_engine_options
        from ..pipeline import Pose3DPipeline

        export_options = {Role.DETECTOR: detector_export_options(args.mode),
                          Role.LIFTER: lifter_export_options(options.get("causal"), mode=args.mode,
                                                             online=bool(options.get("online")))}
        chosen = _with_precision(args, models, export_options[Role.LIFTER])
        networks = precision_engine_options(getattr(args, "precision", "fp32"), args.device)
        engines = {
            m.role: flagged(m.flag, resolve, m.arg, m.role, device=args.device, threads=args.threads,
                            export_options=export_options.get(m.role), progress=not args.no_progress,
                            engine_options=None if m.role is Role.LIFTER else networks)
            for m in chosen
        }
        pipe = Pose3DPipeline(engines[Role.DETECTOR], engines[Role.POSE2D], engines[Role.LIFTER], device=args.device,
                              mode=args.mode, threads=args.threads, **options)
        if check_pipe is not None:
            check_pipe(pipe)
        return pipe

    return factory


def _visualizer(args: argparse.Namespace) -> Any:
    if not (args.output_root or args.show):
        return None
    from ..visualize import Visualizer

    return Visualizer(kpt_thr=args.kpt_thr, radius=args.radius, thickness=args.thickness,
                      num_instances=args.num_instances)


def _report(summary: Any) -> int:
    for p in (summary.video_path, summary.json_path, summary.npz_path, *getattr(summary, "mocap_paths", ())):
        if p is not None and p.exists():
            print(f"pose3d-rt: wrote {p}", file=sys.stderr)
    if summary.error:
        print(f"pose3d-rt: warning: {summary.error}", file=sys.stderr)
    print(f"pose3d-rt: {summary.frames} frames, {summary.persons} person detections, {summary.fps:.1f} FPS"
          + (" (interrupted)" if summary.interrupted else ""), file=sys.stderr)
    return 130 if summary.interrupted else 0


def _check_lifter_mode(mode: str, choices: Sequence[ModelChoice]) -> None:
    """mmpose mode with a MotionBERT zoo alias: a one-line error before anything is downloaded (a MotionBERT
    file is refused the same way once loaded, by the pipeline)."""
    from ..hub.registry import lookup

    for m in choices:
        entry = lookup(m.arg) if m.role is Role.LIFTER and mode == "mmpose" else None
        if entry is not None and entry.family == "motionbert":
            from ..lifters.motionbert_stream import MMPOSE_MODE_MESSAGE

            raise Pose3DError(f"{m.flag} {m.arg}: {MMPOSE_MODE_MESSAGE}")


def _check_smooth_and_mocap(args: argparse.Namespace, models: Sequence[Optional[str]]) -> None:
    if getattr(args, "smooth", False) and args.mode == "mmpose":
        raise Pose3DError("--smooth: --mode mmpose reproduces the mmpose demo, which does not smooth; "
                          "use the default mode to smooth")
    mocap = [f for f in ("--save-trc", "--save-bvh", "--save-csv") if getattr(args, f[2:].replace("-", "_"), False)]
    if mocap and not args.output_root:
        raise Pose3DError(f"{mocap[0]} needs --output-root")
    lifter = models[2] if len(models) > 2 else None
    needs_3d = [f for f in mocap if f != "--save-csv"]
    if str(lifter).lower() == "none" and needs_3d:
        raise Pose3DError(f"{needs_3d[0]}: needs 3D joints, but --lifter none stops at 2D")
    if getattr(args, "smooth", False):
        from ..smoothing import SmoothingParams

        flagged("--smooth", SmoothingParams(args.smooth_min_cutoff, args.smooth_beta).validate)


def check_job(args: argparse.Namespace, models: Sequence[Optional[str]], flags: Sequence[str] = RUN_FLAGS,
              extra_options: Optional[Dict[str, Any]] = None) -> Tuple[List[ModelChoice], Dict[str, Any]]:
    """Every check of a job's flags, nothing loaded: (the model choices, the pipeline options);
    ``extra_options`` override the flags' pipeline options."""
    from ..engines.onnxruntime import parse_device

    if args.save_predictions and not args.output_root:
        raise Pose3DError("--save-predictions needs --output-root")
    _check_smooth_and_mocap(args, models)
    flagged("--device", parse_device, args.device)
    if getattr(args, "precision", "fp32") == "bf16":
        from ..calibration import precision_engine_options

        flagged("--precision", precision_engine_options, "bf16", args.device)
    if getattr(args, "det_letterbox", None) == "rect" and args.mode == "mmpose":
        raise Pose3DError("--det-letterbox rect: mmpose mode letterboxes to the square, as the demo does")
    options = pipeline_options(args)
    options.update(extra_options or {})
    choices = model_choices(models, flags)
    _check_lifter_mode(args.mode, choices)
    return choices, options


def run_options(args: argparse.Namespace) -> Dict[str, Any]:
    """:func:`pose3d_rt.job.run`'s keyword arguments (all but the input) from the output flags; a fresh
    visualizer per call (``batch`` calls it once per video)."""
    return dict(output_root=args.output_root or None, save_predictions=args.save_predictions,
                save_npz=args.save_npz, show=args.show, visualizer=_visualizer(args),
                **{k: getattr(args, k) for k in ("save_trc", "save_bvh", "save_csv") if hasattr(args, k)},
                progress=not args.no_progress, show_interval=args.show_interval,
                overlap=getattr(args, "overlap", True))


def run_job(args: argparse.Namespace, models: Sequence[Optional[str]], flags: Sequence[str] = RUN_FLAGS,
            extra_options: Optional[Dict[str, Any]] = None,
            check_pipe: Optional[Callable[[Any], None]] = None) -> int:
    """Run the pipeline over ``args.input`` with the (detector, 2D, lifter) ``models`` given by ``flags``;
    ``extra_options`` override the flags' pipeline options; ``check_pipe(pipe)`` runs once the models are loaded.
    ``batch`` does the same per video (:func:`check_job`, :func:`pipeline_factory` once, :func:`run_options`)."""
    from ..job import run

    choices, options = check_job(args, models, flags, extra_options)
    if not args.input:
        raise Pose3DError("no input: give an image, a video, a folder, a URL or webcam[:N]")
    summary = run(pipeline_factory(args, choices, options, check_pipe), args.input, **run_options(args))
    return _report(summary)


def cmd_run(args: argparse.Namespace) -> int:
    return run_job(args, (args.det, args.pose2d, args.lifter))


__all__ = ["ModelChoice", "RUN_FLAGS", "check_job", "cmd_run", "flagged", "model_choices", "pipeline_factory",
           "pipeline_options", "run_job", "run_options"]
