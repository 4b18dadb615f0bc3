"""What every benchmark shares: result rows and their statistics, ratios against a baseline row, the Markdown
table, the machine description, and writing a report (JSON + Markdown, each file atomically with
:mod:`pose3d_rt.io.atomic`).

A row gives the median and the 90th percentile of ``n`` per-run values and its ``ratio`` against the baseline row
of its stage: ``baseline / median`` for latencies and ``median / baseline`` for FPS, so > 1 always means faster
than the baseline.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from pose3d_rt.io.atomic import write_text_atomic

STAGES = ("det", "pose2d", "lifter", "vis", "e2e")
UNIT_FRAME = "ms per frame"
UNIT_BATCH = "ms per batch"
UNIT_CROP = "ms per crop"
UNIT_PERSON_FRAME = "ms per person-frame"
UNIT_FPS = "FPS"
UNITS = (UNIT_FRAME, UNIT_BATCH, UNIT_CROP, UNIT_PERSON_FRAME, UNIT_FPS)
HIGHER_IS_BETTER = frozenset({UNIT_FPS})
REFERENCE_LABEL = "mmpose demo (reference, measured elsewhere)"
RESULTS = Path(__file__).resolve().parent / "results"


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
    key: str = ""  # a stable id of the row (e.g. "det", "baseline_e2e", "e2e:cpu-fp32-di5") for summaries
    info: Dict[str, Any] = field(default_factory=dict)  # what a run saw (e.g. persons per frame)

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
             reference: bool = False, items_per_run: Optional[int] = None, note: str = "", key: str = "",
             info: Optional[Dict[str, Any]] = None) -> Row:
    if unit not in UNITS:
        raise ValueError(f"unit {unit!r}: expected one of {UNITS}")
    med, p90, n = summarize(samples)
    return Row(stage, variant, unit, med, p90, n, baseline=baseline, reference=reference,
               items_per_run=items_per_run, note=note, samples=[float(s) for s in samples], key=key,
               info=dict(info or {}))


def row_by_key(rows: Iterable[Row], key: str) -> Optional[Row]:
    """The first row whose ``key`` is ``key`` (None if there is none)."""
    return next((r for r in rows if r.key == key), None)


def speed_ratio(fast: Optional[Row], slow: Optional[Row]) -> Optional[float]:
    """How many times faster ``fast`` is than ``slow`` (same unit; > 1 = faster); None if either is missing."""
    return None if fast is None or slow is None else ratio_against(fast, slow)


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
# Markdown
# ---------------------------------------------------------------------------------------------------------------


def format_value(v: Optional[float]) -> str:
    """A table cell: 4 significant-ish digits, "—" for None or non-finite."""
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
        lines.append(f"| {r.stage} | {variant} | {r.unit} | {format_value(r.median)} | {format_value(r.p90)} | "
                     f"{r.n} | {_fmt_ratio(r.ratio)} | {note} |")
    return "\n".join(lines)


def _header(report: Mapping[str, Any]) -> List[str]:
    env = report.get("environment", {})
    settings = report.get("settings", {})
    out = [f"# Speed: {report.get('name', 'bench')}", ""]
    env_bits = [f"{k}: {env[k]}" for k in ("cpu", "cores", "onnxruntime", "openvino", "rtmlib", "numpy", "opencv",
                                           "device", "threads", "python", "date", "loadavg_start", "loadavg_end")
                if env.get(k) is not None]
    if env.get("cpu_flags"):
        env_bits.insert(1, f"CPU flags: {cpu_flags_text(env['cpu_flags'])}")
    out += ["Environment: " + "; ".join(env_bits) + ".", ""]
    if settings:
        keys = ("input", "frames_in_video", "frame_size", "repeats", "warmup", "synthetic")
        bits = [f"{k}: {settings[k]}" for k in keys if k in settings]
        bits += [f"{m}: `{Path(str(p)).name}`" for m, p in (settings.get("models") or {}).items()]
        out += ["Settings: " + "; ".join(bits) + ".", ""]
    return out


def format_markdown(report: Mapping[str, Any]) -> str:
    """The Markdown page of a speed report: environment, settings, the table and its notes."""
    rows = [r if isinstance(r, Row) else Row(**r) for r in report["rows"]]
    out = _header(report)
    if report.get("summary_lines"):
        out += ["Summary:", ""] + [f"- {line}" for line in report["summary_lines"]] + [""]
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


# ---------------------------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------------------------


def write_report(out: os.PathLike, name: str, data: Any, markdown: str) -> Tuple[Path, Path]:
    """``<out>/<name>.json`` (``data``, indented) and ``<out>/<name>.md``, each written atomically (readers see
    the old file or the new one, never a half-written one); creates ``out`` if needed."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return (write_text_atomic(out / f"{name}.json", json.dumps(data, indent=2) + "\n"),
            write_text_atomic(out / f"{name}.md", markdown))


# ---------------------------------------------------------------------------------------------------------------
# environment
# ---------------------------------------------------------------------------------------------------------------


def _cpuinfo_field(name: str) -> Optional[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith(name):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    return _cpuinfo_field("model name") or platform.processor() or platform.machine() or "unknown"


# the instruction-set extensions that decide CPU inference speed (name in /proc/cpuinfo -> what it gives)
CPU_FLAGS = {
    "avx2": "AVX2", "fma": "FMA", "avx512f": "AVX-512", "avx512_vnni": "AVX-512 VNNI (INT8 dot products)",
    "avx_vnni": "AVX-VNNI (INT8 dot products, 256-bit)", "avx512_bf16": "AVX-512 BF16", "amx_bf16": "AMX BF16",
    "amx_int8": "AMX INT8",
}


def cpu_flags() -> Dict[str, bool]:
    """Which of :data:`CPU_FLAGS` the CPU has (all False where /proc/cpuinfo cannot be read)."""
    have = set((_cpuinfo_field("flags") or "").split())
    return {flag: flag in have for flag in CPU_FLAGS}


def cpu_flags_text(flags: Mapping[str, bool]) -> str:
    """``"AVX2, AVX-512, AVX-512 VNNI; no AVX-512 BF16, AMX"``-like summary for the Markdown header."""
    short = {"avx2": "AVX2", "fma": "FMA", "avx512f": "AVX-512", "avx512_vnni": "AVX512-VNNI", "avx_vnni": "AVX-VNNI",
             "avx512_bf16": "AVX512-BF16", "amx_bf16": "AMX-BF16", "amx_int8": "AMX-INT8"}
    yes = [short.get(k, k) for k, v in flags.items() if v]
    no = [short.get(k, k) for k, v in flags.items() if not v]
    return ", ".join(yes or ["none of " + "/".join(short.values())]) + (f" (not: {', '.join(no)})" if yes and no else "")


def loadavg() -> Optional[List[float]]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def _version(module: str) -> Optional[str]:
    """The installed version of ``module`` without importing it (None when it is not installed)."""
    import sys
    from importlib import metadata

    if module in sys.modules:
        return getattr(sys.modules[module], "__version__", None)
    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return None


def environment(threads: Optional[int], device: str) -> Dict[str, Any]:
    """The machine and library versions of a run, and the load average at its start."""
    from pose3d_rt._version import __version__

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count()
    return {
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "onnxruntime": _version("onnxruntime"),
        "openvino": _version("openvino"),
        "rtmlib": _version("rtmlib"),
        "numpy": np.__version__,
        "opencv": _version("cv2"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "pose3d_rt": __version__,
        "device": device,
        "threads": threads if threads is not None else "onnxruntime default",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "loadavg_start": loadavg(),
    }


__all__ = [
    "STAGES", "UNIT_FRAME", "UNIT_BATCH", "UNIT_CROP", "UNIT_PERSON_FRAME", "UNIT_FPS", "UNITS", "REFERENCE_LABEL",
    "RESULTS", "Row", "summarize", "make_row", "ratio_against", "apply_ratios", "format_value", "markdown_table",
    "format_markdown", "write_report", "cpu_model", "loadavg", "environment", "row_by_key", "speed_ratio",
    "CPU_FLAGS", "cpu_flags", "cpu_flags_text",
]
