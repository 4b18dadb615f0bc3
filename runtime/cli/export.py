"""``pose3d-rt export`` (``.pth`` -> ONNX) and ``pose3d-rt build-engine`` (ONNX -> TensorRT).

Both reach the exporter (torch) through :mod:`pose3d_rt.hub.cache`, which says which extra is missing.
"""
from __future__ import annotations

import argparse
import logging

from ..hub import cache

log = logging.getLogger("pose3d_rt")


def cmd_export(args: argparse.Namespace) -> int:
    out = cache.export_onnx(
        args.checkpoint, args.output, arch=args.arch, opset=args.opset, batch=args.batch, nms=args.nms, form=args.form,
        causal=args.causal or None, dynamic_hw=args.dynamic_hw,
        **({"window": args.window} if getattr(args, "window", None) else {}),
    )
    log.info("wrote %s", out)
    print(out)
    return 0


def cmd_build_engine(args: argparse.Namespace) -> int:
    out = cache.build_engine(args.onnx, args.output, fp16=args.fp16, max_batch=args.max_batch,
                             **({"max_time": args.max_time} if getattr(args, "max_time", None) else {}))
    print(out)
    return 0
