"""The one atomic-write helper: write beside the target under a temporary name, fsync, ``os.replace``.

Readers (and an interrupted run) see the old file or the complete new one, never a half-written one.

>>> with atomic_path(Path("out/results.npz")) as tmp:   # tmp = out/.results.npz.<pid>.part.npz
...     np.savez_compressed(tmp, **arrays)             # any writer that takes a path (cv2.imwrite, numpy, ...)
>>> write_text_atomic(Path("report.md"), text)
>>> replace_file(part, dest)                           # a temporary file made elsewhere (a resumable download)

The temporary name keeps the target's suffix (``cv2.imwrite`` and ``numpy.savez`` choose the format by it) and
starts with a dot; it is removed when the writer fails.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator, Union

from ..errors import InputError

PathLike = Union[str, os.PathLike]


def temp_path(target: PathLike) -> Path:
    """A temporary name beside ``target``, unique per process, with the target's suffix."""
    target = Path(target)
    return target.with_name(f".{target.name}.{os.getpid()}.part{target.suffix}")


def fsync_file(path: PathLike) -> None:
    """Flush ``path``'s bytes to the disk (so that a rename after a power loss never shows an empty file)."""
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def replace_file(tmp: PathLike, target: PathLike, *, fsync: bool = True) -> None:
    """Move the finished file ``tmp`` onto ``target`` in one step (after flushing it to disk)."""
    if fsync:
        fsync_file(tmp)
    os.replace(tmp, target)


@contextlib.contextmanager
def atomic_path(target: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target`` to write; when the block ends without error it is fsynced and
    renamed onto ``target``, otherwise removed (and the error propagates)."""
    tmp = temp_path(target)
    try:
        yield tmp
        replace_file(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_bytes_atomic(target: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically; returns ``target`` as a Path."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text_atomic(target: PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``target`` atomically; returns ``target`` as a Path."""
    return write_bytes_atomic(target, text.encode(encoding))


def prepare_output_dir(path: PathLike, flag: str) -> Path:
    """Create the output folder ``path`` if needed and check that it can be written; a one-line
    :class:`~pose3d_rt.errors.InputError` naming ``flag`` (``--output-root``, ``--pred-out-dir``, ...) otherwise."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{flag} {p}: cannot create the folder ({exc.strerror or exc})") from None
    if not p.is_dir():
        raise InputError(f"{flag} {p}: not a folder")
    if not os.access(p, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {p}: not writable")
    return p


__all__ = ["prepare_output_dir", "atomic_path", "replace_file", "fsync_file", "temp_path", "write_bytes_atomic", "write_text_atomic"]
