"""``pose3d-rt demo``: the mmpose demo's positional command line (three configs, three checkpoints).

The configs are read without mmengine (:mod:`pose3d_rt.mmconfig`); what they say becomes pipeline options
(:func:`~pose3d_rt.mmconfig.pipeline_options`, flags the user gave win), and where a config and the loaded model
disagree a warning says so (:func:`~pose3d_rt.mmconfig.model_mismatches`; the model is what runs).
"""
from __future__ import annotations

import argparse
import logging
from typing import Any, Callable, Dict, Optional

from ..hub import Role
from ..mmconfig import ModelConfig, load_optional, model_mismatches, pipeline_options
from .run import run_job

log = logging.getLogger("pose3d_rt")
DEMO_FLAGS = ("det_checkpoint", "pose_estimator_checkpoint", "pose_lifter_checkpoint")


def read_configs(args: argparse.Namespace) -> Dict[str, Optional[ModelConfig]]:
    """``{role: ModelConfig or None}`` from the three config arguments (a config missing locally is None)."""
    paths = {Role.DETECTOR: args.det_config, Role.POSE2D: args.pose_estimator_config,
             Role.LIFTER: args.pose_lifter_config}
    cfgs = {role.value: load_optional(path, role.value) for role, path in paths.items()}
    for role, cfg in cfgs.items():
        if cfg is not None:
            log.info("%s config %s: %s", role, cfg.source, cfg.known())
    return cfgs


def config_check(cfgs: Dict[str, Optional[ModelConfig]]) -> Callable[[Any], None]:
    """A check of the loaded pipeline against the configs: one warning per disagreement."""

    def check(pipe: Any) -> None:
        for message in model_mismatches(cfgs, pipe):
            log.warning("%s", message)

    return check


def cmd_demo(args: argparse.Namespace) -> int:
    cfgs = read_configs(args)
    return run_job(args, (args.det_checkpoint, args.pose_estimator_checkpoint, args.pose_lifter_checkpoint),
                   flags=DEMO_FLAGS, extra_options=pipeline_options(cfgs, args.flip_test), check_pipe=config_check(cfgs))


__all__ = ["cmd_demo", "config_check", "read_configs"]
