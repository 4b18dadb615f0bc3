"""Getting a model: the roles, the cache folder, the registry of zoo aliases, downloads, and the one resolver of a
model argument to an Engine.

- :mod:`.roles` — :class:`Role` (detector / pose2d / lifter: names, message labels, CLI flags, spellings);
- :mod:`.cache` — :func:`cache_home`, :func:`file_sha256`, :func:`export_cached` (the runtime's only way into the
  exporter), :func:`lifter_export_options` and :func:`detector_export_options`;
- :mod:`.registry` — :class:`ZooEntry` and the aliases of ``data/models.json``;
- :mod:`.download` — :func:`fetch`, the verified, resumable download;
- :mod:`.resolve` — :func:`resolve` (argument -> Engine), :func:`check` (the same validation, no network).
"""
from .cache import cache_home, detector_export_options, export_cached, file_sha256, lifter_export_options
from .download import expected_prefix_from_name, fetch, is_url, path
from .registry import ZooEntry, default_alias, defaults, describe, get, list_models
from .resolve import ModelRef, check, classify, fetch_and_export, resolve, resolve_path
from .roles import Role

__all__ = [
    "Role", "ZooEntry", "ModelRef",
    "resolve", "check", "classify", "resolve_path", "fetch", "fetch_and_export", "path", "is_url",
    "list_models", "get", "defaults", "default_alias", "describe", "expected_prefix_from_name",
    "cache_home", "file_sha256", "export_cached", "lifter_export_options", "detector_export_options",
]
