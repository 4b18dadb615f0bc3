"""Load OpenMMLab (mmengine) Python config files into plain dicts, without mmengine.

The config is **parsed, never executed**: :func:`load_config` walks the module's AST and evaluates only a small,
side-effect-free subset of Python, so a config from an untrusted source cannot run code.

What is understood
------------------
* module-level assignments (``x = ...``, ``a = b = ...``, ``a, b = 1, 2``, ``x += ...``, ``x: T = ...``,
  ``model['k'] = ...`` / ``model.k = ...`` on a dict already known);
* literals: numbers, strings, bytes, ``True``/``False``/``None``, lists, tuples, ``{}`` dicts (with ``**``),
  ``dict(...)`` / ``list(...)`` / ``tuple(...)`` calls, a few pure builtins (``int``, ``float``, ``round``, ``min``,
  ``max``, ``abs``, ``len``, ``sum``), unary/binary arithmetic, comparisons, ``and``/``or``/``not``, ``x if c else y``,
  subscripts and slices, simple f-strings, list/dict comprehensions and generator expressions;
* references to earlier module-level names, including names defined in the ``_base_`` files, plus mmengine's
  ``{{_base_.a.b}}`` and ``_base_.a.b`` forms;
* ``_base_`` (a string or a list of strings, relative to the file), merged mmengine-style: a dict merges key by key,
  recursively; a child dict with ``_delete_=True`` replaces the base dict; any other value replaces;
* new-style configs: ``from .x import *`` / ``from .x import a as b`` inside ``with read_base():`` load the local
  file and bring its names in (an absolute ``from pkg.configs.x import *`` is looked up in the config's ancestor
  folders); ``name.update(...)`` is applied like ``ConfigDict.update`` (recursively).

Anything else (calls to other functions, names bound by ``import``, ``def``, ``for``, ``if`` ..., names changed by
a method call such as ``pipeline.append(...)``) cannot be resolved statically. It never raises: the assignment is
skipped (logged at DEBUG) and every value that depends on it is absent from the result. Inside a dict only the
affected key is absent; a list or tuple with an unresolvable element is absent as a whole. Bases with a package scope (``mmdet::rtmdet/...``), and bases that do not exist
locally, are skipped with a WARNING that names them.

The code: :mod:`~pose3d_rt.mmconfig.values` (limits, bounded operations, merging),
:mod:`~pose3d_rt.mmconfig.evaluator` (expressions), :mod:`~pose3d_rt.mmconfig.statements` (statements) and this
module (files and bases). :mod:`~pose3d_rt.mmconfig.summary` then picks the fields of one model role from the dict.
"""
from __future__ import annotations

import ast
import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from ..errors import ConfigError
from .statements import _Module
from .values import _MAX_STEPS, BASE_KEY, _clean, _merge, _Skip

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]


class _Loader:
    """Loads one config and, recursively, its bases (``_base_`` and ``read_base()`` imports); one per
    :func:`load_config` call, so the evaluation budget and the cycle check cover the whole inheritance tree."""

    def __init__(self) -> None:
        self.stack: List[Path] = []
        self.steps = 0

    def charge(self, n: int) -> None:
        """Count evaluation work; past :data:`_MAX_STEPS` every further value is unresolved."""
        self.steps += n
        if self.steps > _MAX_STEPS:
            raise _Skip("config too large to evaluate")

    def parse(self, path: Path) -> ast.Module:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read config {path}: {e}") from None
        try:
            return ast.parse(text, filename=str(path))
        except SyntaxError as e:
            col = f":{e.offset}" if e.offset else ""
            raise ConfigError(f"{path}:{e.lineno}{col}: invalid Python in config: {e.msg}") from None
        except (ValueError, RecursionError, MemoryError) as e:
            raise ConfigError(f"{path}: cannot parse config: {e}") from None

    def load(self, path: Path) -> Dict[str, Any]:
        """The merged (still uncleaned) dict of ``path`` and its bases."""
        path = Path(os.path.abspath(path))
        if path in self.stack:
            chain = " -> ".join(str(p) for p in [*self.stack[self.stack.index(path):], path])
            raise ConfigError(f"cyclic _base_ inheritance: {chain}")
        self.stack.append(path)
        try:
            tree = self.parse(path)
            base = self.load_bases(path, tree)
            module = _Module(self, path, base)
            try:
                module.run(tree)
            except RecursionError:
                raise ConfigError(f"{path}: config nested too deeply to parse") from None
            return _merge(module.own, base)
        finally:
            self.stack.pop()

    def load_bases(self, path: Path, tree: ast.Module) -> Dict[str, Any]:
        node = None
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == BASE_KEY for t in stmt.targets):
                node = stmt  # the last binding wins, as when executed
        if node is None:
            return {}
        try:
            spec = _Module(self, path, {}).eval(node.value)
        except _Skip as e:
            logger.warning("%s:%s: _base_ cannot be read statically (%s); bases ignored", path, node.lineno, e)
            return {}
        if isinstance(spec, str):
            spec = [spec]
        if not isinstance(spec, (list, tuple)) or not all(isinstance(s, str) for s in spec):
            logger.warning("%s:%s: _base_ must be a string or a list of strings; bases ignored", path, node.lineno)
            return {}
        merged: Dict[str, Any] = {}
        for ref in spec:
            data = self.load_ref(path, ref)
            if data is None:
                continue
            dup = sorted(set(merged) & set(data))
            if dup:
                logger.debug("%s: keys %s are defined by more than one base; the later base wins", path, dup)
            merged.update(data)
        return merged

    def load_ref(self, path: Path, ref: str) -> Optional[Dict[str, Any]]:
        if "::" in ref:
            scope = ref.split("::", 1)[0]
            logger.warning("config %s: base %r belongs to the installed package %r and cannot be read without "
                           "it; skipped (its values are unknown)", path, ref, scope)
            return None
        target = Path(ref).expanduser()
        if not target.is_absolute():
            target = path.parent / target
        if target.suffix.lower() != ".py":
            logger.warning("config %s: base %r is not a Python config; skipped", path, ref)
            return None
        if not target.is_file():
            logger.warning("config %s: base %r not found at %s; skipped (its values are unknown)", path, ref, target)
            return None
        return self.load(target)

    def import_base(self, module: _Module, stmt: ast.ImportFrom) -> None:
        """``from .x import *`` / ``from ..y.z import a, b as c`` inside ``with read_base():``."""
        lineno = stmt.lineno
        imported = [a.asname or a.name for a in stmt.names if a.name != "*"]
        ref = "." * (stmt.level or 0) + (stmt.module or "")
        if stmt.module is None:
            logger.warning("config %s:%s: base import %r names no module; skipped", module.path, lineno, ref)
            module.unresolve(imported, f"from the unreadable base {ref!r}", lineno)
            return
        parts = stmt.module.split(".")
        if stmt.level:
            folder = module.path.parent
            for _ in range(stmt.level - 1):
                folder = folder.parent
            target = folder.joinpath(*parts).with_suffix(".py")
        else:
            # ``from mmpose.configs._base_.default_runtime import *``: found when the config sits inside a copy
            # of that package (any ancestor folder A with A/mmpose/configs/_base_/default_runtime.py).
            candidates = (a.joinpath(*parts).with_suffix(".py") for a in module.path.parents)
            target = next((c for c in candidates if c.is_file()), module.path.parent.joinpath(*parts).with_suffix(".py"))
        if not target.is_file():
            logger.warning("config %s:%s: base module %r not found locally; skipped (its values are unknown)",
                           module.path, lineno, ref)
            module.unresolve(imported, "from a missing base", lineno)
            return
        data = self.load(target)
        for alias in stmt.names:
            if alias.name == "*":
                for k, v in data.items():
                    if not k.startswith("_"):
                        module.own[k] = v
            elif alias.name in data:
                module.own[alias.asname or alias.name] = data[alias.name]
            else:
                module.unresolve([alias.asname or alias.name], f"not defined in {target}", lineno)


def check_py(path: Path) -> None:
    if path.is_dir():
        raise ConfigError(f"config {path} is a directory, not a Python config file")
    if path.suffix.lower() != ".py":
        raise ConfigError(f"config {path} is not a Python (.py) OpenMMLab config file")


def load_config(path: PathLike) -> Dict[str, Any]:
    """Parse the OpenMMLab Python config ``path`` (and its ``_base_`` files) into a plain dict, without executing it.

    Values that cannot be resolved statically are absent (see the module docstring). Raises :class:`~pose3d_rt.errors.ConfigError`
    for a missing/unreadable file, a non-``.py`` file, a syntax error (``file:line`` in the message) or cyclic bases.
    """
    p = Path(os.fspath(path)).expanduser()
    if not p.exists():
        raise ConfigError(f"config {p} does not exist")
    check_py(p)
    data = _Loader().load(p)
    return {k: v for k, v in _clean(data).items() if k != BASE_KEY and not k.startswith("__")}


__all__ = ["PathLike", "check_py", "load_config"]
