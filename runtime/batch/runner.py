"""A batch from start to end: expand the inputs, skip the videos already done, check the flags and models once,
hand the rest to the local pool or to Ray, then write ``DIR/batch_summary.json``.

The per-video work is ``run``'s (:mod:`.worker`); what is kept on disk is in :mod:`.manifest`.
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from .inputs import VideoTask, expand_inputs
from .manifest import VideoResult, clear_staging, done_record, failed, write_summary
from .worker import JobSpec, build_pipeline

log = logging.getLogger(__name__)

# Flags that do not change a video's outputs: a rerun with other values still skips the videos done.
NOT_OUTPUT_FLAGS = frozenset({"command", "verbose", "inputs", "input", "output_root", "workers", "ray", "force",
                              "no_progress", "show", "show_interval", "overlap", "threads"})
INTERRUPTED = "not run (the batch was interrupted)"


@dataclass
class BatchOptions:
    """How to run a batch: where (``output_root``), on how many workers, locally or on Ray (``ray``; ``ray_address``
    None = a local Ray runtime), and whether to redo the videos already done (``force``)."""

    output_root: Path
    workers: int = 1
    ray: bool = False
    ray_address: Optional[str] = None
    force: bool = False
    progress: bool = True

    @property
    def on_this_machine(self) -> bool:
        return not self.ray or self.ray_address is None


def options_record(args: argparse.Namespace) -> Dict[str, Any]:
    """The flags that make a video's outputs, as recorded in its manifest (JSON values)."""
    opts = {k: v for k, v in sorted(vars(args).items()) if k not in NOT_OUTPUT_FLAGS and not callable(v)}
    for flag in ("det", "pose2d", "lifter"):  # a model file by its full path: a rerun from elsewhere still skips
        if isinstance(opts.get(flag), str) and Path(opts[flag]).is_file():
            opts[flag] = str(Path(opts[flag]).resolve())
    return json.loads(json.dumps(opts, default=str))


def _worker_args(args: argparse.Namespace, tasks: List[VideoTask], opts: BatchOptions) -> argparse.Namespace:
    """``run``'s flags for every worker: the first video as ``input`` (what ``--precision int8`` calibrates on) and,
    on this machine without ``--threads``, the cores shared between the workers."""
    out = copy.copy(args)
    out.input = tasks[0].input
    out.output_root = str(opts.output_root)
    if out.threads is None and opts.on_this_machine:
        out.threads = max(1, (os.cpu_count() or 1) // opts.workers)
    return out


def _split_done(root: Path, tasks: List[VideoTask], options: Dict[str, Any], force: bool,
                results: Dict[str, VideoResult]) -> List[VideoTask]:
    todo = []
    for task in tasks:
        record = None if force else done_record(root, task, options)
        if record is None:
            todo.append(task)
        else:
            results[task.input] = VideoResult(task.input, "skipped", record.get("frames"), record.get("persons"),
                                              0.0, None, str(root / task.key))
    return todo


def _progress(total: int, done: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=done, unit="video", desc="batch", disable=None if enabled else True)


def _dispatch(spec: JobSpec, todo: List[VideoTask], opts: BatchOptions, on_result) -> None:
    if opts.ray:
        from .ray_pool import run_ray

        run_ray(spec, todo, opts.workers, on_result, address=opts.ray_address,
                cpus_per_actor=spec.args.threads or 1)
    else:
        from .local import run_local

        run_local(spec, todo, opts.workers, on_result)


def _process(spec: JobSpec, todo: List[VideoTask], opts: BatchOptions, results: Dict[str, VideoResult]) -> None:
    from tqdm.contrib.logging import logging_redirect_tqdm

    bar = _progress(len(results) + len(todo), len(results), opts.progress)

    def on_result(res: VideoResult) -> None:
        results[res.input] = res
        if res.status == "failed":
            log.warning("failed: %s", res.error if res.input in (res.error or "") else f"{res.input}: {res.error}")
        bar.update(1)
        bar.set_postfix(failed=sum(r.status == "failed" for r in results.values()))

    try:
        with logging_redirect_tqdm():
            _dispatch(spec, todo, opts, on_result)
    finally:
        bar.close()


def run_batch(inputs: Sequence[str], args: argparse.Namespace, models: Sequence[Optional[str]],
              opts: BatchOptions) -> List[VideoResult]:
    """Run ``run`` (its flags in ``args``, its models ``models``) on every video named by ``inputs``, each into
    ``opts.output_root/<key>``; returns one result per video in input order (also written to
    ``batch_summary.json``). User errors (inputs, flags, models) raise before any video is processed."""
    from ..cli.run import check_job
    from ..job import check_output_root

    if opts.ray:
        from .ray_pool import import_ray

        import_ray()  # the [ray] extra, or one line now
    tasks = expand_inputs(inputs)
    root = Path(opts.output_root).expanduser().resolve()
    opts = BatchOptions(root, opts.workers, opts.ray, opts.ray_address, opts.force, opts.progress)
    check_output_root(root)
    spec_args = _worker_args(args, tasks, opts)
    models = tuple(str(Path(m).resolve()) if m and Path(m).exists() else m for m in models)  # any worker's cwd
    check_job(spec_args, models)
    options = options_record(args)
    results: Dict[str, VideoResult] = {}
    todo = _split_done(root, tasks, options, opts.force, results)
    spec = JobSpec(spec_args, models, str(root), options)
    if todo and opts.on_this_machine:  # models downloaded/exported/calibrated once; their errors are usage errors
        t0 = time.perf_counter()
        build_pipeline(spec)
        log.info("models checked in %.1f s", time.perf_counter() - t0)
    try:
        if todo:
            clear_staging(root)
            _process(spec, todo, opts, results)
            clear_staging(root)  # every worker is done: nothing is left to promote
    finally:  # also when interrupted: what was done is recorded
        ordered = [results.get(t.input) or failed(t, INTERRUPTED) for t in tasks]
        write_summary(root, ordered)
    return ordered


def summary_table(results: Sequence[VideoResult]) -> str:
    """The summary as a plain-text table (status, frames, persons, seconds, input, error) and a totals line."""
    rows = [("status", "frames", "persons", "seconds", "input / error")]
    for r in results:
        seconds = f"{r.seconds:.1f}" if r.seconds is not None else "-"
        text = r.input + (f"  ({r.error})" if r.error else "")
        rows.append((r.status, _num(r.frames), _num(r.persons), seconds, text))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join([row[0].ljust(widths[0])] + [row[i].rjust(widths[i]) for i in (1, 2, 3)] + [row[4]])
             for row in rows]
    counts = {s: sum(r.status == s for r in results) for s in ("ok", "failed", "skipped")}
    done = [r for r in results if r.status == "ok"]
    frames, seconds = sum(r.frames or 0 for r in done), sum(r.seconds or 0.0 for r in done)
    lines.append(f"{counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped; "
                 f"{frames} frames processed in {seconds:.1f} worker-seconds")
    return "\n".join(lines)


def _num(value: Optional[int]) -> str:
    return "-" if value is None else str(value)


__all__ = ["BatchOptions", "run_batch", "summary_table", "options_record", "NOT_OUTPUT_FLAGS"]
