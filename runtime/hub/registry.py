"""The model zoo: short aliases for the official OpenMMLab checkpoints.

The aliases live in the package data file ``data/models.json`` (one entry per checkpoint: role, family, variant,
URL, file name, the sha256 prefix published in the file name, licence, input size, receptive field, and which alias
is the default of each role). Downloading them is :mod:`pose3d_rt.hub.download`; turning a model argument into an
engine is :mod:`pose3d_rt.hub.resolve`.
"""
from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..engines.errors import ModelError
from ..errors import InputError
from .cache import checkpoint_path
from .roles import Role

_REQUIRED_FIELDS: Tuple[str, ...] = (
    "alias", "role", "family", "variant", "url", "file_name", "sha256_prefix", "licence", "input_size",
    "receptive_field", "verified", "supported",
)


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


def list_models(role: Union[Role, str, None] = None) -> List[ZooEntry]:
    """All zoo entries (data-file order), or those of one ``role`` (any spelling :meth:`Role.parse` accepts)."""
    entries = list(_registry().values())
    if role is None:
        return entries
    role = Role.parse(role)
    return [e for e in entries if e.role == role.value]


def defaults() -> Dict[str, str]:
    """``{role: default alias}`` — the reference demo's three models."""
    return {e.role: e.alias for e in _registry().values() if e.default}


def default_alias(role: Union[Role, str]) -> str:
    """The default alias of ``role``."""
    return defaults()[Role.parse(role).value]


def alias_hint(role: Union[Role, str, None] = None) -> str:
    """The aliases (of ``role``, or all), comma-separated, the default marked: for error messages."""
    entries = list_models(role)
    return ", ".join(e.alias + (" (default)" if e.default else "") for e in entries)


def lookup(alias: str) -> Optional[ZooEntry]:
    """The entry called ``alias`` (case-insensitive, surrounding blanks ignored), or None."""
    return _registry().get(str(alias).strip().lower())


def get(alias: str) -> ZooEntry:
    """The entry called ``alias`` (case-insensitive); unknown aliases raise :class:`InputError` with close matches."""
    reg = _registry()
    entry = reg.get(str(alias).strip().lower())
    if entry is not None:
        return entry
    close = difflib.get_close_matches(str(alias).strip().lower(), list(reg), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(reg[c].alias) for c in close)}?" if close else ""
    raise InputError(f"unknown model alias {alias!r}{hint} (known aliases: {alias_hint()})")


def entry_for_url(url: str) -> Optional[ZooEntry]:
    """The entry that lists ``url`` as its URL or a mirror, or None."""
    for entry in _registry().values():
        if url in entry.urls:
            return entry
    return None


def describe(entries: Optional[Sequence[ZooEntry]] = None) -> str:
    """A plain-text table of ``entries`` (default: the whole zoo) for a ``models`` listing."""
    rows = [("alias", "role", "family", "variant", "input", "licence")]
    for e in entries if entries is not None else list_models():
        size = "x".join(str(v) for v in e.input_size) if e.input_size else "-"
        flags = ((" [default]" if e.default else "") + ("" if e.supported else " [not supported yet]")
                 + (" [cached]" if checkpoint_path(e.file_name).is_file() else ""))
        rows.append((e.alias + flags, e.role, e.family, e.variant, size, e.licence.split(" (")[0]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


__all__ = ["ZooEntry", "list_models", "get", "lookup", "entry_for_url", "defaults", "default_alias", "alias_hint",
           "describe"]
