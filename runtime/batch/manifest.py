"""What a batch keeps on disk besides the outputs: each finished video's record, the staging folders, the summary.

Layout under the batch's ``--output-root`` DIR::

    DIR/<key>/                      the outputs of one video (what ``run --output-root DIR/<key>`` writes) and
    DIR/<key>/batch_manifest.json   its record, written last: the video is done
    DIR/.pose3d-batch/partial/      staging: a video is processed into <key>.<pid>/ and moved to DIR/<key> when done
    DIR/batch_summary.json          one object per video of the last batch

A folder ``DIR/<key>`` only ever appears complete (outputs closed, record written, then one rename), so a worker
killed mid-video leaves nothing there; its staging folder is removed by the next batch. The record holds the input's
size, modification time and the first 16 hex digits of its sha256, and the run options; a video is skipped when
its record matches (same size, and the same mtime or, if the file was touched or copied, the same sha256 prefix)
and the outputs it lists exist. A URL is skipped when a record for the same URL and options exists.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..io.atomic import write_text_atomic
from .inputs import VideoTask

log = logging.getLogger(__name__)

MANIFEST_NAME = "batch_manifest.json"
SUMMARY_NAME = "batch_summary.json"
STATE_DIR = ".pose3d-batch"
SHA_PREFIX = 16
STATUSES = ("ok", "failed", "skipped")


@dataclass
class VideoResult:
    """One video's line of the batch summary (``status``: ok | failed | skipped; ``seconds``: time spent on it in
    this batch)."""

    input: str
    status: str
    frames: Optional[int] = None
    persons: Optional[int] = None
    seconds: Optional[float] = None
    error: Optional[str] = None
    output: Optional[str] = None

    def to_json(self) -> Dict[str, Any]:
        out = asdict(self)
        if self.seconds is not None:
            out["seconds"] = round(self.seconds, 3)
        return out


def failed(task: VideoTask, error: str, seconds: Optional[float] = None) -> VideoResult:
    return VideoResult(task.input, "failed", seconds=seconds, error=error)


def file_sha256_prefix(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()[:SHA_PREFIX]


def fingerprint(task: VideoTask, with_sha: bool = True) -> Dict[str, Any]:
    """``{"size", "mtime_ns", "sha256_prefix"}`` of a local input (empty for a URL)."""
    if task.is_url:
        return {}
    st = os.stat(task.input)
    out: Dict[str, Any] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if with_sha:
        out["sha256_prefix"] = file_sha256_prefix(Path(task.input))
    return out


def write_record(folder: Path, task: VideoTask, print_: Dict[str, Any], options: Dict[str, Any],
                 frames: int, persons: int, seconds: float) -> Path:
    """Write ``folder/batch_manifest.json`` atomically (after every output of the video is closed)."""
    outputs = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    record = {"input": task.input, **print_, "options": options, "frames": frames, "persons": persons,
              "seconds": round(seconds, 3), "outputs": outputs,
              "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    return write_text_atomic(folder / MANIFEST_NAME, json.dumps(record, indent=1) + "\n")


def read_record(folder: Path) -> Optional[Dict[str, Any]]:
    try:
        record = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _same_input(record: Dict[str, Any], task: VideoTask) -> bool:
    if task.is_url:
        return True
    try:
        now = fingerprint(task, with_sha=False)
    except OSError:
        return False
    if record.get("size") != now["size"]:
        return False
    if record.get("mtime_ns") == now["mtime_ns"]:
        return True
    return record.get("sha256_prefix") == file_sha256_prefix(Path(task.input))  # touched or copied


def done_record(root: Path, task: VideoTask, options: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The record of ``task`` under ``root`` if the video is done with these options and this input, else None."""
    folder = root / task.key
    record = read_record(folder)
    if record is None or record.get("input") != task.input:
        return None
    if record.get("options") != options:
        log.info("%s: options changed since it was done; processing it again", task.input)
        return None
    if not all((folder / name).is_file() for name in record.get("outputs", [])):
        return None
    return record if _same_input(record, task) else None


def staging_dir(root: Path, key: str) -> Path:
    """A fresh staging folder for ``key``, unique to this process."""
    folder = root / STATE_DIR / "partial" / f"{key}.{os.getpid()}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def clear_staging(root: Path) -> None:
    """Remove what killed workers of an earlier batch left in ``DIR/.pose3d-batch`` (one batch per DIR at a time)."""
    shutil.rmtree(root / STATE_DIR, ignore_errors=True)


def promote(staging: Path, final: Path) -> None:
    """Move the finished ``staging`` folder to ``final`` (replacing an older one: renamed away first, deleted after)."""
    old = None
    if final.exists():
        old = staging.with_name(f"{staging.name}.old")
        os.replace(final, old)
    os.replace(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_summary(root: Path, results: List[VideoResult]) -> Path:
    """``DIR/batch_summary.json``: a list, one object per video (atomic)."""
    return write_text_atomic(root / SUMMARY_NAME, json.dumps([r.to_json() for r in results], indent=1) + "\n")


__all__ = ["VideoResult", "MANIFEST_NAME", "SUMMARY_NAME", "STATE_DIR", "STATUSES", "failed", "fingerprint",
           "write_record", "read_record", "done_record", "staging_dir", "clear_staging", "promote", "write_summary"]
