"""How far an INT8 model is from its FP32 original on held-out frames: the numbers of the quantization report.

- Detector (:class:`DetectorComparison`): on each frame, the FP32 and INT8 detections after the pipeline's filter
  (person class, ``score > bbox_thr``) are matched one to one by IoU (optimal assignment, pairs with IoU >=
  :data:`MATCH_IOU`). Reported: IoU of the matched boxes (mean, min), score difference ``|s_int8 - s_fp32|``
  of the matched boxes (mean, max), FP32 boxes without a partner (``missed``) and INT8 boxes without one
  (``extra``).
- 2D pose (:class:`PoseComparison`): the FP32 and INT8 models on the same crops (the FP32 detector's boxes);
  the distance between their keypoints in frame pixels (mean, 95th percentile, max) and the share of keypoints
  within :data:`WITHIN_PX` pixels.
- Speed (:class:`Timed`): the median time of one engine call on the held-out frames, FP32 and INT8.

:class:`QuantizeReport` gathers them with what was quantized and how; ``table()`` is what ``pose3d-rt quantize``
prints, ``save()`` writes the JSON atomically.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from .boxes import box_iou
from .io.atomic import write_text_atomic
from .rtmdet import Detections

MATCH_IOU = 0.5
WITHIN_PX = 2.0


def _stat(values: List[float], fn) -> Optional[float]:
    return float(fn(np.asarray(values, np.float64))) if values else None


def match_boxes(a: np.ndarray, b: np.ndarray, iou_thr: float = MATCH_IOU) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one matching of boxes ``a`` (n, 4) and ``b`` (m, 4) maximising the total IoU; pairs below
    ``iou_thr`` are dropped. Returns the indices into ``a``, into ``b`` and the IoUs of the pairs."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    from scipy.optimize import linear_sum_assignment  # a dependency; imported when first needed (slow import)

    iou = np.nan_to_num(box_iou(a, b), nan=0.0)
    ia, ib = linear_sum_assignment(-iou)
    keep = iou[ia, ib] >= iou_thr
    return ia[keep].astype(np.int64), ib[keep].astype(np.int64), iou[ia[keep], ib[keep]].astype(np.float32)


@dataclass
class DetectorFidelity:
    """INT8 vs FP32 detections over ``frames`` held-out frames (see the module docstring)."""

    frames: int = 0
    boxes_fp32: int = 0
    boxes_int8: int = 0
    matched: int = 0
    missed: int = 0
    extra: int = 0
    iou_mean: Optional[float] = None
    iou_min: Optional[float] = None
    score_diff_mean: Optional[float] = None
    score_diff_max: Optional[float] = None


class DetectorComparison:
    """Accumulates :class:`DetectorFidelity` frame by frame: ``add(fp32_dets, int8_dets)``, then ``result()``."""

    def __init__(self, iou_thr: float = MATCH_IOU) -> None:
        self.iou_thr = float(iou_thr)
        self._r = DetectorFidelity()
        self._ious: List[float] = []
        self._dscore: List[float] = []

    def add(self, fp32: Detections, int8: Detections) -> None:
        ia, ib, ious = match_boxes(fp32.boxes, int8.boxes, self.iou_thr)
        r = self._r
        r.frames += 1
        r.boxes_fp32 += len(fp32)
        r.boxes_int8 += len(int8)
        r.matched += len(ia)
        r.missed += len(fp32) - len(ia)
        r.extra += len(int8) - len(ib)
        self._ious.extend(ious.tolist())
        self._dscore.extend(np.abs(int8.scores[ib].astype(np.float64) - fp32.scores[ia]).tolist())

    def result(self) -> DetectorFidelity:
        r = DetectorFidelity(**asdict(self._r))
        r.iou_mean, r.iou_min = _stat(self._ious, np.mean), _stat(self._ious, np.min)
        r.score_diff_mean, r.score_diff_max = _stat(self._dscore, np.mean), _stat(self._dscore, np.max)
        return r


@dataclass
class PoseFidelity:
    """INT8 vs FP32 keypoints on the same crops over ``frames`` held-out frames; errors in frame pixels."""

    frames: int = 0
    persons: int = 0
    keypoints: int = 0
    px_error_mean: Optional[float] = None
    px_error_p95: Optional[float] = None
    px_error_max: Optional[float] = None
    within_2px: Optional[float] = None  # share of keypoints within WITHIN_PX pixels, in [0, 1]


class PoseComparison:
    """Accumulates :class:`PoseFidelity`: ``add(fp32_keypoints, int8_keypoints)`` per frame ((n, K, 2) each)."""

    def __init__(self) -> None:
        self._frames = 0
        self._persons = 0
        self._err: List[np.ndarray] = []

    def add(self, fp32: np.ndarray, int8: np.ndarray) -> None:
        a, b = np.asarray(fp32, np.float64), np.asarray(int8, np.float64)
        if a.shape != b.shape:
            raise ValueError(f"keypoint arrays differ in shape: {a.shape} vs {b.shape}")
        self._frames += 1
        self._persons += a.shape[0] if a.ndim == 3 else 0
        if a.size:
            self._err.append(np.linalg.norm(a - b, axis=-1).ravel())

    def result(self) -> PoseFidelity:
        err = np.concatenate(self._err) if self._err else np.zeros(0)
        r = PoseFidelity(frames=self._frames, persons=self._persons, keypoints=int(err.size))
        if err.size:
            r.px_error_mean, r.px_error_p95 = float(err.mean()), float(np.percentile(err, 95))
            r.px_error_max, r.within_2px = float(err.max()), float(np.mean(err <= WITHIN_PX))
        return r


class Timed:
    """An engine proxy that times every ``run`` call (for the report's speed line); everything else is the
    wrapped engine's."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self.times: List[float] = []

    def run(self, inputs: Any) -> Dict[str, np.ndarray]:
        t0 = time.perf_counter()
        out = self._engine.run(inputs)
        self.times.append(time.perf_counter() - t0)
        return out

    def __call__(self, inputs: Any) -> Dict[str, np.ndarray]:
        return self.run(inputs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def median_ms(self) -> Optional[float]:
        return float(np.median(self.times) * 1e3) if self.times else None


@dataclass
class QuantizeReport:
    """What ``pose3d-rt quantize`` did and how close the INT8 model is to the FP32 one (module docstring)."""

    model: str
    output: str
    family: str
    activations: str
    calibration_input: str
    calibration_frames: int
    calibration_samples: int
    holdout_frames: int
    quantized_nodes: Dict[str, int] = field(default_factory=dict)
    device: str = "cpu"
    detector: Optional[DetectorFidelity] = None
    pose2d: Optional[PoseFidelity] = None
    fp32_ms: Optional[float] = None  # median engine call on the held-out frames
    int8_ms: Optional[float] = None
    layout: str = "onnxruntime"  # the backend the QDQ placement is made for (pose3d_rt.export.quantize)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def save(self, path: Union[str, Path]) -> Path:
        """Write the report as JSON, atomically."""
        return write_text_atomic(path, json.dumps(self.to_dict(), indent=1) + "\n")

    def table(self) -> str:
        """The report as a small text table (what the command prints)."""
        nodes = ", ".join(f"{n} {k}" for k, n in self.quantized_nodes.items()) or "none"
        rows = [("model", f"{self.model} ({self.family})"), ("INT8 file", self.output),
                ("quantized", f"{nodes}; activations {self.activations}, weights int8 per channel; QDQ layout for "
                              f"{self.layout}"),
                ("calibration", f"{self.calibration_frames} frames of {self.calibration_input} "
                                f"({self.calibration_samples} network inputs)"),
                ("held-out frames", str(self.holdout_frames))]
        rows += _fidelity_rows(self.detector, self.pose2d)
        if self.fp32_ms is not None and self.int8_ms is not None:
            rows.append((f"engine call ({self.device})", f"FP32 {self.fp32_ms:.1f} ms, INT8 {self.int8_ms:.1f} ms "
                                                         f"({self.fp32_ms / max(self.int8_ms, 1e-9):.2f}x)"))
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def _f(v: Optional[float], fmt: str = ".3f") -> str:
    return "-" if v is None else format(v, fmt)


def _fidelity_rows(det: Optional[DetectorFidelity], pose: Optional[PoseFidelity]) -> List[Tuple[str, str]]:
    rows: List[Tuple[str, str]] = []
    if det is not None:
        rows += [("boxes FP32 / INT8", f"{det.boxes_fp32} / {det.boxes_int8}: {det.matched} matched (IoU >= "
                                       f"{MATCH_IOU}), {det.missed} missed, {det.extra} extra"),
                 ("box IoU", f"mean {_f(det.iou_mean, '.4f')}, min {_f(det.iou_min, '.4f')}"),
                 ("score difference", f"mean {_f(det.score_diff_mean, '.4f')}, max {_f(det.score_diff_max, '.4f')}")]
    if pose is not None:
        within = "-" if pose.within_2px is None else f"{100 * pose.within_2px:.1f} %"
        rows += [("keypoints", f"{pose.keypoints} ({pose.persons} persons)"),
                 ("keypoint error (px)", f"mean {_f(pose.px_error_mean, '.2f')}, p95 {_f(pose.px_error_p95, '.2f')}, "
                                         f"max {_f(pose.px_error_max, '.2f')}"),
                 (f"within {WITHIN_PX:g} px", within)]
    return rows


__all__ = ["MATCH_IOU", "WITHIN_PX", "match_boxes", "DetectorFidelity", "DetectorComparison", "PoseFidelity",
           "PoseComparison", "Timed", "QuantizeReport"]
