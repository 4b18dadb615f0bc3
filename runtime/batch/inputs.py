"""``batch`` INPUT arguments -> the list of videos, each with its own output folder name.

An INPUT is, in this order of checks:

- an http(s)/rtsp/... URL: one video;
- a list file (``.txt``, ``.lst``, ``.list``): one path or URL per line (blank lines and lines starting with ``#``
  skipped; a relative path is relative to the list file's folder);
- a folder: the video files in it and its sub-folders (by suffix, :data:`VIDEO_SUFFIXES`), sorted;
- an existing file: one video (any suffix: ``run`` decides whether it can read it);
- a glob pattern (``*``, ``?``, ``[``; ``**`` recurses): the files it matches, sorted.

Anything else is a one-line :class:`~pose3d_rt.errors.InputError` naming the argument. The same video given twice
is processed once. Each video's output folder is its file stem; stems that collide in one batch get the first 8
hex digits of the sha1 of the full path appended (``clip-1a2b3c4d``).
"""
from __future__ import annotations

import glob
import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List

from ..errors import InputError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts",
                  ".mts", ".3gp", ".ogv")
LIST_SUFFIXES = (".txt", ".lst", ".list")
_URL = re.compile(r"^(rtsp|rtmp|http|https|udp|tcp)://", re.IGNORECASE)
_GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class VideoTask:
    """One video of a batch: ``input`` (an absolute path or a URL) and ``key``, its output folder's name."""

    input: str
    key: str

    @property
    def is_url(self) -> bool:
        return bool(_URL.match(self.input))


def is_url(text: str) -> bool:
    return bool(_URL.match(text))


def _folder_videos(folder: Path) -> List[str]:
    found = sorted(str(p.resolve()) for p in folder.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    if not found:
        raise InputError(f"{folder}: folder contains no video files ({', '.join(VIDEO_SUFFIXES)})")
    return found


def _list_file(path: Path) -> List[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the list file ({exc})") from None
    out = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if is_url(line):
            out.append(line)
            continue
        item = Path(line).expanduser()
        item = item if item.is_absolute() else path.parent / item
        if not item.is_file():
            raise InputError(f"{path}:{number}: {line}: no such video file")
        out.append(str(item.resolve()))
    if not out:
        raise InputError(f"{path}: the list file names no video")
    return out


def _glob(pattern: str) -> List[str]:
    found = sorted(str(Path(p).resolve()) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
    if not found:
        raise InputError(f"{pattern}: the pattern matches no file")
    return found


def _expand_one(arg: str) -> List[str]:
    if is_url(arg):
        return [arg]
    path = Path(arg).expanduser()
    if path.is_dir():
        return _folder_videos(path)
    if path.is_file():
        return _list_file(path) if path.suffix.lower() in LIST_SUFFIXES else [str(path.resolve())]
    if _GLOB.search(arg):
        return _glob(str(path))
    raise InputError(f"{arg}: no such file, folder or pattern")


def _stem(spec: str) -> str:
    name = Path(spec.split("?")[0].rstrip("/")).stem if is_url(spec) else Path(spec).stem
    return name.strip(". ") or "video"


def _keys(specs: List[str]) -> List[str]:
    stems = [_stem(s) for s in specs]
    counts = Counter(stems)
    return [stem if counts[stem] == 1 else f"{stem}-{hashlib.sha1(spec.encode()).hexdigest()[:8]}"
            for stem, spec in zip(stems, specs)]


def expand_inputs(args: Iterable[str]) -> List[VideoTask]:
    """The videos named by ``batch``'s INPUT arguments, in the order given, each once, with its folder name."""
    specs: List[str] = []
    seen = set()
    for arg in args:
        for spec in _expand_one(str(arg)):
            if spec not in seen:
                seen.add(spec)
                specs.append(spec)
    if not specs:
        raise InputError("no input: give video files, folders, glob patterns or a list file")
    return [VideoTask(spec, key) for spec, key in zip(specs, _keys(specs))]


__all__ = ["VideoTask", "expand_inputs", "is_url", "VIDEO_SUFFIXES", "LIST_SUFFIXES"]
