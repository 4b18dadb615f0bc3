"""The whole pipeline as a streaming Python API: detect -> 2D -> track -> lift -> post-process.

>>> pipe = Pose3DPipeline(detector="rtmdet_m.onnx", pose2d="rtmpose_m.onnx", lifter="vp3d_243.onnx")
>>> result = pipe("person.jpg")                       # one image -> FrameResult
>>> for result in pipe.stream("video.mp4"):           # a video, a folder of images, "webcam:0", an URL
...     print(result.frame_index, result.track_ids, result.keypoints_3d.shape)

Two modes, one set of stages (docs/MMPOSE_BEHAVIOUR.md, Q1 ... Q22):

- ``mode="default"``: the corrected pipeline. No phantom person on empty frames (Q7), BGR to every model (Q6),
  tracks with a time-to-live and optimal assignment (Q16), exact lifting with real future frames, delayed by the
  lifter's right context and flushed at end of stream (Q5; ``online=True`` for zero latency), correct camera
  normalisation (Q2), 0-based frame indices (Q1), track ids in every result (Q15), bounded memory (Q4).
- ``mode="mmpose"``: reproduces ``body3d_pose_lifter_demo.py`` of mmpose 1.3.2 number for number, quirks
  included: Q1, Q2, Q5, Q6 (RGB to the models for image inputs), Q7 (whole-image box when nothing is detected),
  flip test, greedy one-frame tracking, per-frame rebase, sorting by track id.

Every stage is usable alone: :class:`~pose3d_rt.rtmdet.detector.Detector`, :class:`~pose3d_rt.rtmpose.estimator.PoseEstimator`,
:func:`~pose3d_rt.tracking.make_tracker`, :class:`~pose3d_rt.lifters.streaming.Lifter`.
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Deque, Iterator, List, Optional, Union

import numpy as np

from .boxes import boxes_from_keypoints, whole_image_box
from .calibration import int8_lifter, int8_models, precision_engine_options
from .engines.base import Engine
from .errors import InputError
from .frames import check_frame
from .hub import Role, detector_export_options, lifter_export_options, resolve
from .io.held_frames import hold, must_encode, release
from .io.sources import FrameSource, open_source
from .lifters.motionbert_stream import make_lifter
from .lifters.streaming import LiftedFrame, Lifter
from .results import FrameResult
from .rtmdet import Detections, Detector, filter_detections
from .rtmpose.estimator import PoseEstimator
from .smoothing import DEFAULT_BETA, DEFAULT_D_CUTOFF, DEFAULT_MIN_CUTOFF, PoseSmoother, SmoothingParams
from .tracking import make_tracker

log = logging.getLogger(__name__)

ModelArg = Union[str, Path, Engine, None]
MODES = ("default", "mmpose")


@dataclass
class PipelineOptions:
    """Options of :class:`Pose3DPipeline`; names follow the mmpose demo's flags (``--bbox-thr`` -> ``bbox_thr``).

    ``flip_test`` None means: on in mmpose mode (as the RTMPose configs), off in default mode (2x faster).
    ``max_age``: frames a lost track is kept for re-identification (default mode).
    ``det_interval``: run the detector every N frames; in between, boxes come from the tracked 2D poses
    (default mode only).
    """

    det_cat_id: int = 0
    bbox_thr: float = 0.3
    flip_test: Optional[bool] = None
    use_oks_tracking: bool = False
    tracking_thr: float = 0.3
    max_age: int = 30
    norm_pose_2d: bool = True
    rebase_keypoint: bool = True
    online: bool = False
    det_interval: int = 1
    pose_box_padding: float = 1.1
    kpt_thr: float = 0.3
    # Detector post-processing (mmdet ``model.test_cfg``); None keeps the model's own (metadata / RTMDet defaults).
    det_score_thr: Optional[float] = None
    det_nms_iou_thr: Optional[float] = None
    det_nms_pre: Optional[int] = None
    det_max_per_img: Optional[int] = None
    # Detector letterbox (pose3d_rt.rtmdet.detector): "rect" pads the resized frame to a multiple of 32 only,
    # "square" to the full input size (mmdet). None: rect in default mode when the detector takes any H x W (a
    # .pth is exported so), square in mmpose mode (the demo's).
    det_letterbox: Optional[str] = None
    # Crop warp: "fixed_point" (bit-exact with mmpose / OpenCV 4.x, ~0.8 ms per crop) or "opencv" (cv2.warpAffine
    # of the installed OpenCV, ~10x faster, within a few grey levels). None: fixed_point in mmpose mode, else opencv.
    warp_method: Optional[str] = None
    # Exporting a .pth lifter: residual alignment of a causal TCN (not stored in checkpoints; from its config).
    causal: Optional[bool] = None
    # Temporal smoothing of the 2D and 3D outputs (pose3d_rt.smoothing: One-Euro per track and joint, timed by the
    # frames' timestamps); default mode only.
    smooth: bool = False
    smooth_min_cutoff: float = DEFAULT_MIN_CUTOFF
    smooth_beta: float = DEFAULT_BETA
    smooth_d_cutoff: float = DEFAULT_D_CUTOFF

    def smoothing_params(self) -> SmoothingParams:
        return SmoothingParams(self.smooth_min_cutoff, self.smooth_beta, self.smooth_d_cutoff)

    def validate(self, mode: str) -> None:
        if not 0.0 <= self.bbox_thr <= 1.0:
            raise InputError(f"bbox_thr must be in [0, 1], got {self.bbox_thr}")
        if not 0.0 <= self.tracking_thr <= 1.0:
            raise InputError(f"tracking_thr must be in [0, 1], got {self.tracking_thr}")
        if self.det_interval < 1:
            raise InputError(f"det_interval must be >= 1, got {self.det_interval}")
        if self.max_age < 0:
            raise InputError(f"max_age must be >= 0, got {self.max_age}")
        if mode == "mmpose" and self.det_interval != 1:
            raise InputError("det_interval > 1 is a default-mode option (the mmpose demo detects every frame)")
        if self.det_letterbox not in (None, "rect", "square"):
            raise InputError(f"det_letterbox must be 'rect', 'square' or None, got {self.det_letterbox!r}")
        if mode == "mmpose" and self.det_letterbox == "rect":
            raise InputError("det_letterbox='rect' is a default-mode option (the mmpose demo letterboxes to a square)")
        if self.smooth and mode == "mmpose":
            raise InputError("smooth is a default-mode option (the mmpose demo does not smooth)")
        self.smoothing_params().validate()


class Pose3DPipeline:
    """RTMDet -> RTMPose -> tracking -> VideoPose3D, torch-free, streaming.

    Each model argument takes an ``.onnx``, ``.engine`` or ``.pth`` path, or an :class:`Engine`. A ``.pth`` is
    exported on first use and cached by its sha256 (needs the ``[export]`` extra). ``lifter=None`` stops at 2D
    (with tracking).

    ``precision="int8"``: the detector and the 2D model run as static INT8 (QDQ) files, made once from the first
    frames of ``calibration`` (a video, folder, image) beside the cached FP32 exports, then reused
    (:func:`pose3d_rt.calibration.int8_models`); a VideoPose3D lifter runs as a dynamic INT8 file (weights INT8,
    no calibration; :func:`pose3d_rt.calibration.int8_lifter`); MotionBERT stays FP32. ``precision="bf16"``
    (``device="openvino"``): the detector and the 2D model run in OpenVINO's BF16, the lifter in FP32.
    """

    def __init__(self, detector: ModelArg, pose2d: ModelArg, lifter: ModelArg = None, *, device: str = "cpu",
                 mode: str = "default", threads: Optional[int] = None, precision: str = "fp32",
                 calibration: Any = None, **options: Any) -> None:
        if mode not in MODES:
            raise InputError(f"mode must be one of {MODES}, got {mode!r}")
        known = {f.name for f in fields(PipelineOptions)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InputError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        self.mode = mode
        self.options = PipelineOptions(**options)
        self.options.validate(mode)
        opt = self.options
        if detector is None or pose2d is None:
            raise InputError("Pose3DPipeline needs a detector and a pose2d model")
        network_options = precision_engine_options(precision, device)
        if precision == "int8":
            detector, pose2d = int8_models(detector, pose2d, calibration, mode=mode, device=device, threads=threads)
            if lifter is not None:
                lifter = int8_lifter(lifter, lifter_export_options(opt.causal, mode=mode, online=opt.online),
                                     device=device)
        self.detector = Detector(resolve(detector, Role.DETECTOR, device=device, threads=threads,
                                         export_options=detector_export_options(mode), engine_options=network_options),
                                 score_thr=opt.det_score_thr, nms_iou_thr=opt.det_nms_iou_thr,
                                 nms_pre=opt.det_nms_pre, max_per_img=opt.det_max_per_img,
                                 letterbox=opt.det_letterbox or ("square" if mode == "mmpose" else None))
        flip = opt.flip_test if opt.flip_test is not None else mode == "mmpose"
        warp = opt.warp_method or ("fixed_point" if mode == "mmpose" else "opencv")
        self.pose2d = PoseEstimator(resolve(pose2d, Role.POSE2D, device=device, threads=threads,
                                            engine_options=network_options), flip_test=flip, warp_method=warp)
        self.keypoint_dataset = getattr(self.pose2d, "dataset_name", "coco")
        self.lifter_engine: Optional[Engine] = None
        if lifter is not None:
            self.lifter_engine = resolve(lifter, Role.LIFTER, device=device, threads=threads,
                                         export_options=lifter_export_options(opt.causal, mode=mode,
                                                                              online=opt.online))
        self._lifter: Optional[Lifter] = None
        self._tracker = None
        self.reset()

    # -- state -------------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Start a new stream: fresh tracker, fresh lifter buffers."""
        opt = self.options
        self._tracker = make_tracker(mode=self.mode, metric="oks" if opt.use_oks_tracking else "iou",
                                     threshold=opt.tracking_thr, max_age=opt.max_age)
        if self.lifter_engine is not None:
            self._lifter = make_lifter(
                self.lifter_engine, mode=self.mode, online=opt.online, norm_pose_2d=opt.norm_pose_2d,
                keypoint_source=self.keypoint_dataset, rebase="frame" if opt.rebase_keypoint else "none",
                max_missing=None,
            )
        self._prev: Optional[FrameResult] = None
        self._ended = np.zeros(0, np.int64)
        self._smoother = PoseSmoother(opt.smoothing_params()) if opt.smooth else None

    @property
    def lifter_spec(self):
        """The lifter's :class:`~pose3d_rt.lifters.LifterSpec` (window, receptive field, ...), or None (2D only)."""
        return None if self._lifter is None else self._lifter.spec

    @property
    def latency(self) -> int:
        """Frames between reading a frame and emitting its result (0 unless exact lifting)."""
        return 0 if self._lifter is None else self._lifter.latency

    # -- per frame ---------------------------------------------------------------------------------------------
    def _boxes(self, frame: np.ndarray, frame_index: int, model_frame: np.ndarray) -> Detections:
        opt = self.options
        h, w = frame.shape[:2]
        reuse = (self.mode == "default" and opt.det_interval > 1 and frame_index % opt.det_interval != 0
                 and self._prev is not None and len(self._prev) > 0)
        if reuse:
            prev = self._prev
            boxes, kept = boxes_from_keypoints(prev.keypoints_2d, prev.scores_2d, opt.kpt_thr, opt.pose_box_padding,
                                               (w, h))
            return Detections(boxes, prev.scores[kept], np.zeros(len(boxes), np.int64))
        dets = filter_detections(self.detector(model_frame), cat_id=opt.det_cat_id, bbox_thr=opt.bbox_thr)
        if len(dets) == 0 and self.mode == "mmpose":  # Q7: the demo estimates a whole-image person
            return Detections(whole_image_box(w, h), np.ones(1, np.float32), np.zeros(1, np.int64))
        return dets

    def _process_2d(self, frame: np.ndarray, frame_index: int, is_image: bool) -> FrameResult:
        """Detect, estimate 2D and track on one checked frame (:func:`~pose3d_rt.frames.check_frame`)."""
        model_frame = frame[..., ::-1].copy() if (self.mode == "mmpose" and is_image) else frame  # Q6
        dets = self._boxes(frame, frame_index, model_frame)
        poses = self.pose2d(model_frame, dets.boxes)
        tr = self._tracker.update(dets.boxes, poses.keypoints, poses.scores, frame_index=frame_index)
        if self._lifter is not None and len(tr.ended_track_ids):
            self._ended = tr.ended_track_ids
        else:
            self._ended = np.zeros(0, np.int64)
        order = np.argsort(tr.track_ids, kind="stable")
        h, w = frame.shape[:2]
        return FrameResult(frame_index, dets.boxes[order], dets.scores[order], tr.track_ids[order],
                           poses.keypoints[order], poses.scores[order], None, (w, h))

    def _lift(self, res: FrameResult) -> List[LiftedFrame]:
        assert self._lifter is not None
        out = self._lifter.update(res.keypoints_2d, res.track_ids, scores_2d=res.scores_2d, bboxes=res.boxes,
                                  frame_size=res.image_size, frame_index=res.frame_index)
        if self._ended.size:
            self._lifter.end_tracks(self._ended)
        return out

    @staticmethod
    def _join(res: FrameResult, lifted: LiftedFrame, mode: str) -> FrameResult:
        if lifted.frame_index != res.frame_index:
            raise RuntimeError(f"lifter emitted frame {lifted.frame_index} while frame {res.frame_index} was due")
        n = len(res)
        k3 = np.full((n, 17, 3), np.nan, np.float32)
        if mode == "mmpose":
            if len(lifted) != n:
                raise RuntimeError(f"frame {res.frame_index}: {len(lifted)} lifted persons for {n} 2D persons")
            k3[:] = lifted.keypoints_3d
        elif len(lifted):
            pos = {int(t): i for i, t in enumerate(lifted.track_ids)}
            rows = np.array([pos.get(int(t), -1) for t in res.track_ids], np.int64)
            ok = rows >= 0
            k3[ok] = lifted.keypoints_3d[rows[ok]]
        res.keypoints_3d = k3
        return res

    def _smoothed(self, res: FrameResult) -> FrameResult:
        return res if self._smoother is None else self._smoother(res)

    # -- public API --------------------------------------------------------------------------------------------
    def stream(self, source: Union[str, Path, FrameSource], *, reset: bool = True,
               keep_frames: bool = False) -> Iterator[FrameResult]:
        """Results for every frame of ``source`` (a path, URL, ``webcam[:N]``, or a :class:`FrameSource`), in
        order. In exact lifting mode each result comes ``latency`` frames after its frame was read; the last ones
        are flushed when the source ends (also when it breaks part-way).

        Every frame goes through :func:`~pose3d_rt.frames.check_frame` (gray and BGRA are converted to BGR; a
        frame that cannot be used raises :class:`~pose3d_rt.errors.InputError`).

        ``keep_frames=True`` attaches each frame to its result as ``result.frame`` (for drawing). While a result
        waits for the lifter's delay, its frame is held JPEG-encoded when the delay queue would exceed
        :data:`~pose3d_rt.io.held_frames.FRAME_QUEUE_BYTES` raw, so memory stays bounded for long delays and
        large frames."""
        if reset:
            self.reset()
        src = source if isinstance(source, FrameSource) else open_source(source)
        is_image = src.info.is_image
        pending: Deque[FrameResult] = deque()
        encode = keep_frames and must_encode(src.info.width, src.info.height, self.latency + 1)
        try:
            for t, frame in enumerate(src):
                frame = check_frame(frame, f"frame {t}")  # the one frame check: every source goes through it
                res = self._process_2d(frame, t, is_image)
                res.timestamp = src.timestamp
                self._prev = res
                if keep_frames:
                    hold(res, frame, encode)
                if self._lifter is None:
                    yield self._smoothed(release(res))
                    continue
                pending.append(res)
                for lf in self._lift(res):
                    yield self._smoothed(release(self._join(pending.popleft(), lf, self.mode)))
        finally:
            if not isinstance(source, FrameSource):
                src.close()
        if self._lifter is not None:
            for lf in self._lifter.flush():
                yield self._smoothed(release(self._join(pending.popleft(), lf, self.mode)))

    def __call__(self, image: Union[str, Path, np.ndarray]) -> FrameResult:
        """One image (a path or an array, see :func:`~pose3d_rt.frames.check_frame`) -> its :class:`FrameResult`
        (a one-frame stream)."""
        src = open_source(image)
        if not src.info.is_image:
            src.close()
            raise InputError(f"{image}: is a {src.info.kind}; use pipeline.stream() for videos, folders, cameras")
        results = list(self.stream(src))
        return results[0]


__all__ = ["Pose3DPipeline", "PipelineOptions", "FrameResult", "MODES"]
