"""INT8 models from the user's own frames: calibration tensors made by the pipeline's preprocessing, the
quantization (``pose3d-rt quantize``), its fidelity report, and the INT8 files of ``run --precision int8``.

Calibration tensors are what the stage feeds its engine in the pipeline, on the first ``frames`` frames of the
calibration input (a video, a folder, an image, a URL, a camera):

- detector (RTMDet): the letterboxed, normalised frames (:func:`pose3d_rt.rtmdet.preprocess.preprocess` with the
  :class:`~pose3d_rt.rtmdet.Detector`'s own configuration: the rect letterbox on a dynamic-H/W export);
- 2D pose (RTMPose): the crops (:mod:`pose3d_rt.rtmpose.topdown`, as the default-mode pipeline makes them) of
  the persons an FP32 detector finds (the pipeline's filter: person class, ``score > bbox_thr``).

Lifters are not calibrated: ``int8_lifter`` quantizes a VideoPose3D lifter dynamically (weights INT8 per channel,
activations at run time), the stream form's GEMMs then run ~3.7x faster; MotionBERT stays FP32.

The quantization itself is :func:`pose3d_rt.export.quantize.quantize_onnx` (static QDQ, Conv/MatMul, reached
through :mod:`pose3d_rt.hub.cache`). Then the next ``holdout`` frames of the same input compare INT8 with FP32
(:mod:`pose3d_rt.fidelity`); the report is printed and saved beside the INT8 file (``X.int8.report.json``).

``run --precision int8`` (:func:`int8_models`) makes each INT8 file once, beside the cached FP32 export
(:func:`pose3d_rt.hub.cache.int8_path`), calibrated on the run's own input, and reuses it afterwards.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, Optional, Tuple, Union

import numpy as np

from .engines.base import Engine
from .engines.loader import CHECKPOINT_SUFFIXES, load_engine
from .errors import InputError, ModelError, Pose3DError
from .fidelity import DetectorComparison, PoseComparison, QuantizeReport, Timed
from .frames import check_frame
from .hub import Role, cache, classify, default_alias, resolve, resolve_path
from .io.sources import FrameSource, open_source
from .rtmdet import Detector, filter_detections
from .rtmdet.preprocess import preprocess as letterbox_frames
from .rtmpose.estimator import PoseEstimator, parse_pose_engine

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "int8", "bf16")  # bf16: OpenVINO's BF16 inference precision (no file of its own)
ACTIVATIONS = ("uint8", "int8")  # pose3d_rt.export.quantize.ACTIVATION_TYPES
DEFAULT_ACTIVATIONS = "uint8"
LAYOUTS = ("onnxruntime", "openvino")  # pose3d_rt.export.quantize.QDQ_LAYOUTS
DEFAULT_CALIB_FRAMES = 32
DEFAULT_HOLDOUT_FRAMES = 32
Feed = Dict[str, np.ndarray]
Source = Union[str, os.PathLike, FrameSource]

__all__ = ["PRECISIONS", "ACTIVATIONS", "DEFAULT_ACTIVATIONS", "DEFAULT_CALIB_FRAMES", "DEFAULT_HOLDOUT_FRAMES",
           "LAYOUTS", "layout_for", "precision_engine_options", "model_role", "detector_feeds", "pose_feeds",
           "quantize_model", "report_path", "int8_models", "int8_lifter"]


def model_role(engine: Any) -> Role:
    """The role of an ONNX model, from its ``family`` metadata (``rtmdet``, ``rtmpose``, ``tcn``), else from its
    inputs and outputs. Lifters and unknown models raise :class:`ModelError` (one line)."""
    path = getattr(engine, "path", "<model>")
    family = str((getattr(engine, "metadata", None) or {}).get("family", "")).strip().lower()
    if family in ("tcn", "videopose3d", "motionbert") or family.startswith("videopose"):
        raise ModelError(f"{path}: a lifter ({family}); lifters are not quantized (small share of the frame time, "
                         f"exact in FP32): quantize the detector and the 2D pose model")
    if family == "rtmdet":
        return Role.DETECTOR
    if family == "rtmpose":
        return Role.POSE2D
    try:
        Detector(engine)
        return Role.DETECTOR
    except ModelError:
        pass
    try:
        parse_pose_engine(engine)
        return Role.POSE2D
    except ModelError:
        pass
    names = {s.name for s in getattr(engine, "inputs", ())}
    if "keypoints" in names:
        raise ModelError(f"{path}: a lifter; lifters are not quantized: quantize the detector and the 2D pose model")
    raise ModelError(f"{path}: neither an RTMDet detector nor an RTMPose model (family "
                     f"{family or 'not in the metadata'}); only those two are quantized")


def _frames(frames: Iterable[np.ndarray], counter: Dict[str, int]) -> Iterator[np.ndarray]:
    for frame in frames:
        counter["frames"] += 1
        yield check_frame(frame, f"frame {counter['frames'] - 1}")


def _batched(x: np.ndarray, static_batch: Optional[int]) -> Iterator[np.ndarray]:
    """``x`` as one call, or in calls of exactly ``static_batch`` rows (the last filled with repeated rows)."""
    if not static_batch:
        yield x
        return
    for s in range(0, len(x), static_batch):
        part = x[s:s + static_batch]
        if len(part) < static_batch:
            part = part[np.arange(static_batch) % len(part)]
        yield part


def detector_feeds(detector: Detector, frames: Iterable[np.ndarray]) -> Iterator[Feed]:
    """The detector's network input for each frame, exactly as :class:`Detector` makes it (one frame a call)."""
    for frame in frames:
        x, _ = letterbox_frames([frame], detector.preprocess_cfg)
        for part in _batched(x, detector.max_batch if (detector.max_batch or 1) > 1 else None):
            yield {detector.input_name: part}


def pose_feeds(pose: PoseEstimator, detector: Detector, frames: Iterable[np.ndarray], *, det_cat_id: int = 0,
               bbox_thr: float = 0.3) -> Iterator[Feed]:
    """For each frame, the crops of the persons ``detector`` finds (the pipeline's filter), as ``pose`` makes
    them; frames without a person give nothing."""
    for frame in frames:
        boxes = filter_detections(detector(frame), cat_id=det_cat_id, bbox_thr=bbox_thr).boxes
        if len(boxes) == 0:
            continue
        x = pose.preprocess(frame, boxes).inputs
        for part in _batched(x, pose.config.static_batch):
            yield {pose.config.input_name: part}


def report_path(output: Union[str, Path]) -> Path:
    """``X.int8.onnx`` -> ``X.int8.report.json``: where :func:`quantize_model` saves its report."""
    out = Path(output)
    return out.with_name((out.name[:-5] if out.name.lower().endswith(".onnx") else out.name) + ".report.json")


def _check_counts(frames: int, holdout: int) -> None:
    if int(frames) < 1:
        raise InputError(f"--frames must be >= 1 (calibration frames), got {frames}")
    if int(holdout) < 0:
        raise InputError(f"--holdout must be >= 0 (held-out frames for the report; 0 = none), got {holdout}")


def _onnx_file(model: Union[str, os.PathLike]) -> Path:
    path = Path(model)
    if path.suffix.lower() != ".onnx":
        raise ModelError(f"{path}: not an .onnx file; quantize works on ONNX exports "
                         f"(`pose3d-rt export CHECKPOINT.pth -o MODEL.onnx` first)")
    if not path.is_file():
        raise ModelError(f"{path}: no such file")
    return path


def precision_engine_options(precision: str, device: str) -> Dict[str, Any]:
    """The :func:`~pose3d_rt.engines.load_engine` options of the detector and the 2D model at ``precision``:
    ``bf16`` is OpenVINO's BF16 inference precision (``device="openvino[:DEVICE]"`` only; fast on CPUs with
    AVX512-BF16 or AMX, where OpenVINO otherwise runs f32 as pose3d-rt asks); fp32 and int8 (its own files)
    need none."""
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "bf16":
        return {}
    if layout_for(device) != "openvino":
        raise InputError(f"bf16 runs on OpenVINO only: use --device openvino (got {device!r}); ONNX Runtime runs "
                         f"fp32 or int8")
    return {"precision": "bf16"}


def layout_for(device: str) -> str:
    """The QDQ layout made for ``device`` (:data:`LAYOUTS`): ``openvino`` for ``openvino[:DEVICE]``, else
    ``onnxruntime`` (:mod:`pose3d_rt.export.quantize`: where the QDQ pairs go decides which backend fuses them)."""
    return "openvino" if str(device or "").strip().lower().startswith("openvino") else "onnxruntime"


def _default_output(model: Path, layout: str) -> Path:
    return model.with_name(f"{model.stem}.{'int8' if layout == 'onnxruntime' else 'int8-' + layout}.onnx")


def _det_engine(det: Any, device: str, threads: Optional[int], progress: bool) -> Engine:
    """The FP32 detector whose boxes make the 2D model's crops (an Engine, a path, an alias; None: the default)."""
    arg = default_alias(Role.DETECTOR) if det is None else det
    try:
        return resolve(arg, Role.DETECTOR, device=device, threads=threads, progress=progress,
                       export_options=cache.detector_export_options())
    except Pose3DError as exc:
        raise type(exc)(f"{Role.DETECTOR.flag}: {exc}") from None


def _stages(fp32: Any, role: Role, det: Any, device: str, threads: Optional[int], progress: bool
            ) -> Tuple[Any, Optional[Detector]]:
    """(the FP32 stage of the model to quantize, the FP32 detector for 2D crops or None)."""
    if role is Role.DETECTOR:
        return Detector(fp32), None
    return PoseEstimator(fp32, warp_method="opencv"), Detector(_det_engine(det, device, threads, progress))


def _int8_stage(fp32_stage: Any, engine: Any) -> Any:
    if isinstance(fp32_stage, Detector):
        return Detector(engine, letterbox=fp32_stage.letterbox)
    return PoseEstimator(engine, warp_method=fp32_stage.warp_method)


def _compare(fp32_stage: Any, int8_stage: Any, detector: Optional[Detector], frames: Iterable[np.ndarray],
             det_cat_id: int, bbox_thr: float) -> Tuple[Any, Any]:
    """Run both stages on ``frames``: (DetectorFidelity or None, PoseFidelity or None)."""
    if detector is None:
        comp = DetectorComparison()
        for frame in frames:
            comp.add(filter_detections(fp32_stage(frame), det_cat_id, bbox_thr),
                     filter_detections(int8_stage(frame), det_cat_id, bbox_thr))
        return comp.result(), None
    pcomp = PoseComparison()
    for frame in frames:
        boxes = filter_detections(detector(frame), det_cat_id, bbox_thr).boxes
        pcomp.add(fp32_stage(frame, boxes).keypoints, int8_stage(frame, boxes).keypoints)
    return None, pcomp.result()


@dataclass
class _Job:
    """One quantization: the FP32 stage, the detector for crops (2D models), options of :func:`quantize_model`."""

    model: Path
    out: Path
    role: Role
    stage: Any
    detector: Optional[Detector]
    opts: Dict[str, Any]


def _calibrate_and_compare(job: _Job, src: FrameSource, frames: int, holdout: int) -> QuantizeReport:
    o = job.opts
    count = {"frames": 0}
    it = iter(_frames(src, count))
    calib_frames = islice(it, int(frames))
    feeds = (detector_feeds(job.stage, calib_frames) if job.detector is None else
             pose_feeds(job.stage, job.detector, calib_frames, det_cat_id=o["det_cat_id"], bbox_thr=o["bbox_thr"]))
    result = cache.quantize_onnx(job.model, job.out, feeds, activations=o["activations"], layout=o["layout"],
                                 metadata={"quant_calibration_input": src.info.name})
    n_calib = count["frames"]
    if n_calib < frames:
        log.warning("%s: only %d frames for calibration (asked for %d)", src.spec, n_calib, frames)
    fid: Tuple[Any, Any] = (None, None)
    t32 = t8 = None
    if holdout > 0:
        t32, t8 = Timed(job.stage.engine), Timed(load_engine(job.out, device=o["device"], threads=o["threads"]))
        job.stage.engine = t32
        fid = _compare(job.stage, _int8_stage(job.stage, t8), job.detector, islice(it, int(holdout)),
                       o["det_cat_id"], o["bbox_thr"])
    return QuantizeReport(
        model=str(job.model), output=str(job.out), family=job.role.value, activations=o["activations"],
        layout=o["layout"],
        calibration_input=str(src.spec), calibration_frames=n_calib, calibration_samples=result.samples,
        holdout_frames=count["frames"] - n_calib, quantized_nodes=dict(result.quantized), device=o["device"],
        detector=fid[0], pose2d=fid[1], fp32_ms=t32.median_ms() if t32 else None,
        int8_ms=t8.median_ms() if t8 else None)


def quantize_model(model: Union[str, os.PathLike], calib: Source, output: Union[str, os.PathLike, None] = None, *,
                   frames: int = DEFAULT_CALIB_FRAMES, holdout: int = DEFAULT_HOLDOUT_FRAMES, det: Any = None,
                   activations: str = DEFAULT_ACTIVATIONS, layout: Optional[str] = None, device: str = "cpu",
                   threads: Optional[int] = None, det_cat_id: int = 0, bbox_thr: float = 0.3,
                   save_report: bool = True, progress: bool = True) -> QuantizeReport:
    """Quantize the FP32 ONNX ``model`` (an RTMDet detector or an RTMPose model) to INT8 ``output`` (default
    ``<model>.int8.onnx``, ``<model>.int8-openvino.onnx`` in the OpenVINO layout), calibrated on the first
    ``frames`` frames of ``calib``; compare it with FP32 on the next ``holdout`` frames on ``device`` and save the
    report beside ``output`` (:func:`report_path`). ``layout``: the backend the QDQ placement is made for
    (:data:`LAYOUTS`; None: :func:`layout_for` ``device``).

    ``det``: the FP32 detector that finds the persons for a 2D model's crops (an Engine, a path, an alias;
    default: the zoo's default detector). Returns the :class:`~pose3d_rt.fidelity.QuantizeReport`."""
    _check_counts(frames, holdout)
    if activations not in ACTIVATIONS:
        raise InputError(f"--activations must be one of {', '.join(ACTIVATIONS)}, got {activations!r}")
    layout = layout_for(device) if layout is None else layout
    if layout not in LAYOUTS:
        raise InputError(f"--layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    model = _onnx_file(model)
    out = Path(output) if output is not None else _default_output(model, layout)
    src = calib if isinstance(calib, FrameSource) else open_source(calib)  # a bad input fails before any model
    try:
        fp32 = load_engine(model, device=device, threads=threads)
        if str(fp32.metadata.get("precision", "")).lower() == "int8":
            raise ModelError(f"{model}: already quantized (metadata precision=int8); quantize the FP32 file")
        role = model_role(fp32)
        if role is Role.DETECTOR and det is not None:
            log.warning("%s: a detector; %s (the detector for a 2D model's crops) is not used", model, Role.DETECTOR.flag)
        stage, detector = _stages(fp32, role, det, device, threads, progress)
        job = _Job(model, out, role, stage, detector, dict(activations=activations, layout=layout, device=device,
                                                          threads=threads, det_cat_id=det_cat_id, bbox_thr=bbox_thr))
        report = _calibrate_and_compare(job, src, int(frames), int(holdout))
    finally:
        if not isinstance(calib, FrameSource):
            src.close()
    if save_report:
        report.save(report_path(out))
    return report


def _fp32_onnx(arg: Any, role: Role, export_options: Optional[Dict[str, Any]], progress: bool) -> Path:
    """The local FP32 ``.onnx`` of a model argument (a ``.pth`` / alias / URL is exported once, cached)."""
    ref = classify(arg, role)
    if ref.kind != "path" and ref.kind not in ("url", "alias"):
        raise InputError(f"{role.flag}: precision int8 needs a model file, an alias or a URL (an .onnx or a .pth), "
                         f"not an Engine object")
    path = resolve_path(arg, role, progress=progress)
    if path.suffix.lower() in CHECKPOINT_SUFFIXES:
        path = cache.export_cached(path, role, export_options)
    if path.suffix.lower() != ".onnx":
        raise ModelError(f"{role.flag}: {path}: precision int8 needs an ONNX model (or a .pth / alias), not a "
                         f"{path.suffix} file")
    return path


def _is_int8(path: Path) -> bool:
    from .engines.onnxruntime import OrtEngine  # metadata only: a CPU session

    with OrtEngine.load(path, device="cpu", threads=1) as eng:
        return str(eng.metadata.get("precision", "")).lower() == "int8"


def _ensure(fp32: Path, role: Role, calib: Optional[Source], det: Any, frames: int, kw: Dict[str, Any]) -> Path:
    out = cache.int8_path(fp32, layout=layout_for(kw["device"]))
    if out.is_file():
        log.info("%s: using the cached INT8 file %s", role.flag, out)
        return out
    if _is_int8(fp32):
        return fp32
    if calib is None:
        raise InputError(f"{role.flag}: no INT8 version of {fp32.name} yet; give calibration frames (the run's input "
                         f"is used by `pose3d-rt run --precision int8`) or make one with `pose3d-rt quantize`")
    log.warning("%s: quantizing %s to INT8 on the first %d frames of %s (once; cached as %s)", role.flag, fp32.name,
                frames, calib if not isinstance(calib, FrameSource) else calib.spec, out)
    quantize_model(fp32, calib, out, frames=frames, holdout=0, det=det, save_report=False, **kw)
    return out


def int8_models(detector: Any, pose2d: Any, calib: Optional[Source], *, mode: str = "default",
                frames: int = DEFAULT_CALIB_FRAMES, device: str = "cpu", threads: Optional[int] = None,
                progress: bool = True) -> Tuple[Path, Path]:
    """The INT8 ``.onnx`` files of a detector and a 2D pose model (paths, ``.pth``, aliases or URLs), made once
    (calibrated on the first ``frames`` frames of ``calib``, in the QDQ layout of ``device``: :func:`layout_for`)
    beside the cached FP32 exports, then reused. A model that is already INT8 (metadata ``precision=int8``) is
    returned as is. Used by ``run --precision int8`` and ``Pose3DPipeline(precision="int8")``."""
    if int(frames) < 1:
        raise InputError(f"calibration frames must be >= 1, got {frames}")
    kw = dict(device=device, threads=threads, progress=progress)
    det_fp32 = _fp32_onnx(detector, Role.DETECTOR, cache.detector_export_options(mode), progress)
    pose_fp32 = _fp32_onnx(pose2d, Role.POSE2D, None, progress)
    det8 = _ensure(det_fp32, Role.DETECTOR, calib, None, frames, kw)
    pose8 = _ensure(pose_fp32, Role.POSE2D, calib, det_fp32, frames, kw)
    return det8, pose8


def int8_lifter(lifter: Any, export_options: Optional[Dict[str, Any]] = None, *, device: str = "cpu",
                progress: bool = True) -> Path:
    """The INT8 ``.onnx`` of a VideoPose3D lifter (path, ``.pth``, alias or URL; exported with ``export_options``,
    e.g. the stream form), made once by dynamic quantization (weights INT8 per channel, activations quantized at run
    time: no calibration frames) beside the cached FP32 export. MotionBERT and files already INT8 are returned
    as they are (FP32 MotionBERT: its INT8 accuracy is not measured), and so is the FP32 file on an OpenVINO
    ``device`` (it runs ONNX Runtime's dynamic integer kernels slower than FP32: measured 0.59 vs 0.42 ms per
    person-frame). Used by ``run --precision int8``."""
    fp32 = _fp32_onnx(lifter, Role.LIFTER, export_options, progress)
    if layout_for(device) == "openvino":
        return fp32
    from .engines.onnxruntime import OrtEngine  # metadata only: a CPU session

    with OrtEngine.load(fp32, device="cpu", threads=1) as eng:
        meta = {str(k): str(v).lower() for k, v in eng.metadata.items()}
    if meta.get("precision") == "int8" or meta.get("family", "tcn") != "tcn":
        return fp32
    out = cache.int8_path(fp32)
    if out.is_file():
        log.info("%s: using the cached INT8 file %s", Role.LIFTER.flag, out)
        return out
    log.warning("%s: quantizing %s to INT8 (dynamic, once; cached as %s)", Role.LIFTER.flag, fp32.name, out)
    cache.quantize_dynamic_onnx(fp32, out)
    return out

