"""The statements of one config file: :class:`_Module` runs its module-level assignments, ``with read_base():``
imports and ``name.update(...)`` calls over the safe expression evaluator, never executing anything.

A statement it does not understand (``def``, ``for``, ``if``, ``import``, a method call that may change an object,
...) leaves every name it may bind unresolved (logged at DEBUG); only :class:`~pose3d_rt.errors.ConfigError` ever
escapes :meth:`_Module.run`.
"""
from __future__ import annotations

import ast
import logging
from typing import Any, Dict, List, Protocol, Sequence, Tuple

from ..errors import ConfigError
from .evaluator import _Budget, _Evaluator
from .values import BASE_KEY, _deep_update, _lookup, _merge, _safe_binop, _set_in, _Skip, _u, _Unresolved

logger = logging.getLogger(__name__)


class _Host(_Budget, Protocol):
    """What a :class:`_Module` needs from the loader that runs it."""

    def import_base(self, module: _Module, stmt: ast.ImportFrom) -> None:
        """Bring the names of a ``from .x import ...`` inside ``with read_base():`` into ``module``."""


class _Module(_Evaluator):
    """Runs one config file's statements. ``base`` is the merged dict of its ``_base_`` files."""

    loader: _Host

    # -- bindings ----------------------------------------------------------------------------------------------
    def bind(self, name: str, value: Any) -> None:
        if name != BASE_KEY:
            self.own[name] = value

    def unresolve(self, names: Sequence[str], reason: str, lineno: Any) -> None:
        for n in names:
            if n != BASE_KEY:
                logger.debug("%s:%s: %r left out (%s)", self.path, lineno, n, reason)
                self.own[n] = _Unresolved(reason)

    def assign(self, target: ast.AST, value: Any, lineno: int) -> None:
        if isinstance(target, ast.Name):
            self.bind(target.id, value)
        elif isinstance(target, (ast.Tuple, ast.List)):
            names = _target_names(target)
            if _u(value) or not isinstance(value, (list, tuple)) or len(value) != len(target.elts) or any(
                isinstance(t, ast.Starred) for t in target.elts
            ):
                self.unresolve(names, value.reason if _u(value) else "cannot unpack", lineno)
                return
            for t, v in zip(target.elts, value):
                self.assign(t, v, lineno)
        elif isinstance(target, (ast.Subscript, ast.Attribute)):
            self.assign_item(target, value, lineno)
        else:  # pragma: no cover - Starred at top level is a SyntaxError
            logger.debug("%s:%s: unsupported assignment target skipped", self.path, lineno)

    def path_of(self, node: ast.AST) -> Tuple[str, List[Any]]:
        """``model.head['decoder']`` → ``('model', ['head', 'decoder'])``."""
        keys: List[Any] = []
        while isinstance(node, (ast.Subscript, ast.Attribute)):
            keys.append(node.attr if isinstance(node, ast.Attribute) else self.eval(node.slice))
            node = node.value
        if not isinstance(node, ast.Name) or node.id == BASE_KEY:
            raise _Skip("not a module-level name")
        return node.id, keys[::-1]

    def assign_item(self, target: ast.AST, value: Any, lineno: int) -> None:
        """``model['test_cfg'] = ...`` / ``model.test_cfg.x = ...``: copy-on-write update of a known dict."""
        try:
            root, keys = self.path_of(target)
            self.own[root] = _set_in(self.name(root), keys, value)
        except _Skip as e:
            self.unresolve(_root_names(target), f"item assignment failed: {e}", lineno)

    def call_update(self, call: ast.Call, lineno: int) -> bool:
        """``train_cfg.update(max_epochs=10)`` (new-style configs): a recursive update, as ``ConfigDict.update``.
        Returns False when the statement is not such a call."""
        func = call.func
        if not (isinstance(func, ast.Attribute) and func.attr in ("update", "merge")):
            return False
        try:
            root, keys = self.path_of(func.value)
        except _Skip:
            return False
        try:
            if len(call.args) > 1 or any(isinstance(a, ast.Starred) for a in call.args):
                raise _Skip("unsupported update() arguments")
            other: Dict[str, Any] = {}
            for a in call.args:
                arg = self.eval(a)
                if not isinstance(arg, dict):
                    raise _Skip("update() with a non-dict")
                other.update(arg)
            for kw in call.keywords:
                if kw.arg is None:
                    arg = self.eval(kw.value)
                    if not isinstance(arg, dict):
                        raise _Skip("** of a non-dict")
                    other.update(arg)
                else:
                    other[kw.arg] = self.eval_entry(kw.value, None)
            old = self.name(root)
            for k in keys:
                old = _lookup(old, k)
            if not isinstance(old, dict):
                raise _Skip("update() of a non-dict")
            updated = _merge(other, old) if func.attr == "merge" else _deep_update(old, other)
            self.own[root] = _set_in(self.name(root), keys, updated)
        except _Skip as e:
            self.unresolve([root], f"{func.attr}() failed: {e}", lineno)
        return True

    def run(self, tree: ast.Module) -> None:
        for stmt in tree.body:
            try:
                self.statement(stmt)
            except ConfigError:
                raise
            except Exception as e:  # never let a strange config crash the reader (nothing is executed anyway)
                self.unresolve(_bound_names(stmt), f"{type(e).__name__}: {e}", getattr(stmt, "lineno", "?"))

    def statement(self, stmt: ast.stmt) -> None:
        lineno = getattr(stmt, "lineno", "?")
        if isinstance(stmt, ast.Assign):
            if any(isinstance(t, ast.Name) and t.id == BASE_KEY for t in stmt.targets):
                return  # read before everything else (see _Loader.load)
            value = self.try_eval(stmt.value, lineno)
            for target in stmt.targets:
                if _u(value):
                    self.unresolve(_target_names(target), value.reason, lineno)
                else:
                    self.assign(target, value, lineno)
        elif isinstance(stmt, ast.AnnAssign):
            if stmt.value is not None and stmt.simple and isinstance(stmt.target, ast.Name):
                value = self.try_eval(stmt.value, lineno)
                if _u(value):
                    self.unresolve([stmt.target.id], value.reason, lineno)
                else:
                    self.bind(stmt.target.id, value)
        elif isinstance(stmt, ast.AugAssign):
            names = _target_names(stmt.target)
            if isinstance(stmt.target, ast.Name):
                try:
                    value = _safe_binop(stmt.op, self.name(stmt.target.id), self.eval(stmt.value))
                    self.bind(stmt.target.id, value)
                except _Skip as e:
                    self.unresolve(names, str(e), lineno)
            else:
                self.unresolve(_root_names(stmt.target), "augmented item assignment", lineno)
        elif isinstance(stmt, ast.With) and _is_read_base(stmt):
            for sub in stmt.body:
                if isinstance(sub, ast.ImportFrom):
                    self.loader.import_base(self, sub)
                elif isinstance(sub, ast.Import):
                    self.unresolve([a.asname or a.name.split(".")[0] for a in sub.names],
                                   "absolute import in read_base()", getattr(sub, "lineno", lineno))
                elif not isinstance(sub, (ast.Pass, ast.Expr)):
                    self.unresolve(_bound_names(sub), "statement in read_base()", lineno)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            names = [a.asname or a.name.split(".")[0] for a in stmt.names if a.name != "*"]
            self.unresolve(names, "bound by an import", lineno)
            if any(a.name == "*" for a in stmt.names):
                logger.debug("%s:%s: star import ignored", self.path, lineno)
        elif isinstance(stmt, ast.Expr):
            call = stmt.value
            if isinstance(call, ast.Call) and self.call_update(call, lineno):
                return
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute):
                # ``pipeline.append(...)``, ``model.pop('x')``: the object may have changed in an unknown way
                self.unresolve(_root_names(call.func.value), f"changed by {_short(call.func)}()", lineno)
            elif not (isinstance(call, ast.Constant) and isinstance(call.value, str)):
                logger.debug("%s:%s: expression statement ignored: %s", self.path, lineno, _short(stmt))
        elif isinstance(stmt, ast.Pass):
            pass
        else:
            self.unresolve(_bound_names(stmt), f"bound by a {type(stmt).__name__} statement", lineno)

    def try_eval(self, node: ast.AST, lineno: Any) -> Any:
        try:
            return self.eval(node)
        except _Skip as e:
            return _Unresolved(str(e))
        except RecursionError:
            return _Unresolved("expression nested too deeply")
        except ConfigError:
            raise
        except Exception as e:  # e.g. an unhashable dict key: unknown, not fatal
            return _Unresolved(f"{type(e).__name__}: {e}")


def _short(node: ast.AST) -> str:
    try:
        text = ast.unparse(node)
    except Exception:  # pragma: no cover - ast.unparse is 3.9+
        text = type(node).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _is_read_base(stmt: ast.With) -> bool:
    for item in stmt.items:
        expr = item.context_expr
        if isinstance(expr, ast.Call):
            f = expr.func
            if (isinstance(f, ast.Name) and f.id == "read_base") or (isinstance(f, ast.Attribute) and f.attr == "read_base"):
                return True
    return False


def _target_names(target: ast.AST) -> List[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for t in target.elts for n in _target_names(t)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return _root_names(target)


def _root_names(target: ast.AST) -> List[str]:
    node = target
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        node = node.value
    return [node.id] if isinstance(node, ast.Name) else []


def _bound_names(stmt: ast.AST) -> List[str]:
    """Every module-level name a statement we do not understand may (re)bind or change."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name]
    names: List[str] = []
    for node in ast.walk(stmt):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.append(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.extend(a.asname or a.name.split(".")[0] for a in node.names if a.name != "*")
        elif isinstance(node, (ast.Subscript, ast.Attribute)) and isinstance(node.ctx, ast.Store):
            names.extend(_root_names(node))
    return list(dict.fromkeys(names))
