"""The batch on this machine: a pool of ``workers`` processes (spawn), each loading the models once.

Tasks are handed out one per free worker (at most ``workers`` in flight), so a long video never holds back the
others. A worker that dies (killed, out of memory, a crash in a decoder) breaks the pool: the videos running then
are run again in a new pool, one at a time, and a video whose worker dies again is reported failed; the finished
ones are kept.
"""
from __future__ import annotations

import logging
import multiprocessing
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Deque, Dict, Iterable, List, Optional

from .inputs import VideoTask
from .manifest import VideoResult, failed
from .worker import JobSpec, VideoWorker, error_line

log = logging.getLogger(__name__)

WORKER_DIED = "the worker process died while processing this video (killed or crashed)"

_WORKER: Optional[VideoWorker] = None


def _init_worker(spec: JobSpec) -> None:
    global _WORKER
    _WORKER = VideoWorker(spec)


def _process(task: VideoTask) -> VideoResult:
    assert _WORKER is not None, "the pool initializer did not run"
    return _WORKER.process(task)


class _Feeder:
    """Hands the videos to a pool: up to ``workers`` at a time; after a worker died, each video that was running
    then (one of them killed it, the others were bystanders) runs again alone, so that a second death is its own:
    that video is reported failed, the others go on."""

    def __init__(self, tasks: Iterable[VideoTask], workers: int, on_result: Callable[[VideoResult], None]) -> None:
        self.queue: Deque[VideoTask] = deque(tasks)
        self.suspects: Deque[VideoTask] = deque()
        self.workers = workers
        self.on_result = on_result

    def pending(self) -> int:
        return len(self.queue) + len(self.suspects)

    def _fill(self, pool: ProcessPoolExecutor, running: Dict[Future, VideoTask]) -> bool:
        """Submit what may run now; True when a suspect runs (alone: nothing else is submitted beside it)."""
        source, limit = (self.suspects, 1) if self.suspects else (self.queue, self.workers)
        while source and len(running) < limit:
            try:
                running[pool.submit(_process, source[0])] = source[0]
            except BrokenProcessPool:
                break
            source.popleft()
        return source is self.suspects

    def drain(self, pool: ProcessPoolExecutor) -> None:
        """Feed ``pool`` until every video is done or a worker dies (then a new pool is needed)."""
        running: Dict[Future, VideoTask] = {}
        while self.pending() or running:
            alone = self._fill(pool, running)
            if not running:
                return  # the pool broke between two videos: a new one is made
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            lost = []
            for fut in done:
                task = running.pop(fut)
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    lost.append(task)
                    continue
                except Exception as exc:  # noqa: BLE001 - e.g. a result that could not be sent back
                    result = failed(task, error_line(exc))
                self.on_result(result)
            if lost:
                self._lost(lost + list(running.values()), alone)  # a broken pool loses every running video
                return

    def _lost(self, lost: List[VideoTask], alone: bool) -> None:
        for task in lost:
            if alone:
                log.error("%s: %s", task.input, WORKER_DIED)
                self.on_result(failed(task, WORKER_DIED))
            else:
                log.warning("%s: a worker died; the video runs again, alone", task.input)
                self.suspects.append(task)


def run_local(spec: JobSpec, tasks: Iterable[VideoTask], workers: int,
              on_result: Callable[[VideoResult], None]) -> None:
    """Process ``tasks`` on ``workers`` local processes; ``on_result`` is called in this process for every video
    as it finishes (in completion order)."""
    feeder = _Feeder(tasks, workers, on_result)
    ctx = multiprocessing.get_context("spawn")
    while feeder.pending():
        pool = ProcessPoolExecutor(max_workers=min(workers, feeder.pending()), mp_context=ctx,
                                   initializer=_init_worker, initargs=(spec,))
        try:
            feeder.drain(pool)
        except BaseException:  # Ctrl-C, SIGTERM: stop the workers now (their staging folders are cleared later)
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                proc.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)


__all__ = ["run_local", "WORKER_DIED"]
