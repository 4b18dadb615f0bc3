"""``pose3d-rt batch INPUT... --output-root DIR``: ``run`` on many videos, locally or on Ray (:mod:`pose3d_rt.batch`).

Prints the summary table on stdout and returns 0 when every video is ok or skipped, 1 when some failed; a user
error (no input, a bad flag or model) is one line and 2, as for every command.
"""
from __future__ import annotations

import argparse
from typing import Callable

from ..errors import InputError
from .argtypes import positive_int

_BATCH_EXAMPLES = """\
examples:
  pose3d-rt batch videos/ --output-root out --save-predictions --workers 2
  pose3d-rt batch "clips/**/*.mp4" list.txt --output-root out --save-predictions --lifter none
  pose3d-rt batch videos/ --output-root /shared/out --save-predictions --workers 8 --device cuda --ray auto

Each video goes to DIR/<video name>/ (the files `run --output-root DIR/<video name>` writes) with a
batch_manifest.json written last; a rerun skips the videos whose manifest matches the file (size, mtime or
sha256) and the options (--force redoes them). DIR/batch_summary.json lists every video: input, status
(ok | failed | skipped), frames, persons, seconds, error. A failing video does not stop the others.
Without --threads, each worker of this machine gets cores/workers threads.
--ray alone starts a local Ray runtime; --ray ADDRESS (auto, HOST:6379, ray://HOST:10001) joins a cluster,
whose nodes must have pose3d-rt installed and see the inputs and DIR at the same paths (shared storage).
Put --ray after the inputs (or write --ray=ADDRESS): a bare --ray takes the next word as its address.
"""


def add_batch_parser(sub: argparse._SubParsersAction, add_run_options: Callable[[argparse.ArgumentParser], None]
                     ) -> argparse.ArgumentParser:
    """The ``batch`` sub-command: INPUTs, ``run``'s model and output flags (``add_run_options``), and its own."""
    p = sub.add_parser(
        "batch",
        help="run on many videos (files, folders, globs, list files): a local process pool or a Ray cluster",
        description="Run `run` on every video named by the INPUTs, each into its own folder under --output-root, "
        "on --workers processes (each loading the models once) or on Ray actors. Finished videos are recorded "
        "and skipped on rerun; failures are reported and the others go on.",
        epilog=_BATCH_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="a video file, a folder (its videos, recursively), a glob pattern (quoted; ** recurses) or a "
                   "list file (.txt/.lst/.list: one path or URL per line, relative to the list file)")
    add_run_options(p)
    p.add_argument("--workers", type=positive_int, default=1,
                   help="videos processed at the same time: processes here, or Ray actors (default 1)")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run on Ray (extra [ray]): alone, a local Ray runtime; with an ADDRESS, that cluster")
    p.add_argument("--force", action="store_true", help="process the videos already done again")
    return p


def cmd_batch(args: argparse.Namespace) -> int:
    from ..batch import BatchOptions, run_batch, summary_table

    if not args.output_root:
        raise InputError("--output-root is required: each video gets its own folder in it")
    if args.show:
        raise InputError("--show: batch workers have no window; use `pose3d-rt run` to watch a video")
    opts = BatchOptions(args.output_root, workers=args.workers, ray=args.ray is not None,
                        ray_address=args.ray or None, force=args.force, progress=not args.no_progress)
    results = run_batch(args.inputs, args, (args.det, args.pose2d, args.lifter), opts)
    print(summary_table(results), flush=True)
    return 1 if any(r.status == "failed" for r in results) else 0


__all__ = ["add_batch_parser", "cmd_batch"]
