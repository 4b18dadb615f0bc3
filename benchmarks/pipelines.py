"""The pipelines a benchmark compares: the mmpose-demo-equivalent BASELINE and the configurations of ``run``.

BASELINE: ``Pose3DPipeline(mode="mmpose")`` on CPU ONNX Runtime, FP32: square 640x640 letterbox, detection on every
frame, RTMPose flip test, fixed-point crop warp (bit-exact with mmpose), a fresh receptive-field window per frame
and person for the lifter (a windowed, ``form=strided`` lifter export). What the mmpose demo computes, number for
number.

A :class:`Config` is one way to run the default mode: ``device`` (``cpu`` = ONNX Runtime, ``openvino``, ...),
``precision`` (``fp32``, ``int8``: the INT8 files are made once, calibrated on the first frames of the bench input
as ``run --precision int8`` does on its input, and cached) and ``det_interval``. Configurations that differ only in ``det_interval`` share
their engines (one copy of the networks per device and precision).
"""
from __future__ import annotations

import importlib.util
import inspect
import logging
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from pose3d_rt.errors import InputError, Pose3DError

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "int8", "bf16")


@dataclass(frozen=True)
class Config:
    """One default-mode configuration of the pipeline (what ``run --device D --precision P --det-interval N``
    runs)."""

    device: str = "cpu"
    precision: str = "fp32"
    det_interval: int = 1

    @property
    def name(self) -> str:
        """Stable id, e.g. ``cpu-fp32-di1``, ``openvino-int8-di5``."""
        return f"{self.device}-{self.precision}-di{self.det_interval}"

    @property
    def backend(self) -> str:
        d = self.device.lower()
        return "OpenVINO" if d.startswith("openvino") else "ONNX Runtime" if d == "cpu" else self.device

    @property
    def label(self) -> str:
        every = "detect every frame" if self.det_interval == 1 else f"--det-interval {self.det_interval}"
        return f"default mode, {every}, {self.precision.upper()}, {self.backend}"


@dataclass(frozen=True)
class Models:
    """The model arguments of a bench run (paths, aliases, URLs or Engines, as ``run`` takes them).
    ``baseline_lifter``: the lifter of the baseline (mmpose mode needs a windowed export; None = ``lifter``)."""

    det: Any
    pose2d: Any
    lifter: Any = None
    baseline_lifter: Any = None


def bf16_available() -> bool:
    """True when OpenVINO is installed and its CPU plugin reports BF16 (AVX512-BF16 or AMX): ``--precision bf16``
    then runs BF16 rather than f32."""
    if not openvino_available():
        return False
    from pose3d_rt.engines.openvino import capabilities

    return "BF16" in capabilities("CPU")


def precision_supported() -> bool:
    """True when :class:`~pose3d_rt.pipeline.Pose3DPipeline` takes ``precision`` (and ``calibration``)."""
    from pose3d_rt.pipeline import Pose3DPipeline

    return "precision" in inspect.signature(Pose3DPipeline).parameters


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise InputError(f"--precision {precision}: expected one of {', '.join(PRECISIONS)}")
    if precision != "fp32" and not precision_supported():
        raise Pose3DError(f"--precision {precision}: not available yet (Pose3DPipeline has no precision option)")


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def rtmlib_available() -> bool:
    return importlib.util.find_spec("rtmlib") is not None


def _stream_lifter_hint(exc: Exception) -> Pose3DError:
    return InputError(f"the baseline (mode mmpose) needs a windowed lifter: {exc}; pass --baseline-lifter "
                      "with a strided export (or give --lifter as a .pth or zoo alias)")


class Pipelines:
    """Builds (and keeps) the baseline and the configured pipelines of one bench run."""

    def __init__(self, models: Models, threads: Optional[int] = None, calibration: Any = None) -> None:
        self.models = models
        self.threads = threads
        self.calibration = calibration  # INT8: the input whose first frames calibrate (as `run --precision int8`)
        self._engines: Dict[Tuple[str, str], Tuple[Any, Any, Any]] = {}
        self._baseline: Any = None

    def baseline(self) -> Any:
        """The mmpose-demo-equivalent pipeline (module docstring)."""
        if self._baseline is None:
            from pose3d_rt.pipeline import Pose3DPipeline

            m = self.models
            lifter = m.baseline_lifter if m.baseline_lifter is not None else m.lifter
            try:
                self._baseline = Pose3DPipeline(m.det, m.pose2d, lifter, device="cpu", mode="mmpose",
                                                threads=self.threads, flip_test=True, warp_method="fixed_point")
            except InputError as exc:
                if "stream-form" in str(exc):
                    raise _stream_lifter_hint(exc) from None
                raise
        return self._baseline

    def config(self, cfg: Config) -> Any:
        """The default-mode pipeline of ``cfg``; its engines are loaded (quantised, exported) once per device and
        precision."""
        from pose3d_rt.pipeline import Pose3DPipeline

        check_precision(cfg.precision)
        key = (cfg.device, cfg.precision)
        opts: Dict[str, Any] = {"det_interval": cfg.det_interval}
        if key in self._engines:
            det, pose, lifter = self._engines[key]
            return Pose3DPipeline(det, pose, lifter, device=cfg.device, mode="default", threads=self.threads, **opts)
        if cfg.precision != "fp32":
            opts.update(precision=cfg.precision, calibration=self.calibration)
        m = self.models
        pipe = Pose3DPipeline(m.det, m.pose2d, m.lifter, device=cfg.device, mode="default", threads=self.threads,
                              **opts)
        self._engines[key] = (pipe.detector.engine, pipe.pose2d.engine, pipe.lifter_engine)
        return pipe

    def engines(self, cfg: Config) -> Tuple[Any, Any, Any]:
        """``(detector, pose2d, lifter)`` engines of ``cfg``'s device and precision (loaded if needed)."""
        key = (cfg.device, cfg.precision)
        if key not in self._engines:
            self.config(cfg)
        return self._engines[key]


__all__ = ["PRECISIONS", "Config", "Models", "Pipelines", "precision_supported", "check_precision",
           "openvino_available", "rtmlib_available", "bf16_available"]
