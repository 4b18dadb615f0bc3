"""Speed benchmark: every stage alone and the whole pipeline, against mmpose-demo-equivalent settings.

``pose3d-rt bench --det D.onnx --pose2d P.onnx --lifter L.onnx [--input VIDEO]`` (or ``--synthetic``, with the
scripted engines of :mod:`fakes`) times, on CPU ONNX Runtime unless ``--device`` says otherwise:

``det``     the detector (letterbox + network + decode + NMS), ms per frame, one frame per call;
``pose2d``  RTMPose, ms per crop: 1/4/8 crops in one network call without flip test (the default mode) against
            the BASELINE of one crop per call with flip test (the mmpose demo's settings);
``lifter``  the lifter, ms per person-frame: the ring-buffer :class:`~pose3d_rt.lifters.streaming.Lifter` (one batched call
            per frame for P tracks) against the BASELINE of a fresh receptive-field window built per frame per
            person and run alone (:class:`~pose3d_rt.lifters.streaming.Lifter` ``mode="mmpose"``, one instance per person);
``vis``     ``pose3d_rt.visualize.Visualizer().render(frame, result)``, ms per frame (skipped, with a note, when
            that module is not importable);
``e2e``     frames per second over the whole video: :class:`~pose3d_rt.pipeline.Pose3DPipeline` ``mode="default"``
            against the BASELINE ``mode="mmpose"`` with flip test.

Each variant is measured ``--repeats`` times (the variants of a stage interleaved, so that a change of machine
load hits them alike); a row gives the median and the 90th percentile of the per-run values, ``n`` = runs, and
the ratio against its stage's baseline row: ``baseline / median`` for latencies and ``median / baseline`` for
FPS, so > 1 always means faster than the baseline. Rows quoted from a timing file of the real mmpose demo
(``--reference``, e.g. ``tests/fixtures/e2e/baseline_timing.json``) are marked as measured elsewhere.

Results go to ``<out>/<name>.json`` and ``<out>/<name>.md`` (each written atomically); the Markdown table is also
logged. Only the per-run numbers are kept in memory, never the pipeline's results.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import logging
import os
import platform
import tempfile
import time
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from pose3d_rt.cli.argtypes import nonneg_int, positive_int
from pose3d_rt.errors import InputError

log = logging.getLogger(__name__)

STAGES = ("det", "pose2d", "lifter", "vis", "e2e")
UNIT_FRAME = "ms per frame"
UNIT_BATCH = "ms per batch"
UNIT_CROP = "ms per crop"
UNIT_PERSON_FRAME = "ms per person-frame"
UNIT_FPS = "FPS"
UNITS = (UNIT_FRAME, UNIT_BATCH, UNIT_CROP, UNIT_PERSON_FRAME, UNIT_FPS)
HIGHER_IS_BETTER = frozenset({UNIT_FPS})
REFERENCE_LABEL = "mmpose demo (reference, measured elsewhere)"
DEFAULT_OUT = Path("benchmarks") / "results"
_REPO_REFERENCE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "e2e" / "baseline_timing.json"
# which stages need which model
_NEEDS = {"det": ("det", "pose2d", "vis", "e2e"), "pose2d": ("pose2d", "vis", "e2e"),
          "lifter": ("lifter", "vis", "e2e")}


# ---------------------------------------------------------------------------------------------------------------
# rows, statistics, ratios
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the result table. ``median``/``p90`` are over ``n`` per-run values (``samples``)."""

    stage: str
    variant: str
    unit: str
    median: float
    p90: Optional[float]
    n: int
    baseline: bool = False
    reference: bool = False
    ratio: Optional[float] = None
    items_per_run: Optional[int] = None
    note: str = ""
    samples: List[float] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def summarize(samples: Iterable[float]) -> Tuple[float, float, int]:
    """``(median, p90, n)`` of per-run values; p90 by linear interpolation (numpy's default percentile)."""
    arr = np.asarray(list(samples), dtype=np.float64)
    if arr.size == 0:
        raise ValueError("no samples")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"non-finite samples: {arr.tolist()}")
    return float(np.median(arr)), float(np.percentile(arr, 90)), int(arr.size)


def make_row(stage: str, variant: str, unit: str, samples: Sequence[float], *, baseline: bool = False,
             reference: bool = False, items_per_run: Optional[int] = None, note: str = "") -> Row:
    if unit not in UNITS:
        raise ValueError(f"unit {unit!r}: expected one of {UNITS}")
    med, p90, n = summarize(samples)
    return Row(stage, variant, unit, med, p90, n, baseline=baseline, reference=reference,
               items_per_run=items_per_run, note=note, samples=[float(s) for s in samples])


def ratio_against(row: Row, base: Row) -> Optional[float]:
    """Speed of ``row`` relative to ``base`` (> 1 = faster); None if the units differ or a median is <= 0."""
    if row.unit != base.unit or not (row.median > 0 and base.median > 0):
        return None
    if row.unit in HIGHER_IS_BETTER:
        return row.median / base.median
    return base.median / row.median


def apply_ratios(rows: Sequence[Row]) -> List[Row]:
    """Set every row's ``ratio`` against the first baseline row of its stage (None for a stage without one)."""
    bases: Dict[str, Row] = {}
    for r in rows:
        if r.baseline and r.stage not in bases:
            bases[r.stage] = r
    for r in rows:
        base = bases.get(r.stage)
        r.ratio = None if base is None else (1.0 if r is base else ratio_against(r, base))
    return list(rows)


# ---------------------------------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------------------------------


def _fmt(v: Optional[float]) -> str:
    if v is None or not np.isfinite(v):
        return "—"
    a = abs(v)
    if a >= 100:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def _fmt_ratio(v: Optional[float]) -> str:
    return "—" if v is None else f"{v:.2f}×"


def markdown_table(rows: Sequence[Row]) -> str:
    lines = ["| stage | variant | unit | median | p90 | n | ratio vs baseline | notes |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        variant = f"**{r.variant}** (baseline)" if r.baseline else r.variant
        note = r.note.replace("|", "/")
        lines.append(f"| {r.stage} | {variant} | {r.unit} | {_fmt(r.median)} | {_fmt(r.p90)} | {r.n} | "
                     f"{_fmt_ratio(r.ratio)} | {note} |")
    return "\n".join(lines)


def format_markdown(report: Mapping[str, Any]) -> str:
    rows = [r if isinstance(r, Row) else Row(**r) for r in report["rows"]]
    env = report.get("environment", {})
    settings = report.get("settings", {})
    out = [f"# Speed: {report.get('name', 'bench')}", ""]
    env_bits = [f"{k}: {env[k]}" for k in ("cpu", "cores", "onnxruntime", "numpy", "opencv", "device", "threads",
                                           "python", "date", "loadavg_start", "loadavg_end") if k in env]
    out += ["Environment: " + "; ".join(env_bits) + ".", ""]
    if settings:
        keys = ("input", "frames_in_video", "frame_size", "repeats", "warmup", "synthetic")
        bits = [f"{k}: {settings[k]}" for k in keys if k in settings]
        bits += [f"{m}: `{Path(str(p)).name}`" for m, p in (settings.get("models") or {}).items()]
        out += ["Settings: " + "; ".join(bits) + ".", ""]
    out += [markdown_table(rows), ""]
    out += ["- median / p90 are over `n` runs of each variant (per-run value = total time / items of that run); "
            "the variants of a stage are interleaved run by run.",
            "- ratio = baseline median / median for latencies, median / baseline median for FPS: "
            "> 1 means faster than the stage's baseline row (the mmpose-demo-equivalent settings)."]
    if any(r.reference for r in rows):
        out.append(f"- \"{REFERENCE_LABEL}\" rows are quoted from a timing file of the real mmpose demo "
                   "(PyTorch, another run, per-frame statistics), not measured here; their ratio compares them "
                   "with this run's baseline row.")
    for stage, why in (report.get("skipped") or {}).items():
        out.append(f"- stage `{stage}` skipped: {why}")
    for note in report.get("notes") or ():
        out.append(f"- {note}")
    return "\n".join(out) + "\n"


def write_atomic(path: os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``: readers see
    the old file or the new one, never a half-written one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are ordinary files
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


# ---------------------------------------------------------------------------------------------------------------
# environment, reference timings, synthetic inputs
# ---------------------------------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _loadavg() -> Optional[List[float]]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def environment(threads: Optional[int], device: str) -> Dict[str, Any]:
    from pose3d_rt._version import __version__

    try:
        import onnxruntime as ort

        ort_version = ort.__version__
    except ImportError:
        ort_version = None
    try:
        import cv2

        cv_version = cv2.__version__
    except ImportError:  # pragma: no cover - a dependency
        cv_version = None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count()
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "onnxruntime": ort_version,
        "numpy": np.__version__,
        "opencv": cv_version,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "pose3d_rt": __version__,
        "device": device,
        "threads": threads if threads is not None else "onnxruntime default",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "loadavg_start": _loadavg(),
    }


def _reference_run(path: os.PathLike, run: str) -> Tuple[Optional[Dict[str, Any]], Dict[str, Any]]:
    data = json.loads(Path(path).read_text())
    return (data.get("runs") or {}).get(run), data.get("machine") or {}


def reference_info(path: os.PathLike, run: str = "video_default") -> Optional[str]:
    """One line saying where the reference timing comes from (input, models, framework, machine), or None."""
    r, machine = _reference_run(path, run)
    if not r:
        return None
    return (f"{Path(path).name} run {run!r}: the mmpose 1.3.2 demo on {r.get('input', '?')} "
            f"({r.get('frames', '?')} frames, {r.get('mean_instances_per_frame', '?')} persons per frame on "
            f"average), models {', '.join(r.get('models') or [])}, flags {r.get('flags') or 'none'}; PyTorch "
            f"{machine.get('torch', '?')} CPU with {machine.get('torch_num_threads', '?')} threads on "
            f"{machine.get('cpu_model', '?')} ({machine.get('nproc', '?')} cores)")


def reference_rows(path: os.PathLike, run: str = "video_default", stages: Iterable[str] = STAGES) -> List[Row]:
    """Rows quoted from a timing file of the real mmpose demo (``tests/fixtures/e2e/baseline_timing.json``).

    Per-stage rows are per-frame statistics of one run (n = frames): detector and visualisation ms per frame;
    2D ms per crop and lifter ms per person-frame divide each frame's time by its instance count (the demo runs
    all crops of a frame in one batch with flip test, and lifts all persons of a frame in one call). The e2e
    row is frames / total frame-loop time of that run (n = 1). Missing fields give no row; nothing is invented.
    """
    r, _ = _reference_run(path, run)
    if not r:
        return []
    stages = set(stages)
    per_frame = r.get("per_frame") or []
    inst = r.get("instances_per_frame") or []
    rows: List[Row] = []

    def col(key: str) -> List[float]:
        return [float(f[key]) for f in per_frame if isinstance(f, dict) and key in f]

    def per_item(key: str) -> List[float]:
        if len(inst) != len(per_frame):
            return []
        return [float(f[key]) / n for f, n in zip(per_frame, inst) if key in f and n > 0]

    specs = (("det", UNIT_FRAME, col("detector"), "one frame per call"),
             ("pose2d", UNIT_CROP, per_item("pose2d"), "flip test, all crops of a frame in one batch; "
                                                       "frame time / persons"),
             ("lifter", UNIT_PERSON_FRAME, per_item("lifter"), "fresh 243-frame window per frame, all persons "
                                                                "in one call; frame time / persons"),
             ("vis", UNIT_FRAME, col("visualize"), "mmpose Pose3dLocalVisualizer (Matplotlib 3D panel)"))
    for stage, unit, secs, what in specs:
        if stage in stages and secs:
            rows.append(make_row(stage, REFERENCE_LABEL, unit, [s * 1000.0 for s in secs], reference=True,
                                 note=f"{what}; statistics over the {len(secs)} frames of one run"))
    st = r.get("stages") or {}
    frames, total = st.get("frames", r.get("frames")), st.get("frames_total_s")
    if "e2e" in stages and frames and total:
        note = f"{frames} frames / {total} s frame loop of one run"
        if r.get("wall_s_including_startup"):
            note += f"; {frames / float(r['wall_s_including_startup']):.3f} FPS including start-up"
        rows.append(make_row("e2e", REFERENCE_LABEL, UNIT_FPS, [float(frames) / float(total)], reference=True,
                             note=note))
    return rows


def _draw_person(img: np.ndarray, cx: float, cy: float, height: float, phase: float, color) -> None:
    import cv2

    s = height / 8.0
    th = max(2, int(s * 0.6))
    head = (int(cx), int(cy - 3.4 * s))
    neck, hip = (cx, cy - 2.6 * s), (cx, cy + 0.3 * s)
    swing = np.sin(phase) * 1.2 * s

    def p(x, y):
        return int(round(x)), int(round(y))

    cv2.circle(img, head, max(2, int(0.7 * s)), color, -1, cv2.LINE_AA)
    cv2.line(img, p(*neck), p(*hip), color, th + 2, cv2.LINE_AA)
    for sgn in (-1, 1):
        cv2.line(img, p(*neck), p(cx + sgn * swing, cy - 0.4 * s), color, th, cv2.LINE_AA)  # arms
        cv2.line(img, p(*hip), p(cx - sgn * swing, cy + 3.6 * s), color, th, cv2.LINE_AA)  # legs


def synthetic_frame(t: int, size: Tuple[int, int] = (640, 480), persons: int = 3, seed: int = 0) -> np.ndarray:
    """Frame ``t`` of the synthetic video: a gradient background, noise and ``persons`` stick figures walking."""
    w, h = size
    rng = np.random.default_rng(seed * 100003 + t)
    y = np.linspace(60, 160, h, dtype=np.float32)[:, None]
    x = np.linspace(0, 40, w, dtype=np.float32)[None, :]
    base = (y + x)[..., None] + np.array([0, 10, 25], np.float32)
    img = np.clip(base + rng.normal(0, 4, (h, w, 1)), 0, 255).astype(np.uint8)
    for p in range(persons):
        phase = 2 * np.pi * t / 40.0 + p * 1.3
        cx = w * (0.15 + 0.7 * (p + 0.5) / max(persons, 1)) + 0.08 * w * np.sin(2 * np.pi * t / 100.0 + p)
        height = h * (0.55 + 0.1 * (p % 3) / 2)
        color = (int(40 + 60 * p) % 255, int(90 + 50 * p) % 255, int(200 - 40 * p) % 255)
        _draw_person(img, cx, h * 0.5, height, phase, color)
    return img


def make_synthetic_video(directory: os.PathLike, frames: int = 100, size: Tuple[int, int] = (640, 480),
                         persons: int = 3, fps: float = 20.0, seed: int = 0) -> Path:
    """Write the synthetic video into ``directory`` (MJPG .avi; a folder of PNGs if no encoder works)."""
    import cv2

    if frames < 1:
        raise InputError(f"the synthetic video needs >= 1 frame, got {frames}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "bench_synthetic.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), float(fps), tuple(int(v) for v in size))
    if writer.isOpened():
        try:
            for t in range(frames):
                writer.write(synthetic_frame(t, size, persons, seed))
        finally:
            writer.release()
        cap = cv2.VideoCapture(str(path))
        ok = cap.isOpened() and cap.read()[0]
        cap.release()
        if ok:
            return path
    log.info("no MJPG encoder: writing the synthetic video as PNG frames")
    folder = directory / "bench_synthetic_frames"
    folder.mkdir(exist_ok=True)
    for t in range(frames):
        cv2.imwrite(str(folder / f"{t:06d}.png"), synthetic_frame(t, size, persons, seed))
    return folder


def synthetic_tracks(persons: int, frames: int, frame_wh: Tuple[int, int], seed: int = 0
                     ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2D inputs for the lifter stage: ``(T, P, 17, 2)`` COCO keypoints (pixels), ``(T, P, 17)`` scores and
    ``(T, P, 4)`` boxes of ``persons`` walking figures."""
    from fakes import TEMPLATE_CROP_XY

    w, h = frame_wh
    rng = np.random.default_rng(seed)
    t = np.arange(frames, dtype=np.float32)[:, None]
    p = np.arange(persons, dtype=np.float32)[None, :]
    cx = w * (0.15 + 0.7 * (p + 0.5) / max(persons, 1)) + 0.08 * w * np.sin(2 * np.pi * t / 100.0 + p)
    cy = np.full_like(cx, h * 0.5)
    scale = 0.6 * h / 256.0
    tmpl = (TEMPLATE_CROP_XY - np.array([96.0, 128.0], np.float32)) * scale
    kp = tmpl[None, None] + np.stack([cx, cy], -1)[:, :, None, :]
    kp = (kp + rng.normal(0, 1.5, kp.shape)).astype(np.float32)
    scores = rng.uniform(0.5, 1.0, kp.shape[:3]).astype(np.float32)
    boxes = np.concatenate([kp.min(axis=2), kp.max(axis=2)], axis=-1).astype(np.float32)
    return kp, scores, boxes


def person_boxes(count: int, frame_wh: Tuple[int, int]) -> np.ndarray:
    """``count`` person-sized xyxy boxes spread over a frame (the crops of the 2D stage)."""
    w, h = frame_wh
    bw, bh = 0.18 * w, 0.6 * h
    cx = w * (0.1 + 0.8 * (np.arange(count) + 0.5) / max(count, 1))
    cy = h * (0.45 + 0.1 * (np.arange(count) % 2))
    return np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1).clip(0, [w, h, w, h]).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# measurement
# ---------------------------------------------------------------------------------------------------------------


def _interleaved(variants: Mapping[str, Callable[[], float]], repeats: int) -> Dict[str, List[float]]:
    """Run each variant ``repeats`` times, variant after variant within a repeat; each call returns its value."""
    samples: Dict[str, List[float]] = {k: [] for k in variants}
    for i in range(repeats):
        for k, fn in variants.items():
            v = fn()
            samples[k].append(v)
            log.debug("run %d %s: %.4g", i, k, v)
    return samples


class _Prefillable:
    """:class:`~pose3d_rt.lifters.streaming.LifterModel` that returns zeros while ``off`` (filling a lifter's history or
    ring buffer to its steady state without paying for the network), the real model otherwise."""

    def __init__(self, model: Any) -> None:
        from pose3d_rt.lifters.streaming import as_lifter_model

        self.model = as_lifter_model(model)
        self.spec = self.model.spec
        self.off = False

    def infer(self, windows: np.ndarray) -> np.ndarray:
        if self.off:
            sp = self.spec
            frames = windows.shape[1] - sp.receptive_field + 1 if sp.form == "dilated" else sp.output_frames
            return np.zeros((windows.shape[0], frames, 17, 3), np.float32)
        return self.model.infer(windows)


@dataclass
class _Context:
    args: argparse.Namespace
    engines: Dict[str, Any]
    video: Path
    frames: List[np.ndarray]  # the first --frames frames of the video (bounded)
    frame_wh: Tuple[int, int]
    rows: List[Row] = field(default_factory=list)
    skipped: Dict[str, str] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)


def _ms(t0: float, items: int) -> float:
    return (time.perf_counter() - t0) * 1000.0 / max(items, 1)


def _stage_det(ctx: _Context) -> None:
    from pose3d_rt.rtmdet.detector import Detector

    det = Detector(ctx.engines["det"])
    frames = ctx.frames
    for _ in range(ctx.args.warmup):
        det(frames[0])

    def run() -> float:
        t0 = time.perf_counter()
        for f in frames:
            det(f)
        return _ms(t0, len(frames))

    s = _interleaved({"det": run}, ctx.args.repeats)
    ctx.rows.append(make_row("det", "preprocess + network + decode/NMS, one frame per call (both modes)",
                             UNIT_FRAME, s["det"], baseline=True, items_per_run=len(frames),
                             note=f"{len(frames)} video frames per run"))


def _stage_pose2d(ctx: _Context) -> None:
    from pose3d_rt.rtmpose.estimator import PoseEstimator

    args, engine = ctx.args, ctx.engines["pose2d"]
    per_frame = max(args.batch_sizes)
    boxes = person_boxes(per_frame, ctx.frame_wh)
    nframes = -(-args.crops // per_frame)
    frames = [ctx.frames[i % len(ctx.frames)] for i in range(nframes)]
    crops = nframes * per_frame
    estimators = {b: PoseEstimator(engine, flip_test=False, max_batch=b) for b in args.batch_sizes}
    baseline = PoseEstimator(engine, flip_test=True)

    def batched(b: int) -> Callable[[], float]:
        est = estimators[b]

        def run() -> float:
            t0 = time.perf_counter()
            for f in frames:
                for s in range(0, per_frame, b):
                    est(f, boxes[s:s + b])
            return _ms(t0, crops)
        return run

    def one_at_a_time() -> float:
        t0 = time.perf_counter()
        for f in frames:
            for i in range(per_frame):
                baseline(f, boxes[i:i + 1])
        return _ms(t0, crops)

    for _ in range(args.warmup):
        baseline(frames[0], boxes[:1])
        for b, est in estimators.items():
            est(frames[0], boxes[:b])
    variants: Dict[str, Callable[[], float]] = {"base": one_at_a_time}
    variants.update({f"b{b}": batched(b) for b in args.batch_sizes})
    s = _interleaved(variants, args.repeats)
    ctx.rows.append(make_row("pose2d", "one crop per call, flip test (mmpose demo settings)", UNIT_CROP, s["base"],
                             baseline=True, items_per_run=crops,
                             note=f"{crops} crops per run; original + flipped crop in one call"))
    for b in args.batch_sizes:
        med = float(np.median(s[f"b{b}"]))
        ctx.rows.append(make_row("pose2d", f"batch of {b} crop{'s' if b > 1 else ''} in one call, no flip "
                                           "(default mode)", UNIT_CROP, s[f"b{b}"], items_per_run=crops,
                                 note=f"{crops} crops per run; {_fmt(med * b)} {UNIT_BATCH}"))


def _stage_lifter(ctx: _Context) -> None:
    from pose3d_rt.lifters.streaming import Lifter

    args = ctx.args
    persons = sorted(set(args.persons))
    pmax = max(persons)
    pool = 64
    kp, sc, bb = synthetic_tracks(pmax, pool, ctx.frame_wh)
    wh = ctx.frame_wh
    model = _Prefillable(ctx.engines["lifter"])
    spec = model.spec
    nframes = args.lift_frames

    def ring() -> Lifter:
        return Lifter(model, mode="default", keypoint_source="coco", rebase="frame", max_missing=None,
                      frame_size=wh)

    def fresh() -> Lifter:
        return Lifter(model, mode="mmpose", keypoint_source="coco", rebase="frame", frame_size=wh)

    # every variant keeps its own lifter(s) across runs: the stream just goes on, in its steady state
    setups: Dict[str, Tuple[List[Lifter], List[Sequence[int]], int]] = {}
    for p in persons:
        setups[f"ring{p}"] = ([ring()], [list(range(p))], p)
    setups["fresh_batched"] = ([fresh()], [list(range(pmax))], pmax)
    setups["base"] = ([fresh() for _ in range(pmax)], [[i] for i in range(pmax)], pmax)
    clock = {k: 0 for k in setups}

    def step(key: str) -> None:
        lifters, groups, _ = setups[key]
        t = clock[key] % pool
        for lifter, g in zip(lifters, groups):
            lifter.update(kp[t, g], g, scores_2d=sc[t, g], bboxes=bb[t, g], frame_size=wh)
        clock[key] += 1

    model.off = True  # fill histories / ring buffers (no network), then warm up
    for key in setups:
        for _ in range(spec.window):
            step(key)
    model.off = False
    for key in setups:
        for _ in range(args.warmup):
            step(key)

    def runner(key: str) -> Callable[[], float]:
        def run() -> float:
            t0 = time.perf_counter()
            for _ in range(nframes):
                step(key)
            return _ms(t0, nframes * setups[key][2])
        return run

    s = _interleaved({k: runner(k) for k in setups}, args.repeats)
    w = spec.window
    ctx.rows.append(make_row("lifter", f"fresh {w}-frame window per frame per person, run alone, P={pmax} "
                                       "(mmpose demo equivalent)", UNIT_PERSON_FRAME, s["base"], baseline=True,
                             items_per_run=nframes * pmax,
                             note=f"{nframes} frames x {pmax} persons per run; Lifter(mode='mmpose') per person"))
    for p in persons:
        ctx.rows.append(make_row("lifter", f"ring buffer, one batched call per frame, P={p} (default mode)",
                                 UNIT_PERSON_FRAME, s[f"ring{p}"], items_per_run=nframes * p,
                                 note=f"{nframes} frames x {p} persons per run; exact (delayed) lifting"))
    ctx.rows.append(make_row("lifter", f"fresh {w}-frame window per frame, P={pmax} persons in one call "
                                       "(mmpose mode)", UNIT_PERSON_FRAME, s["fresh_batched"],
                             items_per_run=nframes * pmax, note="what the demo's inference_pose_lifter_model does"))


def _stage_vis(ctx: _Context) -> None:
    try:
        from pose3d_rt.visualize import Visualizer  # written separately; optional here
    except ImportError as exc:
        why = f"pose3d_rt.visualize is not importable ({exc})"
        log.warning("vis stage skipped: %s", why)
        ctx.skipped["vis"] = why
        return
    from pose3d_rt.io.sources import FrameSource
    from pose3d_rt.pipeline import Pose3DPipeline

    frames = ctx.frames
    w, h = ctx.frame_wh
    e = ctx.engines
    pipe = Pose3DPipeline(e["det"], e["pose2d"], e["lifter"], mode="default")
    results = list(pipe.stream(FrameSource.from_frames(iter(frames), w, h, total_frames=len(frames))))
    try:
        vis = Visualizer()
        for _ in range(ctx.args.warmup):
            vis.render(frames[0], results[0])

        def run() -> float:
            t0 = time.perf_counter()
            for f, r in zip(frames, results):
                vis.render(f, r)
            return _ms(t0, len(frames))

        s = _interleaved({"vis": run}, ctx.args.repeats)
    except Exception as exc:  # the module is young: a failure must not cost the other stages
        why = f"Visualizer().render(frame, result) failed: {type(exc).__name__}: {exc}"
        log.warning("vis stage skipped: %s", why)
        ctx.skipped["vis"] = why
        return
    persons = sum(len(r) for r in results) / max(len(results), 1)
    ctx.rows.append(make_row("vis", "Visualizer().render(frame, result)", UNIT_FRAME, s["vis"], baseline=True,
                             items_per_run=len(frames),
                             note=f"{len(frames)} frames per run, {persons:.1f} persons per frame"))


def _limited(video: Path, limit: int):
    from pose3d_rt.io.sources import FrameSource, open_source

    src = open_source(str(video))
    if limit <= 0:
        return src, src
    info = src.info
    total = min(limit, info.total_frames) if info.total_frames else limit
    return FrameSource.from_frames(islice(iter(src), limit), info.width, info.height, info.fps, total), src


def _stage_e2e(ctx: _Context) -> None:
    from pose3d_rt.io.sources import FrameSource
    from pose3d_rt.pipeline import Pose3DPipeline

    args, e = ctx.args, ctx.engines
    pipes = {
        "base": Pose3DPipeline(e["det"], e["pose2d"], e["lifter"], mode="mmpose", flip_test=True),
        "default": Pose3DPipeline(e["det"], e["pose2d"], e["lifter"], mode="default"),
    }
    w, h = ctx.frame_wh
    warm = ctx.frames[:max(1, min(args.warmup, len(ctx.frames)))]
    for pipe in pipes.values():
        if args.warmup:
            for _ in pipe.stream(FrameSource.from_frames(iter(warm), w, h, total_frames=len(warm))):
                pass
    counts: Dict[str, int] = {}

    def runner(key: str) -> Callable[[], float]:
        def run() -> float:
            source, owner = _limited(ctx.video, args.e2e_frames)
            n = 0
            try:
                t0 = time.perf_counter()
                for _ in pipes[key].stream(source):  # results are dropped at once: memory stays bounded
                    n += 1
                dt = time.perf_counter() - t0
            finally:
                owner.close()
            counts[key] = n
            return n / dt if dt > 0 else float("inf")
        return run

    s = _interleaved({k: runner(k) for k in pipes}, args.repeats)
    ctx.rows.append(make_row("e2e", "Pose3DPipeline(mode='mmpose'), flip test (mmpose demo settings)", UNIT_FPS,
                             s["base"], baseline=True, items_per_run=counts.get("base"),
                             note=f"{counts.get('base')} frames per run, decoding included"))
    ctx.rows.append(make_row("e2e", "Pose3DPipeline(mode='default')", UNIT_FPS, s["default"],
                             items_per_run=counts.get("default"),
                             note=f"{counts.get('default')} frames per run, decoding included"))


_RUNNERS = {"det": _stage_det, "pose2d": _stage_pose2d, "lifter": _stage_lifter, "vis": _stage_vis,
            "e2e": _stage_e2e}


# ---------------------------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------------------------


def _int_list(text: str) -> List[int]:
    try:
        vals = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}") from None
    if not vals or any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return vals


def _stage_list(text: str) -> List[str]:
    vals = [v.strip() for v in str(text).split(",") if v.strip()]
    bad = [v for v in vals if v not in STAGES]
    if not vals or bad:
        raise argparse.ArgumentTypeError(f"stages must be a comma list of {','.join(STAGES)}; got {text!r}")
    return list(dict.fromkeys(vals))


def _size(text: str) -> Tuple[int, int]:
    try:
        w, h = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT of at least 16x16, got {text!r}")
    return w, h


_pos = positive_int
_nonneg = nonneg_int


def configure_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``bench`` arguments to ``p`` (a sub-command parser or a standalone one)."""
    g = p.add_argument_group("models")
    g.add_argument("--det", default=None, help="person detector: .onnx, .engine or .pth")
    g.add_argument("--pose2d", default=None, help="2D pose model: .onnx, .engine or .pth")
    g.add_argument("--lifter", default=None, help="lifter: .onnx, .engine or .pth (strided export for .pth)")
    g.add_argument("--synthetic", action="store_true",
                   help="use the scripted engines of fakes instead of models (times the host code)")
    g = p.add_argument_group("input")
    g.add_argument("--input", default=None, metavar="VIDEO",
                   help="video (or folder of images) to run on; default: a generated synthetic video")
    g.add_argument("--video-frames", type=_pos, default=100, help="frames of the generated video (default 100)")
    g.add_argument("--video-size", type=_size, default=(640, 480), metavar="WxH",
                   help="size of the generated video (default 640x480)")
    g = p.add_argument_group("measurement")
    g.add_argument("--repeats", type=_pos, default=5, help="timed runs per variant; the median is reported (5)")
    g.add_argument("--warmup", type=_nonneg, default=1,
                   help="untimed warm-up calls per variant before the runs (e2e: frames) (1)")
    g.add_argument("--stages", type=_stage_list, default=list(STAGES),
                   help=f"comma list of {','.join(STAGES)} (default all)")
    g.add_argument("--batch-sizes", type=_int_list, default=[1, 4, 8], help="2D crops per call (default 1,4,8)")
    g.add_argument("--persons", type=_int_list, default=[1, 4], help="tracks lifted per frame (default 1,4)")
    g.add_argument("--frames", type=_pos, default=8, help="video frames per run of the det and vis stages (8)")
    g.add_argument("--crops", type=_pos, default=16, help="crops per run of the pose2d stage (16)")
    g.add_argument("--lift-frames", type=_pos, default=32, help="frames per run of the lifter stage (32)")
    g.add_argument("--e2e-frames", type=_nonneg, default=0, help="frames per e2e run, 0 = the whole video (0)")
    g.add_argument("--device", default="cpu", help="cpu (default), cuda[:N], tensorrt[:N]")
    g.add_argument("--threads", type=_nonneg, default=None, help="ONNX Runtime intra-op threads (default: its own)")
    g = p.add_argument_group("output")
    g.add_argument("--out", default=str(DEFAULT_OUT), help=f"results folder (default {DEFAULT_OUT})")
    g.add_argument("--name", default="stages", help="file stem of the results (default stages)")
    g.add_argument("--reference", default="auto",
                   help="mmpose demo timing JSON to quote as reference rows; 'auto' = the repository's "
                        "tests/fixtures/e2e/baseline_timing.json when present and not --synthetic; 'none'")
    g.add_argument("--reference-run", default="video_default", help="run of the reference file (video_default)")
    return p


def _load_engines(args: argparse.Namespace) -> Dict[str, Any]:
    if args.synthetic:
        from fakes import LinearLifter, ScriptedDetector, TemplatePose, walking_boxes

        return {"det": ScriptedDetector(walking_boxes(3, 320), 320), "pose2d": TemplatePose(),
                "lifter": LinearLifter(243)}
    from pose3d_rt.hub.cache import lifter_export_options, load_model

    needed = {m for m, users in _NEEDS.items() if set(users) & set(args.stages)}
    missing = [f"--{m}" for m in ("det", "pose2d", "lifter") if m in needed and getattr(args, m) is None]
    if missing:
        raise InputError(f"bench needs {', '.join(missing)} for stages {','.join(args.stages)} (or --synthetic)")
    roles = {"det": ("detector", None), "pose2d": ("2D pose model", None), "lifter": ("lifter", lifter_export_options())}
    engines = {}
    for m in ("det", "pose2d", "lifter"):
        if m in needed:
            role, opts = roles[m]
            engines[m] = load_model(getattr(args, m), role, args.device, args.threads, export_options=opts)
    return engines


def _reference_path(args: argparse.Namespace) -> Optional[Path]:
    ref = str(args.reference or "none")
    if ref.lower() == "none":
        return None
    if ref.lower() == "auto":
        return _REPO_REFERENCE if (_REPO_REFERENCE.is_file() and not args.synthetic) else None
    path = Path(ref)
    if not path.is_file():
        raise InputError(f"--reference {ref}: no such file")
    return path


def run_bench(args: argparse.Namespace) -> Dict[str, Any]:
    """Run the requested stages and return the report (rows, environment, settings, skipped stages)."""
    from pose3d_rt.io.sources import open_source

    env = environment(args.threads, args.device)
    engines = _load_engines(args)
    with tempfile.TemporaryDirectory(prefix="pose3d_rt_bench_") as tmp:
        video = Path(args.input) if args.input else make_synthetic_video(tmp, args.video_frames, args.video_size)
        src = open_source(str(video))
        try:
            info = src.info
            frames = list(islice(iter(src), args.frames))
        finally:
            src.close()
        if not frames:
            raise InputError(f"{video}: no frame could be read")
        ctx = _Context(args, engines, video, frames, (info.width, info.height))
        for stage in STAGES:
            if stage in args.stages:
                log.info("bench: stage %s", stage)
                t0 = time.perf_counter()
                _RUNNERS[stage](ctx)
                log.info("bench: stage %s done in %.1f s", stage, time.perf_counter() - t0)
    ref = _reference_path(args)
    if ref is not None:
        quoted = reference_rows(ref, args.reference_run, args.stages)
        ctx.rows.extend(quoted)
        if quoted:
            ctx.notes.append(f"reference: {reference_info(ref, args.reference_run)}")
    order = {s: i for i, s in enumerate(STAGES)}
    rows = sorted(ctx.rows, key=lambda r: (order[r.stage], not r.baseline, r.reference))
    apply_ratios(rows)
    env["loadavg_end"] = _loadavg()
    models = {m: str(getattr(eng, "path", "?")) for m, eng in engines.items()}
    providers = {m: list(getattr(eng, "providers", []) or []) for m, eng in engines.items()}
    settings = {
        "input": str(args.input) if args.input else f"synthetic {args.video_size[0]}x{args.video_size[1]}, "
                                                    f"{args.video_frames} frames",
        "frames_in_video": info.total_frames, "frame_size": [info.width, info.height],
        "repeats": args.repeats, "warmup": args.warmup, "stages": list(args.stages),
        "batch_sizes": list(args.batch_sizes), "persons": list(args.persons), "frames_per_run": args.frames,
        "crops_per_run": args.crops, "lift_frames_per_run": args.lift_frames, "e2e_frames": args.e2e_frames,
        "synthetic": bool(args.synthetic), "models": models, "providers": providers,
    }
    return {"name": args.name, "environment": env, "settings": settings, "rows": [r.to_dict() for r in rows],
            "skipped": ctx.skipped, "notes": ctx.notes}


def cmd_bench(args: argparse.Namespace) -> int:
    """``pose3d-rt bench``: run, write ``<out>/<name>.json`` and ``<out>/<name>.md``, log the table."""
    report = run_bench(args)
    out = Path(args.out)
    md = format_markdown(report)
    jpath = write_atomic(out / f"{args.name}.json", json.dumps(report, indent=2) + "\n")
    mpath = write_atomic(out / f"{args.name}.md", md)
    log.warning("%s\n%s", "bench results:", markdown_table([Row(**r) for r in report["rows"]]))
    log.warning("wrote %s and %s", jpath, mpath)
    return 0


__all__ = [
    "STAGES", "Row", "summarize", "make_row", "ratio_against", "apply_ratios", "markdown_table", "format_markdown",
    "write_atomic", "environment", "reference_info", "reference_rows", "make_synthetic_video", "synthetic_frame", "synthetic_tracks",
    "person_boxes", "configure_parser", "run_bench", "cmd_bench",
]
