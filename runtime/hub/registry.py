"""Model zoo: short aliases for the official OpenMMLab checkpoints, and a verified, resumable downloader.

The aliases live in the package data file ``data/models.json`` (one entry per checkpoint: role, family, variant,
URL, file name, the sha256 prefix published in the file name, licence, input size, receptive field). Downloads go
to ``cache_home()/checkpoints/`` (``$POSE3D_RT_HOME``, default ``~/.cache/pose3d_rt``):

- a ``.part`` file receives the bytes; an interrupted download is resumed with an HTTP ``Range`` request, both
  within one call (after a dropped connection or a truncated body) and across calls;
- transient failures (connection reset/refused, timeouts, truncated bodies, HTTP 408/429/5xx) are retried with
  exponential back-off; HTTP 404 and other client errors are not;
- the finished file must have a sha256 starting with the 8 hex digits of its published name (mmpose names its
  releases ``<stem>-<sha256[:8]>[_<date>].pth``); a mismatch deletes the ``.part`` and raises;
- the verified file is renamed atomically into place, so the cache never holds a partial or unverified
  checkpoint under its final name, and a cached valid file is never downloaded again.

:func:`resolve_model` turns what a user passes for a model (a path, a URL or an alias) into a local path.
Only the standard library is used for HTTP (``urllib``); progress is shown with ``tqdm``.
"""
from __future__ import annotations

import contextlib
import difflib
import http.client
import json
import logging
import os
import re
import socket
import time
from dataclasses import dataclass
from functools import lru_cache
from http import HTTPStatus
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.error import HTTPError, URLError
from urllib.parse import unquote, urlsplit
from urllib.request import Request, urlopen

from .._version import __version__
from ..engines.errors import ModelError
from ..errors import InputError
from .cache import cache_home, file_sha256

log = logging.getLogger(__name__)

ROLES: Tuple[str, ...] = ("detector", "pose2d", "lifter")
_ROLE_NAMES: Dict[str, str] = {
    "detector": "detector", "det": "detector", "person detector": "detector",
    "pose2d": "pose2d", "2d": "pose2d", "pose": "pose2d", "2d pose model": "pose2d", "pose estimator": "pose2d",
    "lifter": "lifter", "pose3d": "lifter", "3d": "lifter", "pose lifter": "lifter",
}
MODEL_SUFFIXES: Tuple[str, ...] = (".onnx", ".engine", ".plan", ".trt", ".pth", ".pt", ".ckpt")
_REQUIRED_FIELDS: Tuple[str, ...] = (
    "alias", "role", "family", "variant", "url", "file_name", "sha256_prefix", "licence", "input_size",
    "receptive_field", "verified", "supported",
)
# "<stem>-<8 hex>[_<8-digit date>].<ext>" (mmpose tools/misc/publish_model.py naming).
_HASH_IN_NAME = re.compile(r"-(?P<hash>[0-9a-f]{8})(?P<date>_\d{8})?\.[A-Za-z0-9]+$")
_TRANSIENT_HTTP = frozenset({408, 425, 429})
_CHUNK = 1 << 16


@dataclass(frozen=True)
class ZooEntry:
    """One official checkpoint. ``input_size`` is (width, height) for detector/pose2d, (frames, keypoints) for
    lifters; ``sha256_prefix`` is what the downloaded file's sha256 must start with."""

    alias: str
    role: str
    family: str
    variant: str
    url: str
    file_name: str
    sha256_prefix: str
    licence: str
    input_size: Optional[Tuple[int, ...]]
    receptive_field: Optional[int] = None
    num_keypoints: Optional[int] = None
    config: str = ""
    source: str = ""
    verified: bool = True
    supported: bool = True
    mirrors: Tuple[str, ...] = ()
    notes: str = ""
    default: bool = False

    @property
    def urls(self) -> Tuple[str, ...]:
        """The URL followed by its mirrors, in the order they are tried."""
        return (self.url, *self.mirrors)

    @property
    def non_commercial(self) -> bool:
        """True when the weights' licence forbids commercial use (VideoPose3D: CC BY-NC 4.0)."""
        return "NC" in self.licence.replace("NON-COMMERCIAL", "NC").upper()


# ---------------------------------------------------------------------------------------------------- registry


def _read_zoo_file() -> Dict[str, Any]:
    text = resources.files(__package__).joinpath("data").joinpath("models.json").read_text(encoding="utf-8")
    return json.loads(text)


def _entry_from_dict(raw: Mapping[str, Any], defaults: Mapping[str, str]) -> ZooEntry:
    missing = [f for f in _REQUIRED_FIELDS if f not in raw]
    if missing:
        raise ModelError(f"models.json: entry {raw.get('alias', '?')!r} lacks field(s) {', '.join(missing)}")
    size = raw["input_size"]
    return ZooEntry(
        alias=str(raw["alias"]),
        role=str(raw["role"]),
        family=str(raw["family"]),
        variant=str(raw["variant"]),
        url=str(raw["url"]),
        file_name=str(raw["file_name"]),
        sha256_prefix=str(raw["sha256_prefix"]).lower(),
        licence=str(raw["licence"]),
        input_size=None if size is None else tuple(int(v) for v in size),
        receptive_field=None if raw["receptive_field"] is None else int(raw["receptive_field"]),
        num_keypoints=None if raw.get("num_keypoints") is None else int(raw["num_keypoints"]),
        config=str(raw.get("config", "")),
        source=str(raw.get("source", "")),
        verified=bool(raw["verified"]),
        supported=bool(raw["supported"]),
        mirrors=tuple(str(u) for u in raw.get("mirrors", ())),
        notes=str(raw.get("notes", "")),
        default=defaults.get(str(raw["role"])) == raw["alias"],
    )


@lru_cache(maxsize=1)
def _registry() -> Dict[str, ZooEntry]:
    """``{lower-cased alias: entry}`` in data-file order."""
    data = _read_zoo_file()
    defaults = data.get("defaults", {})
    out: Dict[str, ZooEntry] = {}
    for raw in data["models"]:
        entry = _entry_from_dict(raw, defaults)
        key = entry.alias.lower()
        if key in out:
            raise ModelError(f"models.json: alias {entry.alias!r} is listed twice")
        out[key] = entry
    return out


def _normalise_role(role: str) -> str:
    key = str(role).strip().lower()
    if key not in _ROLE_NAMES:
        raise InputError(f"unknown model role {role!r}; expected one of {', '.join(ROLES)}")
    return _ROLE_NAMES[key]


def list_models(role: Optional[str] = None) -> List[ZooEntry]:
    """All zoo entries (data-file order), or those of one ``role`` (detector / pose2d / lifter)."""
    entries = list(_registry().values())
    if role is None:
        return entries
    role = _normalise_role(role)
    return [e for e in entries if e.role == role]


def defaults() -> Dict[str, str]:
    """``{role: default alias}`` — the reference demo's three models."""
    return {e.role: e.alias for e in _registry().values() if e.default}


def default_alias(role: str) -> str:
    """The default alias of ``role``."""
    role = _normalise_role(role)
    return defaults()[role]


def _alias_hint(role: Optional[str] = None) -> str:
    entries = list_models(role)
    return ", ".join(e.alias + (" (default)" if e.default else "") for e in entries)


def get(alias: str) -> ZooEntry:
    """The entry called ``alias`` (case-insensitive); unknown aliases raise :class:`InputError` with close matches."""
    reg = _registry()
    entry = reg.get(str(alias).strip().lower())
    if entry is not None:
        return entry
    close = difflib.get_close_matches(str(alias).strip().lower(), list(reg), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(reg[c].alias) for c in close)}?" if close else ""
    raise InputError(f"unknown model alias {alias!r}{hint} (known aliases: {_alias_hint()})")


def is_url(text: str) -> bool:
    """True for an http(s) URL."""
    return urlsplit(text).scheme.lower() in ("http", "https")


def _entry_for_url(url: str) -> Optional[ZooEntry]:
    for entry in _registry().values():
        if url in entry.urls:
            return entry
    return None


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
        entry = _entry_for_url(text)
        if entry is not None:
            return (text, *[u for u in entry.urls if u != text]), entry.file_name, entry.sha256_prefix, text
        name = _url_file_name(text)
        return (text,), name, expected_prefix_from_name(name), text
    e = get(text)
    return e.urls, e.file_name, e.sha256_prefix, e.alias


def path(alias_or_url: Union[str, ZooEntry]) -> Path:
    """Where ``alias_or_url`` is (or would be) cached: ``cache_home()/checkpoints/<file name>``."""
    _, name, _, _ = _target(alias_or_url)
    return cache_home() / "checkpoints" / name


# ---------------------------------------------------------------------------------------------------- download


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
    dest = cache_home() / "checkpoints" / name
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

        resumed = part.is_file() and part.stat().st_size > 0
        while True:
            errors: List[str] = []
            for url in urls:
                try:
                    _download_url(url, part, retries=retries, timeout=timeout, backoff=backoff, progress=progress)
                    break
                except (_Fatal, _Transient) as exc:
                    errors.append(f"{url}: {exc}")
                    if isinstance(exc, _Fatal) and part.exists():
                        part.unlink()  # the resource is gone/forbidden here: its partial bytes are useless
            else:
                where = errors[0] if len(errors) == 1 else "; ".join(errors)
                left = f" (partial download kept at {part} for resuming)" if part.exists() else ""
                raise ModelError(f"{where}{left}" if len(errors) == 1 else f"{label}: download failed: {where}{left}")
            ok, digest = _verify(part, prefix)
            if ok:
                break
            part.unlink()
            if resumed:  # the old .part (from an earlier run) may have been stale: start over once
                log.warning("%s: sha256 mismatch after resuming an earlier partial download; restarting", label)
                resumed = False
                continue
            raise ModelError(
                f"{label}: sha256 mismatch for {name}: expected a hash starting with {prefix}, got {digest} "
                f"(the download was deleted)"
            )
        os.replace(part, dest)
        log.info("%s: saved %s", label, dest)
        return dest


# ---------------------------------------------------------------------------------------------------- resolution


def is_remote(text: str) -> bool:
    """True for an http(s) URL or a zoo alias (any role): what :func:`resolve_model` would fetch."""
    return is_url(text) or text.strip().lower() in _registry()


def _classify(arg: Union[str, os.PathLike], role: str) -> Tuple[str, Union[Path, str, ZooEntry]]:
    """What a user passed for the ``role`` model, without network access: ``("path", Path)``, ``("url", str)`` or
    ``("alias", ZooEntry)``. Unknown names, wrong-role and unsupported aliases raise the user-facing errors."""
    role = _normalise_role(role)
    text = os.fspath(arg) if isinstance(arg, os.PathLike) else str(arg)
    local = Path(text).expanduser()
    if text and local.exists():
        return "path", local
    if is_url(text):
        return "url", text
    entry = _registry().get(text.strip().lower())
    if entry is not None:
        if entry.role != role:
            raise InputError(
                f"alias {entry.alias!r} is a {entry.role} model, not a {role}; {role} aliases: {_alias_hint(role)}"
            )
        if not entry.supported:
            raise ModelError(
                f"alias {entry.alias!r} ({entry.family} {entry.variant}) is listed in the zoo but not yet supported "
                f"by the runtime; {role} aliases that work: "
                + ", ".join(e.alias for e in list_models(role) if e.supported)
            )
        return "alias", entry
    looks_like_path = local.suffix.lower() in MODEL_SUFFIXES or os.sep in text or "/" in text
    close = difflib.get_close_matches(text.strip().lower(), [e.alias.lower() for e in list_models(role)], n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    what = "no such file" if looks_like_path else "not an existing file, an http(s) URL or a known model alias"
    raise InputError(
        f"{text!r} given for the {role}: {what}.{hint} Specify a model as a path to an "
        f"{'/'.join(s.lstrip('.') for s in MODEL_SUFFIXES)} file, an http(s):// URL of a checkpoint, or a zoo "
        f"alias ({role} aliases: {_alias_hint(role)})"
    )


def check_model_arg(arg: Union[str, os.PathLike], role: str) -> None:
    """Validate what a user passed for the ``role`` model without any network access or download: an existing
    path, an http(s) URL, or a supported alias of that role. Raises the error :func:`resolve_model` would."""
    _classify(arg, role)


def resolve_model(arg: Union[str, os.PathLike], role: str, **fetch_kwargs: Any) -> Path:
    """Local path for what a user passed for the ``role`` model: an existing path (returned as is), an http(s)
    URL (fetched) or a zoo alias of that role (fetched). ``fetch_kwargs`` go to :func:`fetch`."""
    kind, value = _classify(arg, role)
    return value if kind == "path" else fetch(value, **fetch_kwargs)  # type: ignore[arg-type,return-value]


def fetch_and_export(alias: Union[str, ZooEntry], export_options: Optional[Dict[str, Any]] = None,
                     **fetch_kwargs: Any) -> Path:
    """Fetch a zoo checkpoint and export it to ONNX once (cached); returns the .onnx path. Needs the [export] extra."""
    entry = alias if isinstance(alias, ZooEntry) else get(alias)
    if not entry.supported:
        raise ModelError(f"alias {entry.alias!r} ({entry.family}) cannot be exported: not yet supported by the runtime")
    checkpoint = fetch(entry, **fetch_kwargs)
    from . import cache as models  # runtime module; imports the exporter (torch) lazily itself

    if export_options is None and entry.role == "lifter":
        export_options = models.lifter_export_options()  # what Pose3DPipeline exports, so the cache is shared

    return models.export_cached(checkpoint, entry.role, export_options)


def describe(entries: Optional[Sequence[ZooEntry]] = None) -> str:
    """A plain-text table of ``entries`` (default: the whole zoo) for a ``models`` listing."""
    rows = [("alias", "role", "family", "variant", "input", "licence")]
    for e in entries if entries is not None else list_models():
        size = "x".join(str(v) for v in e.input_size) if e.input_size else "-"
        flags = ((" [default]" if e.default else "") + ("" if e.supported else " [not supported yet]")
                 + (" [cached]" if path(e).is_file() else ""))
        rows.append((e.alias + flags, e.role, e.family, e.variant, size, e.licence.split(" (")[0]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


__all__ = [
    "ROLES", "ZooEntry", "list_models", "get", "defaults", "default_alias", "cache_home", "path", "fetch",
    "resolve_model", "check_model_arg", "is_remote", "is_url", "fetch_and_export", "expected_prefix_from_name", "describe",
]
