"""Rows quoted from a timing file of the real mmpose demo (``tests/fixtures/e2e/baseline_timing.json``): the
speed of the reference, measured elsewhere, next to this run's rows."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

from benchmarks.core import (
    REFERENCE_LABEL,
    STAGES,
    UNIT_CROP,
    UNIT_FPS,
    UNIT_FRAME,
    UNIT_PERSON_FRAME,
    Row,
    make_row,
)

REPO_REFERENCE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "e2e" / "baseline_timing.json"


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


def _stage_rows(r: Dict[str, Any], stages: Iterable[str]) -> List[Row]:
    """The per-stage rows (per-frame statistics of one run; 2D and lifter per instance)."""
    per_frame = r.get("per_frame") or []
    inst = r.get("instances_per_frame") or []

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
    return [make_row(stage, REFERENCE_LABEL, unit, [s * 1000.0 for s in secs], reference=True,
                     note=f"{what}; statistics over the {len(secs)} frames of one run")
            for stage, unit, secs, what in specs if stage in stages and secs]


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
    rows = _stage_rows(r, stages)
    st = r.get("stages") or {}
    frames, total = st.get("frames", r.get("frames")), st.get("frames_total_s")
    if "e2e" in stages and frames and total:
        note = f"{frames} frames / {total} s frame loop of one run"
        if r.get("wall_s_including_startup"):
            note += f"; {frames / float(r['wall_s_including_startup']):.3f} FPS including start-up"
        rows.append(make_row("e2e", REFERENCE_LABEL, UNIT_FPS, [float(frames) / float(total)], reference=True,
                             note=note))
    return rows


__all__ = ["REPO_REFERENCE", "reference_info", "reference_rows"]
