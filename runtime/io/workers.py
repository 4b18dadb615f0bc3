"""Background threads of a run, each behind a bounded queue, so decoding and drawing/encoding overlap the networks.

- :class:`ReadAhead` -- iterates a frame iterator (video decode, image reads) in a thread, at most ``depth``
  frames ahead; the consumer gets the frames in order, and an exception of the reader at the frame it broke.
- :class:`OrderedWorker` -- calls ``handle(item)`` on a thread for every item put, in order, at most ``depth``
  items behind (visualization, video encoding, the JSON/NPZ writers). ``threaded=False`` calls it in the caller's
  thread instead (the sequential path, same results).

Both are bounded (``queue.Queue(maxsize=depth)``), so memory does not grow when one side is slower. Neither ever
leaves its thread running: :meth:`ReadAhead.close` and :meth:`OrderedWorker.finish` / :meth:`OrderedWorker.abort`
stop and join it (also when interrupted by Ctrl-C while waiting), and an error on the thread is raised in the
caller's thread (with its original traceback) at the next call. numpy, OpenCV and the inference backends release
the GIL, so these threads really run beside the main one.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable, Generic, Iterable, Iterator, Optional, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
READ_AHEAD = 4  # frames decoded ahead of the pipeline
WRITE_BEHIND = 4  # results waiting for the writer (each holds its frame)
_POLL = 0.05  # seconds between checks of the other side while blocked on a queue
_END = object()


class _Failed:
    """An exception raised on a worker thread, carried to the consumer."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _join(thread: threading.Thread, stop: Callable[[], None]) -> None:
    """Join ``thread``. A Ctrl-C while waiting calls ``stop()`` (the thread ends after the item in hand), the wait
    goes on, and the KeyboardInterrupt is re-raised once the thread has ended: no thread outlives the call."""
    interrupted: Optional[BaseException] = None
    while thread.is_alive():
        try:
            thread.join(_POLL)
        except KeyboardInterrupt as exc:
            interrupted = exc
            stop()
    if interrupted is not None:
        raise interrupted


def _drain(q: queue.Queue) -> None:
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return


class ReadAhead(Generic[T]):
    """``iter(ReadAhead(frames, depth))`` yields the items of ``frames``, read on a thread ``depth`` items ahead.

    ``busy_s``: seconds the thread spent producing items; ``wait_s``: seconds the consumer waited for one.
    Call :meth:`close` when done (also when stopping early): it stops and joins the thread and closes ``frames``
    (a generator) on that thread."""

    def __init__(self, frames: Iterable[T], depth: int = READ_AHEAD, name: str = "pose3d-rt-reader") -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self._frames = frames
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False
        self.busy_s = 0.0
        self.wait_s = 0.0

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        it = iter(self._frames)
        try:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                try:
                    item = next(it)
                except StopIteration:
                    break
                finally:
                    self.busy_s += time.perf_counter() - t0
                if not self._put(item):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._put(_Failed(exc))
            return
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()
        self._put(_END)

    def __iter__(self) -> Iterator[T]:
        if self._started:
            raise RuntimeError("a ReadAhead is iterated once")
        self._started = True
        self._thread.start()
        while True:
            t0 = time.perf_counter()
            try:
                item = self._get()
            finally:
                self.wait_s += time.perf_counter() - t0
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item

    def _get(self) -> Any:
        while True:
            try:
                return self._q.get(timeout=_POLL)
            except queue.Empty:
                if not self._thread.is_alive() and self._q.empty():
                    return _END  # stopped by close() from elsewhere
                continue

    def _halt(self) -> None:
        self._stop.set()
        _drain(self._q)

    def close(self) -> None:
        """Stop the thread and wait for it (the frame being read is finished first). Idempotent."""
        self._stop.set()
        if self._started:
            _drain(self._q)  # a reader blocked on a full queue sees the stop at once
            _join(self._thread, self._halt)
            _drain(self._q)


class OrderedWorker(Generic[T]):
    """Call ``handle(item)`` for every :meth:`put` item, in order, on one thread ``depth`` items behind.

    The first exception of ``handle`` stops the worker; it is raised by the next :meth:`put` or by
    :meth:`finish`. ``busy_s``: seconds spent in ``handle``; ``wait_s``: seconds :meth:`put` and :meth:`finish`
    waited for the worker (a full queue, the final drain). ``threaded=False`` runs ``handle`` inside
    :meth:`put` (no thread)."""

    def __init__(self, handle: Callable[[T], None], depth: int = WRITE_BEHIND, name: str = "pose3d-rt-writer",
                 threaded: bool = True) -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self._handle = handle
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self.error: Optional[BaseException] = None
        self.done = 0  # items handled
        self.busy_s = 0.0
        self.wait_s = 0.0
        self._thread: Optional[threading.Thread] = None
        if threaded:
            self._thread = threading.Thread(target=self._run, name=name, daemon=True)
            self._thread.start()

    def _call(self, item: T) -> None:
        t0 = time.perf_counter()
        try:
            self._handle(item)
        finally:
            self.busy_s += time.perf_counter() - t0
        self.done += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._q.get(timeout=_POLL)
            except queue.Empty:
                continue
            if item is _END:
                return
            try:
                self._call(item)
            except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
                self.error = exc
                return

    def _raise_error(self) -> None:
        if self.error is not None:
            exc, self.error = self.error, None
            self._stop.set()
            raise exc

    def put(self, item: T) -> None:
        """Hand ``item`` to the worker (blocks while ``depth`` items wait); raises the worker's error, if any."""
        self._raise_error()
        if self._thread is None:
            if not self._stop.is_set():
                self._call(item)
            return
        t0 = time.perf_counter()
        try:
            while True:
                try:
                    self._q.put(item, timeout=_POLL)
                    return
                except queue.Full:
                    self._raise_error()
                    if not self._thread.is_alive():
                        raise RuntimeError(f"{self._thread.name} stopped") from None
        finally:
            self.wait_s += time.perf_counter() - t0

    def finish(self) -> None:
        """Handle everything put so far, stop the thread; raises the worker's error, if any. On Ctrl-C while
        waiting, the rest is dropped (:meth:`abort`) and the KeyboardInterrupt propagates."""
        if self._thread is not None and self._thread.is_alive():
            t0 = time.perf_counter()
            try:
                while self._thread.is_alive():
                    try:
                        self._q.put(_END, timeout=_POLL)
                        break
                    except queue.Full:
                        continue
                _join(self._thread, self._halt)
            except BaseException:
                self.abort()
                raise
            finally:
                self.wait_s += time.perf_counter() - t0
        self._raise_error()

    def abort(self) -> None:
        """Drop what is waiting and stop the thread after the item in hand. Idempotent; raises nothing but a
        Ctrl-C while joining."""
        self._stop.set()
        if self._thread is not None:
            _drain(self._q)
            _join(self._thread, self._halt)
            _drain(self._q)

    def _halt(self) -> None:
        self._stop.set()
        _drain(self._q)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


__all__ = ["READ_AHEAD", "WRITE_BEHIND", "OrderedWorker", "ReadAhead"]
