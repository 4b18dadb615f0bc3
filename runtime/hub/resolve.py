"""From what a user passes for a model to an :class:`~pose3d_rt.engines.base.Engine`: the one resolver of the CLI,
the Python API (:class:`~pose3d_rt.pipeline.Pose3DPipeline`) and the benchmarks.

A model argument is, in this order (:func:`classify`):

- an Engine (anything with ``run`` and ``inputs``): used as is;
- ``"none"`` for the lifter: no lifter (2D only);
- an existing file: ``.onnx`` / ``.engine`` / ``.plan`` / ``.trt`` are opened, ``.pth`` / ``.pt`` / ``.ckpt``
  (official OpenMMLab checkpoints) are exported to ONNX once and cached (:func:`~pose3d_rt.hub.cache.export_cached`);
- an http(s) URL of a checkpoint, or a zoo alias of the role: downloaded (verified, cached), then as above.

:func:`check` validates an argument without any network access, so a typo fails before a download starts.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Union

from ..engines.base import Engine
from ..engines.errors import ModelError
from ..engines.loader import CHECKPOINT_SUFFIXES, ENGINE_SUFFIXES, load_engine
from ..errors import InputError
from . import cache
from .download import fetch, is_url
from .registry import ZooEntry, alias_hint, get, list_models, lookup
from .roles import Role, role_of_family

ModelArg = Union[str, os.PathLike, Engine]
MODEL_SUFFIXES = ENGINE_SUFFIXES + CHECKPOINT_SUFFIXES


@dataclass(frozen=True)
class ModelRef:
    """What a model argument is (:func:`classify`): ``kind`` is ``"engine"`` (``value`` the Engine), ``"none"``
    (the lifter's 2D-only choice; ``value`` None), ``"path"`` (an existing local :class:`Path`), ``"url"`` (str)
    or ``"alias"`` (the :class:`ZooEntry`)."""

    kind: str
    role: Role
    value: Any

    @property
    def remote(self) -> bool:
        """True when resolving it downloads (or reuses a cached download)."""
        return self.kind in ("url", "alias")


def is_engine(obj: Any) -> bool:
    """True for an :class:`Engine` or an object that quacks like one (``run`` and ``inputs``; the test fakes)."""
    return isinstance(obj, Engine) or (hasattr(obj, "run") and hasattr(obj, "inputs"))


def _alias_entry(entry: ZooEntry, role: Role) -> ZooEntry:
    """``entry`` if it is a supported model of ``role``; the user-facing error otherwise."""
    if entry.role != role.value:
        raise InputError(
            f"alias {entry.alias!r} is a {entry.role} model, not a {role.value}; {role.value} aliases: "
            f"{alias_hint(role)}"
        )
    if not entry.supported:
        raise ModelError(
            f"alias {entry.alias!r} ({entry.family} {entry.variant}) is listed in the zoo but not yet supported "
            f"by the runtime; {role.value} aliases that work: "
            + ", ".join(e.alias for e in list_models(role) if e.supported)
        )
    return entry


def _unknown(text: str, role: Role) -> InputError:
    local = Path(text).expanduser()
    looks_like_path = local.suffix.lower() in MODEL_SUFFIXES or os.sep in text or "/" in text
    close = difflib.get_close_matches(text.strip().lower(), [e.alias.lower() for e in list_models(role)], n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    what = "no such file" if looks_like_path else "not an existing file, an http(s) URL or a known model alias"
    return InputError(
        f"{text!r} given for the {role.value}: {what}.{hint} Specify a model as a path to an "
        f"{'/'.join(s.lstrip('.') for s in MODEL_SUFFIXES)} file, an http(s):// URL of a checkpoint, or a zoo "
        f"alias ({role.value} aliases: {alias_hint(role)})"
    )


def classify(arg: Union[ModelArg, ZooEntry], role: Union[Role, str]) -> ModelRef:
    """What ``arg`` is for the ``role`` model, without network access. Unknown names, aliases of another role and
    aliases not supported yet raise the user-facing :class:`InputError` / :class:`ModelError`."""
    role = Role.parse(role)
    if is_engine(arg):
        return ModelRef("engine", role, arg)
    if isinstance(arg, ZooEntry):
        return ModelRef("alias", role, _alias_entry(arg, role))
    text = os.fspath(arg) if isinstance(arg, os.PathLike) else str(arg)
    if role is Role.LIFTER and text.strip().lower() == "none":
        return ModelRef("none", role, None)
    local = Path(text).expanduser()
    if text and local.exists():
        return ModelRef("path", role, local)
    if is_url(text):
        return ModelRef("url", role, text)
    entry = lookup(text)
    if entry is not None:
        return ModelRef("alias", role, _alias_entry(entry, role))
    raise _unknown(text, role)


def check(arg: Union[ModelArg, ZooEntry], role: Union[Role, str]) -> None:
    """Validate what a user passed for the ``role`` model without any network access or download: an Engine, an
    existing path, an http(s) URL, a supported alias of that role (or ``"none"`` for the lifter). Raises the
    error :func:`resolve` would."""
    classify(arg, role)


def _local(ref: ModelRef, **fetch_kwargs: Any) -> Path:
    return ref.value if ref.kind == "path" else fetch(ref.value, **fetch_kwargs)


def resolve_path(arg: Union[str, os.PathLike, ZooEntry], role: Union[Role, str], **fetch_kwargs: Any) -> Path:
    """Local file for what a user passed for the ``role`` model: an existing path (returned as is), an http(s)
    URL (fetched) or a zoo alias of that role (fetched). ``fetch_kwargs`` go to :func:`~pose3d_rt.hub.fetch`."""
    ref = classify(arg, role)
    if ref.kind not in ("path", "url", "alias"):
        raise InputError(f"{arg!r} given for the {ref.role.value}: not a model file, an http(s) URL or a zoo alias")
    return _local(ref, **fetch_kwargs)


def check_engine_role(engine: Engine, role: Role, source: Union[str, Path]) -> Engine:
    """``engine`` when its metadata ``family`` belongs to ``role`` (or it has none); else a one-line
    :class:`ModelError` naming ``source`` (the file the user gave) and what the model is."""
    family = str((getattr(engine, "metadata", None) or {}).get("family", "")).strip().lower()
    actual = role_of_family(family) if family else None
    if actual is not None and actual is not role:
        raise ModelError(f"{source}: this is a {family} model, a {actual.label}, not a {role.label} "
                         f"(give it to {actual.flag})")
    return engine


def resolve(arg: Union[ModelArg, ZooEntry], role: Union[Role, str], *, device: str = "cpu",
            threads: Optional[int] = None, export_options: Optional[Dict[str, Any]] = None,
            progress: bool = True, engine_options: Optional[Dict[str, Any]] = None) -> Optional[Engine]:
    """An :class:`Engine` for the ``role`` model ``arg`` (see the module docstring); None for the lifter's
    ``"none"``. A checkpoint is exported once with ``export_options`` (the lifter's: see
    :func:`~pose3d_rt.hub.cache.lifter_export_options`); ``progress`` shows a download's progress bar;
    ``engine_options`` go to :func:`~pose3d_rt.engines.load_engine` (e.g. OpenVINO's ``precision``)."""
    ref = classify(arg, role)
    if ref.kind == "engine":
        return ref.value
    if ref.kind == "none":
        return None
    given = path = _local(ref, progress=progress)
    suffix = path.suffix.lower()
    if suffix in CHECKPOINT_SUFFIXES:
        path = cache.export_cached(path, ref.role, export_options)
    elif suffix not in ENGINE_SUFFIXES:
        raise ModelError(
            f"{path}: unknown model file type {suffix or '(none)'!r} for the {ref.role.label}; expected one of "
            f"{', '.join(MODEL_SUFFIXES)}"
        )
    return check_engine_role(load_engine(str(path), device=device, threads=threads, **(engine_options or {})),
                             ref.role, given)


def fetch_and_export(alias: Union[str, ZooEntry], export_options: Optional[Dict[str, Any]] = None,
                     **fetch_kwargs: Any) -> Path:
    """Fetch a zoo checkpoint and export it to ONNX once (cached); returns the .onnx path. Needs the [export] extra.
    A lifter is exported with :func:`~pose3d_rt.hub.cache.lifter_export_options` and a detector with
    :func:`~pose3d_rt.hub.cache.detector_export_options` (default mode) unless ``export_options`` say otherwise,
    so the file is the one the pipeline uses."""
    entry = alias if isinstance(alias, ZooEntry) else get(alias)
    if not entry.supported:
        raise ModelError(f"alias {entry.alias!r} ({entry.family}) cannot be exported: not yet supported by the runtime")
    checkpoint = fetch(entry, **fetch_kwargs)
    role = Role.parse(entry.role)
    if export_options is None and role is Role.LIFTER:
        export_options = cache.lifter_export_options()
    elif export_options is None and role is Role.DETECTOR:
        export_options = cache.detector_export_options()
    return cache.export_cached(checkpoint, role, export_options)


__all__ = ["ModelArg", "ModelRef", "MODEL_SUFFIXES", "classify", "check", "check_engine_role", "is_engine", "resolve",
           "resolve_path", "fetch_and_export"]
