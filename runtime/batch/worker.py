"""One batch worker: the models loaded once, then one video after another, each exactly as ``run`` does it.

:class:`VideoWorker` is what a process of the local pool keeps (:mod:`.local`) and what a Ray actor is
(:mod:`.ray_pool`). Per video it calls :func:`pose3d_rt.job.run` with ``run``'s own helpers
(:func:`~pose3d_rt.cli.run.check_job`, :func:`~pose3d_rt.cli.run.pipeline_factory` once per worker,
:func:`~pose3d_rt.cli.run.run_options` per video), so a video's outputs are the bytes
``pose3d-rt run VIDEO <options> --output-root DIR/<key>`` writes. They are written into a staging folder, the record
is written once every output is closed, and the folder is then moved to ``DIR/<key>`` (:mod:`.manifest`).
"""
from __future__ import annotations

import argparse
import copy
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from ..errors import Pose3DError
from .inputs import VideoTask
from .manifest import VideoResult, failed, fingerprint, promote, staging_dir, write_record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobSpec:
    """What every worker needs: ``run``'s parsed flags (``input`` = the batch's first video: the calibration input
    of ``--precision int8``), the (detector, 2D, lifter) model arguments, the batch's DIR and the options recorded
    in each video's manifest."""

    args: argparse.Namespace
    models: Tuple[Optional[str], Optional[str], Optional[str]]
    output_root: str
    options: Dict[str, Any]


def build_pipeline(spec: JobSpec) -> Any:
    """``run``'s pipeline for these flags: models resolved (downloaded, exported, loaded) once."""
    from ..cli.run import check_job, pipeline_factory

    choices, options = check_job(spec.args, spec.models)
    return pipeline_factory(spec.args, choices, options, None)()


def error_line(exc: BaseException) -> str:
    """One line for the summary: a pose3d-rt error's own message, else the exception type and message."""
    text = str(exc).strip().splitlines()
    msg = text[0] if text else ""
    if isinstance(exc, Pose3DError):
        return msg or type(exc).__name__
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


class VideoWorker:
    """Loads the models once (``spec``); :meth:`process` runs one video and returns its summary line. A model
    that cannot be loaded makes every video fail with that error (the driver checks the models first, so this
    is rare: a cluster node without the model file, a GPU missing)."""

    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec
        self.root = Path(spec.output_root)
        self.pipeline: Any = None
        self.load_error: Optional[str] = None
        try:
            self.pipeline = build_pipeline(spec)
        except Exception as exc:  # noqa: BLE001 - reported per video, see the class docstring
            self.load_error = f"loading the models failed: {error_line(exc)}"
            log.error("%s", self.load_error)

    def process(self, task: VideoTask) -> VideoResult:
        if self.load_error is not None:
            return failed(task, self.load_error, 0.0)
        t0 = time.perf_counter()
        staging = staging_dir(self.root, task.key)
        try:
            summary, print_ = self._run(task, staging)
        except Exception as exc:  # noqa: BLE001 - one failing video must not stop the batch
            log.debug("%s failed", task.input, exc_info=True)
            shutil.rmtree(staging, ignore_errors=True)
            return failed(task, error_line(exc), time.perf_counter() - t0)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        problem = "interrupted" if summary.interrupted else summary.error
        seconds = time.perf_counter() - t0
        if problem:
            shutil.rmtree(staging, ignore_errors=True)
            return VideoResult(task.input, "failed", summary.frames, summary.persons, seconds, problem)
        write_record(staging, task, print_, self.spec.options, summary.frames, summary.persons, seconds)
        final = self.root / task.key
        promote(staging, final)
        return VideoResult(task.input, "ok", summary.frames, summary.persons, seconds, None, str(final))

    def _run(self, task: VideoTask, staging: Path) -> Tuple[Any, Dict[str, Any]]:
        from ..cli.run import run_options
        from ..job import run

        print_ = fingerprint(task)  # before the run: the record describes the bytes that were processed
        args = copy.copy(self.spec.args)
        args.input, args.output_root, args.no_progress = task.input, str(staging), True
        pipeline = self.pipeline
        return run(lambda: pipeline, task.input, **run_options(args)), print_


__all__ = ["JobSpec", "VideoWorker", "build_pipeline", "error_line"]
