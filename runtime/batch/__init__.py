"""``pose3d-rt batch``: ``run`` over many videos, on a local process pool or on Ray.

- :mod:`.inputs` -- INPUT arguments (files, folders, globs, list files) -> :class:`VideoTask` (input, folder name);
- :mod:`.manifest` -- each finished video's record (skip on rerun), staging folders, ``batch_summary.json``;
- :mod:`.worker` -- :class:`VideoWorker`: the models loaded once, one video at a time exactly as ``run`` does it;
- :mod:`.local` -- a pool of spawned processes (the default); :mod:`.ray_pool` -- Ray actors (``--ray``);
- :mod:`.runner` -- :func:`run_batch`, the whole batch, and :func:`summary_table`.
"""
from .inputs import VideoTask, expand_inputs
from .manifest import VideoResult
from .runner import BatchOptions, run_batch, summary_table
from .worker import JobSpec, VideoWorker

__all__ = ["BatchOptions", "JobSpec", "VideoResult", "VideoTask", "VideoWorker", "expand_inputs", "run_batch",
           "summary_table"]
