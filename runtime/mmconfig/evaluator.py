"""The safe expression evaluator of config files: :class:`_Evaluator` computes the value of an AST expression without
executing anything.

Only a small, side-effect-free subset of Python is evaluated (the list is in :mod:`pose3d_rt.mmconfig.loader`); an
expression outside it raises :class:`~pose3d_rt.mmconfig.values._Skip` and the names that depend on it are left
unresolved. Expressions are dispatched by node type (:data:`_EXPRESSIONS`); the statements of a config file are
run by :class:`~pose3d_rt.mmconfig.statements._Module`, a subclass. The work of one load is bounded by the
:meth:`_Budget.charge` of the loader (:class:`~pose3d_rt.mmconfig.loader._Loader`).
"""
from __future__ import annotations

import ast
import logging
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Protocol

from .values import (
    _BUILTINS,
    _CMPOPS,
    _HUGE_WIDTH,
    _LITERAL_TYPES,
    _MAX_SEQ,
    _UNARYOPS,
    BASE_KEY,
    _check_size,
    _lookup,
    _safe_binop,
    _safe_builtin,
    _Skip,
    _u,
    _Unresolved,
)

logger = logging.getLogger(__name__)

Local = Optional[Dict[str, Any]]  # the names bound by an enclosing comprehension


class _Budget(Protocol):
    """Counts the evaluation work of one load."""

    def charge(self, n: int) -> None:
        """Count ``n`` steps of evaluation work; raises :class:`_Skip` past the limit."""


class _Evaluator:
    """Evaluates expressions in the scope of one config file. ``base`` is the merged dict of its ``_base_`` files,
    ``own`` the names the file itself has bound so far."""

    def __init__(self, loader: _Budget, path: Path, base: Dict[str, Any]) -> None:
        self.loader = loader
        self.path = path
        self.base = base
        self.own: Dict[str, Any] = {}  # names bound by this file (these form its config dict)

    # -- names -------------------------------------------------------------------------------------------------
    def name(self, ident: str, local: Local = None) -> Any:
        if local is not None and ident in local:
            return local[ident]
        if ident in self.own:
            value = self.own[ident]
        elif ident == BASE_KEY:
            value = self.base
        elif ident in self.base:
            value = self.base[ident]
        else:
            raise _Skip(f"name {ident!r} is not defined")
        if _u(value):
            raise _Skip(f"{ident!r} is unresolved ({value.reason})")
        return value

    # -- expressions -------------------------------------------------------------------------------------------
    def eval(self, node: ast.AST, local: Local = None) -> Any:
        """The value of ``node``; raises :class:`_Skip` when it cannot be known statically."""
        value = self._eval(node, local)
        self.loader.charge(len(value) if isinstance(value, (list, tuple, str, bytes, dict)) else 1)
        return value

    def _eval(self, node: ast.AST, local: Local) -> Any:
        self.loader.charge(1)
        handler = _EXPRESSIONS.get(type(node))
        if handler is None:
            raise _Skip(f"unsupported expression {type(node).__name__}")
        return handler(self, node, local)

    def eval_constant(self, node: ast.Constant, local: Local) -> Any:
        if isinstance(node.value, _LITERAL_TYPES) or node.value is Ellipsis:
            return node.value
        raise _Skip("unsupported constant")

    def eval_name(self, node: ast.Name, local: Local) -> Any:
        return self.name(node.id, local)

    def eval_sequence(self, node: Any, local: Local) -> Any:
        """A list or tuple display, with ``*`` unpacking."""
        items: List[Any] = []
        for elt in node.elts:
            if isinstance(elt, ast.Starred):
                inner = self.eval(elt.value, local)
                if not isinstance(inner, (list, tuple)):
                    raise _Skip("* of a non-sequence")
                items.extend(inner)
            else:
                items.append(self.eval(elt, local))
        _check_size(items)
        return items if isinstance(node, ast.List) else tuple(items)

    def eval_dict(self, node: ast.Dict, local: Local) -> Dict[Any, Any]:
        out: Dict[Any, Any] = {}
        for k, v in zip(node.keys, node.values):
            if k is None:  # {**other}
                inner = self.eval(v, local)
                if not isinstance(inner, dict):
                    raise _Skip("** of a non-dict")
                out.update(inner)
                continue
            key = self.eval(k, local)
            if isinstance(key, (list, dict)):
                raise _Skip("unhashable dict key")
            out[key] = self.eval_entry(v, local)
        return out

    def eval_unary(self, node: ast.UnaryOp, local: Local) -> Any:
        fn = _UNARYOPS.get(type(node.op))
        operand = self.eval(node.operand, local)
        if fn is None:
            raise _Skip(f"operator {type(node.op).__name__}")
        try:
            return fn(operand)
        except (ArithmeticError, TypeError) as e:
            raise _Skip(str(e)) from None

    def eval_binop(self, node: ast.BinOp, local: Local) -> Any:
        return _safe_binop(node.op, self.eval(node.left, local), self.eval(node.right, local))

    def eval_boolop(self, node: ast.BoolOp, local: Local) -> Any:
        value: Any = None
        for sub in node.values:
            value = self.eval(sub, local)
            if isinstance(node.op, ast.And) and not value:
                return value
            if isinstance(node.op, ast.Or) and value:
                return value
        return value

    def eval_compare(self, node: ast.Compare, local: Local) -> bool:
        left = self.eval(node.left, local)
        for op, comp in zip(node.ops, node.comparators):
            right = self.eval(comp, local)
            try:
                ok = _CMPOPS[type(op)](left, right)
            except TypeError as e:
                raise _Skip(str(e)) from None
            if not ok:
                return False
            left = right
        return True

    def eval_ifexp(self, node: ast.IfExp, local: Local) -> Any:
        return self.eval(node.body if self.eval(node.test, local) else node.orelse, local)

    def eval_subscript(self, node: ast.Subscript, local: Local) -> Any:
        container = self.eval(node.value, local)
        sl = node.slice
        if isinstance(sl, ast.Slice):
            parts = [None if p is None else self.eval(p, local) for p in (sl.lower, sl.upper, sl.step)]
            if not all(p is None or isinstance(p, int) for p in parts):
                raise _Skip("non-integer slice")
            return _lookup(container, slice(*parts))
        return _lookup(container, self.eval(sl, local))

    def eval_attribute(self, node: ast.Attribute, local: Local) -> Any:
        container = self.eval(node.value, local)
        if isinstance(container, dict):  # ConfigDict-style attribute access
            return _lookup(container, node.attr)
        raise _Skip(f"attribute .{node.attr} of a {type(container).__name__}")

    def eval_entry(self, node: ast.AST, local: Local) -> Any:
        """A dict value: an unresolvable one becomes an :class:`_Unresolved` marker (the key is dropped later)."""
        try:
            return self.eval(node, local)
        except (_Skip, TypeError, ValueError, ArithmeticError, LookupError) as e:
            logger.debug("%s:%s: dict entry left out (%s)", self.path, getattr(node, "lineno", "?"), e)
            return _Unresolved(str(e))

    def eval_set(self, node: ast.Set, local: Local) -> Any:
        # mmengine's ``{{_base_.a.b}}`` parses as a set holding a set holding ``_base_.a.b``.
        if len(node.elts) == 1 and isinstance(node.elts[0], ast.Set) and len(node.elts[0].elts) == 1:
            inner = node.elts[0].elts[0]
            root = inner
            while isinstance(root, (ast.Attribute, ast.Subscript)):
                root = root.value
            if isinstance(root, ast.Name) and root.id == BASE_KEY:
                return self.eval(inner, local)
        items = [self.eval(e, local) for e in node.elts]
        try:
            return set(items)
        except TypeError as e:
            raise _Skip(str(e)) from None

    def eval_call(self, node: ast.Call, local: Local) -> Any:
        func = node.func
        fname = func.id if isinstance(func, ast.Name) else None
        known = fname is not None and (local is None or fname not in local) and fname not in self.own
        if not known or fname not in _BUILTINS:
            label = ast.unparse(func) if hasattr(ast, "unparse") else type(func).__name__
            raise _Skip(f"call of {label}()")
        args: List[Any] = []
        for a in node.args:
            if isinstance(a, ast.Starred):
                inner = self.eval(a.value, local)
                if not isinstance(inner, (list, tuple)):
                    raise _Skip("* of a non-sequence")
                args.extend(inner)
            else:
                args.append(self.eval(a, local))
        kwargs: Dict[str, Any] = {}
        for kw in node.keywords:
            if kw.arg is None:  # dict(**other)
                inner = self.eval(kw.value, local)
                if not isinstance(inner, dict):
                    raise _Skip("** of a non-dict")
                kwargs.update(inner)
            elif fname == "dict":
                kwargs[kw.arg] = self.eval_entry(kw.value, local)
            else:
                kwargs[kw.arg] = self.eval(kw.value, local)
        return _safe_builtin(fname, args, kwargs)  # type: ignore[arg-type]

    def eval_fstring(self, node: ast.JoinedStr, local: Local) -> str:
        parts: List[str] = []
        for v in node.values:
            if isinstance(v, ast.Constant):
                parts.append(str(v.value))
                continue
            if not isinstance(v, ast.FormattedValue):
                raise _Skip("unsupported f-string part")
            value = self.eval(v.value, local)
            conv = {-1: None, 115: str, 114: repr, 97: ascii}.get(v.conversion, None)
            if conv is not None:
                value = conv(value)
            spec = "" if v.format_spec is None else self.eval(v.format_spec, local)
            if _HUGE_WIDTH.search(spec):
                raise _Skip("format spec with a huge width")
            try:
                parts.append(format(value, spec))
            except (TypeError, ValueError) as e:
                raise _Skip(str(e)) from None
        return _check_size("".join(parts))

    def eval_comprehension(self, node: Any, local: Local) -> Any:
        results: List[Any] = []

        def bind(target: ast.AST, value: Any, scope: Dict[str, Any]) -> None:
            if isinstance(target, ast.Name):
                scope[target.id] = value
            elif isinstance(target, (ast.Tuple, ast.List)):
                if not isinstance(value, (list, tuple)) or len(value) != len(target.elts):
                    raise _Skip("cannot unpack")
                for t, v in zip(target.elts, value):
                    bind(t, v, scope)
            else:
                raise _Skip("unsupported comprehension target")

        def walk(i: int, scope: Dict[str, Any]) -> None:
            if i == len(node.generators):
                if isinstance(node, ast.DictComp):
                    results.append((self.eval(node.key, scope), self.eval(node.value, scope)))
                else:
                    results.append(self.eval(node.elt, scope))
                if len(results) > _MAX_SEQ:
                    raise _Skip(f"comprehension longer than {_MAX_SEQ}")
                return
            gen = node.generators[i]
            if getattr(gen, "is_async", 0):
                raise _Skip("async comprehension")
            iterable = self.eval(gen.iter, scope)
            if isinstance(iterable, dict):
                iterable = list(iterable)
            if not isinstance(iterable, (list, tuple, str)):
                raise _Skip("comprehension over a non-sequence")
            for item in iterable:
                inner = dict(scope)
                bind(gen.target, item, inner)
                if all(self.eval(cond, inner) for cond in gen.ifs):
                    walk(i + 1, inner)

        walk(0, dict(local or {}))
        if isinstance(node, ast.DictComp):
            try:
                return dict(results)
            except TypeError as e:
                raise _Skip(str(e)) from None
        return results


#: The expression evaluator of each AST node type (anything else is unsupported).
_EXPRESSIONS: Dict[type, Callable[[_Evaluator, Any, Local], Any]] = {
    ast.Constant: _Evaluator.eval_constant,
    ast.Name: _Evaluator.eval_name,
    ast.List: _Evaluator.eval_sequence,
    ast.Tuple: _Evaluator.eval_sequence,
    ast.Dict: _Evaluator.eval_dict,
    ast.Set: _Evaluator.eval_set,
    ast.Call: _Evaluator.eval_call,
    ast.UnaryOp: _Evaluator.eval_unary,
    ast.BinOp: _Evaluator.eval_binop,
    ast.BoolOp: _Evaluator.eval_boolop,
    ast.Compare: _Evaluator.eval_compare,
    ast.IfExp: _Evaluator.eval_ifexp,
    ast.Subscript: _Evaluator.eval_subscript,
    ast.Attribute: _Evaluator.eval_attribute,
    ast.JoinedStr: _Evaluator.eval_fstring,
    ast.ListComp: _Evaluator.eval_comprehension,
    ast.GeneratorExp: _Evaluator.eval_comprehension,
    ast.DictComp: _Evaluator.eval_comprehension,
}
