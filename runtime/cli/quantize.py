"""``pose3d-rt quantize MODEL.onnx --calib INPUT``: an INT8 (QDQ) copy of a detector or 2D pose model, calibrated
on the user's frames, with a fidelity report against FP32 (:mod:`pose3d_rt.calibration`)."""
from __future__ import annotations

import argparse
import sys

from ..errors import InputError


def cmd_quantize(args: argparse.Namespace) -> int:
    from ..calibration import quantize_model, report_path

    if not args.calib:
        raise InputError("--calib INPUT is required: the video, folder or image whose first --frames frames "
                         "calibrate the INT8 model")
    report = quantize_model(
        args.model, args.calib, args.output, frames=args.frames, holdout=args.holdout, det=args.det,
        activations=args.activations, layout=args.layout, device=args.device, threads=args.threads,
        det_cat_id=args.det_cat_id, bbox_thr=args.bbox_thr, progress=not args.no_progress,
    )
    print(report.table())
    print(f"pose3d-rt: wrote {report.output} and {report_path(report.output)}", file=sys.stderr)
    return 0


__all__ = ["cmd_quantize"]
