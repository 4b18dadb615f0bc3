"""Where a run's time goes: inside the networks (engine calls) against everything else.

>>> with engine_clock(pipeline) as clock:          # times every engine call of the pipeline's stages
...     for res in pipeline.stream("video.mp4"):
...         ...
>>> clock.seconds, clock.stage_seconds              # total, {"det": s, "pose2d": s, "lifter": s}

:func:`pose3d_rt.job.run` reports a :class:`FrameTiming` in ``RunSummary.timing``: the wall time of the stream
split into network time and the rest (``non_network_share``; with decode, drawing and encoding on their own threads
the rest is pre/post-processing, tracking and the waits for those threads).
"""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

log = logging.getLogger(__name__)

#: stage name -> where its engine sits on a :class:`~pose3d_rt.pipeline.Pose3DPipeline`
STAGE_ENGINES: Dict[str, Tuple[str, ...]] = {
    "det": ("detector", "engine"), "pose2d": ("pose2d", "engine"), "lifter": ("lifter_engine",),
}
_MISSING = object()


@dataclass
class EngineClock:
    """Seconds and calls inside the engines' ``run``, per stage (``det``, ``pose2d``, ``lifter``)."""

    stage_seconds: Dict[str, float] = field(default_factory=dict)
    stage_calls: Dict[str, int] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return sum(self.stage_seconds.values())

    def add(self, stage: str, seconds: float) -> None:
        self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds
        self.stage_calls[stage] = self.stage_calls.get(stage, 0) + 1


def _timed(run: Callable[[Any], Any], clock: EngineClock, stage: str) -> Callable[[Any], Any]:
    def timed_run(inputs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return run(inputs)
        finally:
            clock.add(stage, time.perf_counter() - t0)

    return timed_run


def _engine_at(pipeline: Any, path: Tuple[str, ...]) -> Any:
    obj = pipeline
    for name in path:
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return obj if callable(getattr(obj, "run", None)) else None


@contextlib.contextmanager
def engine_clock(pipeline: Any) -> Iterator[EngineClock]:
    """Time every ``engine.run`` of ``pipeline``'s detector, 2D estimator and lifter while the block runs.

    The engines' ``run`` is shadowed by a timing wrapper on the instances (the stages keep their engines) and
    restored when the block ends. A stage that is absent (no lifter) or an engine that takes no instance
    attributes is simply not timed. Engine calls are made from the thread that iterates the pipeline."""
    clock = EngineClock()
    patched: List[Tuple[Any, Any]] = []
    try:
        for stage, path in STAGE_ENGINES.items():
            engine = _engine_at(pipeline, path)
            if engine is None or any(e is engine for e, _ in patched):
                continue
            prev = getattr(engine, "__dict__", {}).get("run", _MISSING)
            try:
                engine.run = _timed(engine.run, clock, stage)
            except (AttributeError, TypeError):
                log.debug("%s engine %r cannot be timed", stage, engine)
                continue
            clock.stage_seconds.setdefault(stage, 0.0)
            clock.stage_calls.setdefault(stage, 0)
            patched.append((engine, prev))
        yield clock
    finally:
        for engine, prev in reversed(patched):
            if prev is _MISSING:
                del engine.run
            else:
                engine.run = prev


@dataclass(frozen=True)
class FrameTiming:
    """The wall time of a run's stream (first frame asked for -> last output written) and where it went.

    ``network_s`` is spent inside engine calls (``stage_s`` per stage); everything else is ``non_network_s``:
    pre/post-processing and tracking in the main thread, plus the main thread's waits for a decoded frame
    (``read_wait_s``) and for the writer (``write_wait_s``: a full queue, the final drain). ``decode_s`` and
    ``output_s`` are the time spent decoding and drawing/encoding/writing, on their own threads when
    ``overlapped`` (then they hide behind the networks), in the main thread otherwise."""

    frames: int
    wall_s: float
    network_s: float
    stage_s: Dict[str, float]
    read_wait_s: float
    write_wait_s: float
    decode_s: float
    output_s: float
    overlapped: bool

    @property
    def non_network_s(self) -> float:
        return max(0.0, self.wall_s - self.network_s)

    @property
    def non_network_share(self) -> float:
        """The share of the wall time not spent in the networks (0..1; goal of the overlap: <= 0.05)."""
        return self.non_network_s / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def frame_ms(self) -> float:
        """Wall milliseconds per frame."""
        return 1000.0 * self.wall_s / self.frames if self.frames else 0.0

    def as_dict(self) -> Dict[str, Any]:
        """Every field plus ``non_network_s``, ``non_network_share`` and ``frame_ms`` (JSON-ready)."""
        out = asdict(self)
        out.update(non_network_s=self.non_network_s, non_network_share=self.non_network_share,
                   frame_ms=self.frame_ms)
        return out

    def describe(self) -> str:
        """One line for the log."""
        per = 1000.0 / self.frames if self.frames else 0.0
        stages = ", ".join(f"{k} {v * per:.1f}" for k, v in self.stage_s.items())
        return (f"{self.frames} frames, {self.frame_ms:.1f} ms/frame: networks {self.network_s * per:.1f} ms"
                f" ({stages or 'not timed'}), the rest {self.non_network_s * per:.1f} ms"
                f" = {100 * self.non_network_share:.1f}% (waiting for decode {self.read_wait_s * per:.1f} ms,"
                f" for the writer {self.write_wait_s * per:.1f} ms; decode {self.decode_s * per:.1f} ms and"
                f" output {self.output_s * per:.1f} ms {'on their own threads' if self.overlapped else 'inline'})")


def frame_timing(frames: int, wall_s: float, clock: Optional[EngineClock], *, read_wait_s: float = 0.0,
                 write_wait_s: float = 0.0, decode_s: float = 0.0, output_s: float = 0.0,
                 overlapped: bool = False) -> FrameTiming:
    """A :class:`FrameTiming` from a run's counters (``clock`` None: the networks were not timed)."""
    stages = dict(clock.stage_seconds) if clock is not None else {}
    return FrameTiming(frames, wall_s, sum(stages.values()), stages, read_wait_s, write_wait_s, decode_s, output_s,
                       overlapped)


__all__ = ["EngineClock", "FrameTiming", "STAGE_ENGINES", "engine_clock", "frame_timing"]
