"""A verified, resumable HTTP download of a checkpoint (a zoo alias, a zoo entry or any http(s) URL).

Downloads go to ``cache_home()/checkpoints/`` (``$POSE3D_RT_HOME``, default ``~/.cache/pose3d_rt``):

- a ``.part`` file receives the bytes; an interrupted download is resumed with an HTTP ``Range`` request, both
  within one call (after a dropped connection or a truncated body) and across calls;
- transient failures (connection reset/refused, timeouts, truncated bodies, HTTP 408/429/5xx) are retried with
  exponential back-off; HTTP 404 and other client errors are not;
- the finished file must have a sha256 starting with the 8 hex digits of its published name (mmpose names its
  releases ``<stem>-<sha256[:8]>[_<date>].pth``); a mismatch deletes the ``.part`` and raises;
- the verified file is renamed atomically into place, so the cache never holds a partial or unverified
  checkpoint under its final name, and a cached valid file is never downloaded again.

Only the standard library is used for HTTP (``urllib``); progress is shown with ``tqdm``.
"""
from __future__ import annotations

import contextlib
import http.client
import logging
import re
import socket
import time
from http import HTTPStatus
from pathlib import Path, PurePosixPath
from typing import Any, Iterator, List, Optional, Tuple, Union
from urllib.error import HTTPError, URLError
from urllib.parse import unquote, urlsplit
from urllib.request import Request, urlopen

from .._version import __version__
from ..engines.errors import ModelError
from ..errors import InputError
from ..io.atomic import replace_file
from .cache import checkpoint_path, file_sha256
from .registry import ZooEntry, entry_for_url, get

log = logging.getLogger(__name__)

# "<stem>-<8 hex>[_<8-digit date>].<ext>" (mmpose tools/misc/publish_model.py naming).
_HASH_IN_NAME = re.compile(r"-(?P<hash>[0-9a-f]{8})(?P<date>_\d{8})?\.[A-Za-z0-9]+$")
_TRANSIENT_HTTP = frozenset({408, 425, 429})
_CHUNK = 1 << 16


def is_url(text: str) -> bool:
    """True for an http(s) URL."""
    return urlsplit(text).scheme.lower() in ("http", "https")


def expected_prefix_from_name(file_name: str) -> Optional[str]:
    """The sha256 prefix carried by a published file name (``...-235e8209.pth``, ``...-e48f03d0_20230504.pth``).

    An all-digit 8-character group without a trailing ``_<date>`` is not taken as a hash (it is more likely a date,
    e.g. ``model-20230504.pth``), so such files are downloaded without a check rather than rejected.
    """
    m = _HASH_IN_NAME.search(file_name)
    if m is None:
        return None
    if m.group("date") is None and m.group("hash").isdigit():
        return None
    return m.group("hash")


def _url_file_name(url: str) -> str:
    name = PurePosixPath(unquote(urlsplit(url).path)).name
    if name in ("", ".", "..") or "/" in name or "\\" in name:
        raise InputError(f"{url}: the URL does not end in a file name, so it cannot be cached")
    return name


def _target(alias_or_url: Union[str, ZooEntry]) -> Tuple[Tuple[str, ...], str, Optional[str], str]:
    """(urls, file name, expected sha256 prefix, label for messages) for an alias, entry or URL."""
    if isinstance(alias_or_url, ZooEntry):
        e = alias_or_url
        return e.urls, e.file_name, e.sha256_prefix, e.alias
    text = str(alias_or_url).strip()
    if is_url(text):
        entry = entry_for_url(text)
        if entry is not None:
            return (text, *[u for u in entry.urls if u != text]), entry.file_name, entry.sha256_prefix, text
        name = _url_file_name(text)
        return (text,), name, expected_prefix_from_name(name), text
    e = get(text)
    return e.urls, e.file_name, e.sha256_prefix, e.alias



def path(alias_or_url: Union[str, ZooEntry]) -> Path:
    """Where ``alias_or_url`` is (or would be) cached: ``cache_home()/checkpoints/<file name>``."""
    _, name, _, _ = _target(alias_or_url)
    return checkpoint_path(name)


class _Transient(Exception):
    """A failure worth retrying (the .part file, if any, is kept for resuming)."""


class _Fatal(Exception):
    """A failure not worth retrying with this URL (e.g. HTTP 404)."""

    def __init__(self, message: str, status: Optional[int] = None):
        super().__init__(message)
        self.status = status


def _parse_content_range(value: Optional[str]) -> Tuple[Optional[int], Optional[int]]:
    """(first byte, total size) from ``bytes a-b/N`` or ``bytes */N``; None where absent or ``*``."""
    m = re.match(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*$", value or "")
    if m is None:
        return None, None
    start = int(m.group(1)) if m.group(1) is not None else None
    total = int(m.group(2)) if m.group(2) != "*" else None
    return start, total


def _content_length(resp: Any) -> Optional[int]:
    value = resp.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _status_phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return ""


def _progress_bar(total: Optional[int], initial: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
                disable=not enabled, leave=False)


def _attempt(url: str, part: Path, timeout: float, progress: bool) -> None:
    """One GET of ``url`` into ``part`` (resuming from its current size). Raises _Transient/_Fatal/HTTPError."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": f"pose3d-rt/{__version__}", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        resp = urlopen(Request(url, headers=headers), timeout=timeout)
    except HTTPError as exc:
        if exc.code == 416 and have:
            _, total = _parse_content_range(exc.headers.get("Content-Range") if exc.headers else None)
            exc.close()
            if total == have:
                log.info("%s: the partial download is already complete (%d bytes)", part, have)
                return
            part.unlink()
            raise _Transient(f"server refused to resume at byte {have} (HTTP 416); restarting") from None
        raise
    with resp:
        status = getattr(resp, "status", 200)
        length = _content_length(resp)
        if status == 206:
            start, total = _parse_content_range(resp.headers.get("Content-Range"))
            if start != have:
                part.unlink()
                raise _Transient(f"server resumed at byte {start}, not {have}; restarting")
            mode = "ab"
        else:  # 200: the server sent the whole file (it ignored or was not sent a Range header)
            if have:
                log.info("%s: server does not support resuming; downloading from the start", url)
            have, mode = 0, "wb"
            total = length
        got = 0
        truncated: Optional[str] = None
        try:
            fh = open(part, mode)
        except OSError as exc:
            raise ModelError(f"{part}: cannot write the download ({exc})") from None
        with fh, _progress_bar(total, have, part.name[: -len(".part")], progress) as bar:
            while True:
                try:
                    chunk = resp.read(_CHUNK)
                except http.client.IncompleteRead as exc:
                    chunk, truncated = exc.partial, "connection closed early"
                if chunk:
                    try:
                        fh.write(chunk)
                    except OSError as exc:
                        raise ModelError(f"{part}: cannot write the download ({exc})") from None
                    got += len(chunk)
                    bar.update(len(chunk))
                if not chunk or truncated:
                    break
    if length is not None and got != length:
        raise _Transient(f"truncated body: received {got} of {length} bytes")
    if truncated:
        raise _Transient(f"truncated body: {truncated} after {got} bytes")


def _download_url(url: str, part: Path, *, retries: int, timeout: float, backoff: float, progress: bool) -> None:
    """Download ``url`` into ``part`` with retries on transient errors; raise _Fatal or _Transient when giving up."""
    last = "no attempt made"
    attempts = max(0, int(retries)) + 1
    for attempt in range(attempts):
        if attempt:
            delay = backoff * 2 ** (attempt - 1)
            log.warning("%s: %s; retry %d/%d in %.1f s", url, last, attempt, attempts - 1, delay)
            if delay > 0:
                time.sleep(delay)
        try:
            _attempt(url, part, timeout, progress)
            return
        except HTTPError as exc:
            reason = exc.reason if isinstance(exc.reason, str) and exc.reason else _status_phrase(exc.code)
            last = f"HTTP {exc.code} {reason}".strip()
            exc.close()
            if exc.code in _TRANSIENT_HTTP or 500 <= exc.code < 600:
                continue
            raise _Fatal(last, exc.code) from None
        except _Transient as exc:
            last = str(exc)
        except (URLError, OSError, http.client.HTTPException) as exc:  # resets, refusals, timeouts, bad status
            reason = getattr(exc, "reason", None) or exc
            last = f"network error: {type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__
            if isinstance(reason, socket.gaierror):  # the host name does not resolve: offline, or a typo
                raise _Fatal(f"{last} (no network, or a wrong host name?)") from None
    raise _Transient(f"{last} (gave up after {attempts} attempt{'s' if attempts > 1 else ''})")


@contextlib.contextmanager
def _lock(lock_path: Path) -> Iterator[None]:
    """Exclusive inter-process lock where ``fcntl`` exists (POSIX); a no-op elsewhere."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _verify(file: Path, prefix: Optional[str]) -> Tuple[bool, str]:
    digest = file_sha256(file)
    return (prefix is None or digest.startswith(prefix)), digest


def _download_any(urls: Tuple[str, ...], part: Path, label: str, **kwargs: Any) -> None:
    """Download into ``part`` from the first of ``urls`` that works (mirrors after the URL); ModelError if none."""
    errors: List[str] = []
    for url in urls:
        try:
            _download_url(url, part, **kwargs)
            return
        except (_Fatal, _Transient) as exc:
            errors.append(f"{url}: {exc}")
            if isinstance(exc, _Fatal) and part.exists():
                part.unlink()  # the resource is gone/forbidden here: its partial bytes are useless
    where = errors[0] if len(errors) == 1 else "; ".join(errors)
    left = f" (partial download kept at {part} for resuming)" if part.exists() else ""
    raise ModelError(f"{where}{left}" if len(errors) == 1 else f"{label}: download failed: {where}{left}")


def _download_verified(urls: Tuple[str, ...], part: Path, name: str, prefix: Optional[str], label: str,
                       **kwargs: Any) -> None:
    """Download into ``part`` until its sha256 starts with ``prefix``; a mismatch deletes it and raises, after one
    fresh restart when the download resumed a ``.part`` left by an earlier run (which may have been stale)."""
    resumed = part.is_file() and part.stat().st_size > 0
    while True:
        _download_any(urls, part, label, **kwargs)
        ok, digest = _verify(part, prefix)
        if ok:
            return
        part.unlink()
        if resumed:
            log.warning("%s: sha256 mismatch after resuming an earlier partial download; restarting", label)
            resumed = False
            continue
        raise ModelError(
            f"{label}: sha256 mismatch for {name}: expected a hash starting with {prefix}, got {digest} "
            f"(the download was deleted)"
        )


def fetch(alias_or_url: Union[str, ZooEntry], *, progress: bool = True, retries: int = 3, timeout: float = 30,
          backoff: float = 1.0) -> Path:
    """Download a zoo checkpoint (by alias or entry) or any http(s) URL into ``cache_home()/checkpoints/``.

    Returns the path of the verified file. A cached file whose sha256 matches is returned without network access.
    ``retries`` is the number of retries per URL after the first attempt on transient errors, waiting
    ``backoff * 2**k`` seconds before retry k+1; mirrors of a zoo entry are tried after its URL fails.
    Raises :class:`ModelError` on HTTP errors (e.g. ``"<url>: HTTP 404 Not Found"``), on a body that stays
    truncated, and on a sha256 mismatch (the partial file is deleted).
    """
    urls, name, prefix, label = _target(alias_or_url)
    dest = checkpoint_path(name)
    part = dest.with_name(name + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"{dest.parent}: cannot create the checkpoint cache ({exc}); set POSE3D_RT_HOME") from None
    with _lock(dest.with_name(name + ".lock")):
        if dest.is_file():
            ok, digest = _verify(dest, prefix)
            if ok:
                log.info("%s: using cached %s", label, dest)
                return dest
            log.warning("%s: cached %s has sha256 %s, expected prefix %s; downloading again", label, dest, digest, prefix)
            dest.unlink()
        if prefix is None:
            log.warning("%s: the file name carries no sha256 prefix; the download cannot be verified", label)
        _download_verified(urls, part, name, prefix, label, retries=retries, timeout=timeout, backoff=backoff,
                           progress=progress)
        replace_file(part, dest)  # fsync, then one rename: the cache never holds a half-written checkpoint
        log.info("%s: saved %s", label, dest)
        return dest


__all__ = ["fetch", "path", "is_url", "expected_prefix_from_name"]
