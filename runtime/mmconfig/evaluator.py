"""Read the few fields pose3d-rt needs from OpenMMLab (mmengine) Python config files, without mmengine.

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
a method call such as ``pipeline.append(...)``) cannot be resolved statically. It never raises: the assignment is skipped (logged at DEBUG) and every value that depends on it is
absent from the result. Inside a dict only the affected key is absent; a list or tuple with an unresolvable
element is absent as a whole. Bases with a package scope (``mmdet::rtmdet/...``), and bases that do not exist
locally, are skipped with a WARNING that names them.

:func:`summarize` then picks the fields of one role (``detector``, ``pose2d`` or ``lifter``) into a flat
:class:`ModelConfig`, and :func:`load_optional` does both, returning None (with a WARNING) when the config file is
not on disk, so the caller falls back to the checkpoint's own metadata.
"""
from __future__ import annotations

import ast
import logging
import math
import operator
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from ..errors import Pose3DError

try:  # pragma: no cover - depends on what the rest of the package defines
    from ..errors import ConfigError  # type: ignore[attr-defined]
except ImportError:

    class ConfigError(Pose3DError, ValueError):  # type: ignore[no-redef]
        """A model config file is unreadable, not a Python config, syntactically invalid, or has cyclic bases."""


logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

ROLES = ("detector", "pose2d", "lifter")
BASE_KEY = "_base_"
DELETE_KEY = "_delete_"

#: Bounds that keep the evaluation of a hostile config cheap.
_MAX_SEQ = 100_000  # longest list/str/tuple built by an expression
_MAX_POW = 256  # largest exponent / shift
_MAX_BITS = 4096  # largest integer built by ** * <<
_MAX_STEPS = 2_000_000  # evaluation steps (and elements built) per load_config call
_HUGE_WIDTH = re.compile(r"\*|\d{5,}")  # in a %-format string or a format spec


# --------------------------------------------------------------------------------------------------------------------
# Unresolved values
# --------------------------------------------------------------------------------------------------------------------


class _Unresolved:
    """Marks a value that cannot be known without executing the config. Never escapes :func:`load_config`."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<unresolved: {self.reason}>"


class _Skip(Exception):
    """Internal: the expression being evaluated cannot be resolved (carries the reason)."""


def _u(value: Any) -> bool:
    return isinstance(value, _Unresolved)


# --------------------------------------------------------------------------------------------------------------------
# Merging
# --------------------------------------------------------------------------------------------------------------------


def _merge(child: Dict[str, Any], base: Dict[str, Any]) -> Dict[str, Any]:
    """mmengine's ``Config._merge_a_into_b`` (without mutating either argument)."""
    out = dict(base)
    for key, value in child.items():
        old = out.get(key)
        if isinstance(value, dict) and isinstance(old, dict) and value.get(DELETE_KEY) is not True:
            out[key] = _merge({k: v for k, v in value.items() if k != DELETE_KEY}, old)
        else:
            if isinstance(value, dict) and key in out and not isinstance(old, dict):
                logger.debug("config key %r: a dict replaces a base value of type %s", key, type(old).__name__)
            out[key] = value
    return out


def _clean(value: Any, memo: Optional[Dict[int, Any]] = None) -> Any:
    """Drop unresolved dict entries and ``_delete_`` markers, recursively. Returns new containers; a container
    referenced twice (``decoder=codec``) stays shared, as it would be when the file is executed."""
    if not isinstance(value, (dict, list, tuple)):
        return value
    memo = {} if memo is None else memo
    done = memo.get(id(value))
    if done is not None:
        return done[1]
    if isinstance(value, dict):
        out: Any = {k: _clean(v, memo) for k, v in value.items() if not _u(v) and k != DELETE_KEY}
    elif isinstance(value, list):
        out = [_clean(v, memo) for v in value if not _u(v)]
    else:
        out = tuple(_clean(v, memo) for v in value if not _u(v))
    memo[id(value)] = (value, out)  # keep ``value`` alive so its id is not reused
    return out


# --------------------------------------------------------------------------------------------------------------------
# The evaluator
# --------------------------------------------------------------------------------------------------------------------

_BINOPS: Dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
    ast.LShift: operator.lshift, ast.RShift: operator.rshift,
    ast.BitAnd: operator.and_, ast.BitOr: operator.or_, ast.BitXor: operator.xor,
}
_UNARYOPS: Dict[type, Callable[[Any], Any]] = {
    ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_, ast.Invert: operator.invert,
}
_CMPOPS: Dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
    ast.GtE: operator.ge, ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_, ast.IsNot: operator.is_not,
}
_LITERAL_TYPES = (int, float, complex, str, bytes, bool, type(None))


def _check_size(value: Any) -> Any:
    if isinstance(value, (str, bytes, list, tuple)) and len(value) > _MAX_SEQ:
        raise _Skip(f"value longer than {_MAX_SEQ}")
    return value


def _safe_binop(op: ast.operator, a: Any, b: Any) -> Any:
    fn = _BINOPS.get(type(op))
    if fn is None:
        raise _Skip(f"operator {type(op).__name__}")
    if isinstance(op, ast.Mult):
        for seq, n in ((a, b), (b, a)):
            if isinstance(seq, (str, bytes, list, tuple)) and isinstance(n, int) and n * len(seq) > _MAX_SEQ:
                raise _Skip(f"value longer than {_MAX_SEQ}")
    if isinstance(op, ast.Pow) and isinstance(b, (int, float)) and abs(b) > _MAX_POW:
        raise _Skip("exponent too large")
    if isinstance(op, (ast.LShift, ast.RShift)) and isinstance(b, int) and abs(b) > _MAX_POW:
        raise _Skip("shift too large")
    if isinstance(a, int) and isinstance(b, int):  # keep integers small (no 10 ** 10 ** 10)
        bits = a.bit_length()
        if isinstance(op, ast.Pow) and b > 0 and bits * b > _MAX_BITS:
            raise _Skip("integer too large")
        if isinstance(op, ast.Mult) and bits + b.bit_length() > _MAX_BITS:
            raise _Skip("integer too large")
        if isinstance(op, ast.LShift) and b > 0 and bits + b > _MAX_BITS:
            raise _Skip("integer too large")
    if isinstance(op, ast.Mod) and isinstance(a, (str, bytes)) and _HUGE_WIDTH.search(str(a)):
        raise _Skip("%-format with a huge or variable width")
    try:
        return _check_size(fn(a, b))
    except (ArithmeticError, TypeError, ValueError) as e:
        raise _Skip(f"{type(op).__name__} failed: {e}") from None


def _safe_builtin(name: str, args: List[Any], kwargs: Dict[str, Any]) -> Any:
    if name == "dict":
        if len(args) > 1:
            raise _Skip("dict() with more than one positional argument")
        out: Dict[Any, Any] = {}
        if args:
            src = args[0]
            if isinstance(src, dict):
                out.update(src)
            elif isinstance(src, (list, tuple)) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in src):
                out.update((p[0], p[1]) for p in src)
            else:
                raise _Skip("dict() of a non-mapping")
        out.update(kwargs)
        return out
    if kwargs:
        raise _Skip(f"{name}() with keyword arguments")
    if name in ("list", "tuple"):
        if not args:
            return [] if name == "list" else ()
        if len(args) != 1 or not isinstance(args[0], (list, tuple, str, dict)):
            raise _Skip(f"{name}() of an unsupported value")
        return list(args[0]) if name == "list" else tuple(args[0])
    try:
        if name == "int" and len(args) <= 2:
            return int(*args)
        if name == "float" and len(args) <= 1:
            return float(*args)
        if name == "round" and 1 <= len(args) <= 2 and all(isinstance(a, (int, float)) for a in args):
            return round(*args)
        if name in ("min", "max") and args:
            return (min if name == "min" else max)(*args)
        if name == "abs" and len(args) == 1:
            return abs(args[0])
        if name == "len" and len(args) == 1:
            return len(args[0])
        if name == "sum" and len(args) == 1 and all(isinstance(a, (int, float)) for a in args[0]):
            return sum(args[0])
    except (ArithmeticError, TypeError, ValueError) as e:
        raise _Skip(f"{name}() failed: {e}") from None
    raise _Skip(f"call of {name}()")


_BUILTINS = frozenset({"dict", "list", "tuple", "int", "float", "round", "min", "max", "abs", "len", "sum"})


def _lookup(container: Any, key: Any) -> Any:
    if _u(container):
        raise _Skip(container.reason)
    try:
        value = container[key]
    except (KeyError, IndexError, TypeError) as e:
        raise _Skip(f"no item {key!r} ({type(e).__name__})") from None
    if _u(value):
        raise _Skip(value.reason)
    return value


class _Module:
    """Evaluates one config file's statements. ``base`` is the merged dict of its ``_base_`` files."""

    def __init__(self, loader: _Loader, path: Path, base: Dict[str, Any]) -> None:
        self.loader = loader
        self.path = path
        self.base = base
        self.own: Dict[str, Any] = {}  # names bound by this file (these form its config dict)

    # -- names -------------------------------------------------------------------------------------------------
    def name(self, ident: str, local: Optional[Dict[str, Any]] = None) -> Any:
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
    def eval(self, node: ast.AST, local: Optional[Dict[str, Any]] = None) -> Any:
        """The value of ``node``; raises :class:`_Skip` when it cannot be known statically."""
        value = self._eval(node, local)
        self.loader.charge(len(value) if isinstance(value, (list, tuple, str, bytes, dict)) else 1)
        return value

    def _eval(self, node: ast.AST, local: Optional[Dict[str, Any]]) -> Any:
        self.loader.charge(1)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, _LITERAL_TYPES) or node.value is Ellipsis:
                return node.value
            raise _Skip("unsupported constant")
        if isinstance(node, ast.Name):
            return self.name(node.id, local)
        if isinstance(node, (ast.List, ast.Tuple)):
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
        if isinstance(node, ast.Dict):
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
        if isinstance(node, ast.Set):
            return self.eval_set(node, local)
        if isinstance(node, ast.Call):
            return self.eval_call(node, local)
        if isinstance(node, ast.UnaryOp):
            fn = _UNARYOPS.get(type(node.op))
            operand = self.eval(node.operand, local)
            if fn is None:
                raise _Skip(f"operator {type(node.op).__name__}")
            try:
                return fn(operand)
            except (ArithmeticError, TypeError) as e:
                raise _Skip(str(e)) from None
        if isinstance(node, ast.BinOp):
            return _safe_binop(node.op, self.eval(node.left, local), self.eval(node.right, local))
        if isinstance(node, ast.BoolOp):
            value: Any = None
            for sub in node.values:
                value = self.eval(sub, local)
                if isinstance(node.op, ast.And) and not value:
                    return value
                if isinstance(node.op, ast.Or) and value:
                    return value
            return value
        if isinstance(node, ast.Compare):
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
        if isinstance(node, ast.IfExp):
            return self.eval(node.body if self.eval(node.test, local) else node.orelse, local)
        if isinstance(node, ast.Subscript):
            container = self.eval(node.value, local)
            sl = node.slice
            if isinstance(sl, ast.Slice):
                parts = [None if p is None else self.eval(p, local) for p in (sl.lower, sl.upper, sl.step)]
                if not all(p is None or isinstance(p, int) for p in parts):
                    raise _Skip("non-integer slice")
                return _lookup(container, slice(*parts))
            return _lookup(container, self.eval(sl, local))
        if isinstance(node, ast.Attribute):
            container = self.eval(node.value, local)
            if isinstance(container, dict):  # ConfigDict-style attribute access
                return _lookup(container, node.attr)
            raise _Skip(f"attribute .{node.attr} of a {type(container).__name__}")
        if isinstance(node, ast.JoinedStr):
            return self.eval_fstring(node, local)
        if isinstance(node, (ast.ListComp, ast.GeneratorExp, ast.DictComp)):
            return self.eval_comprehension(node, local)
        raise _Skip(f"unsupported expression {type(node).__name__}")

    def eval_entry(self, node: ast.AST, local: Optional[Dict[str, Any]]) -> Any:
        """A dict value: an unresolvable one becomes an :class:`_Unresolved` marker (the key is dropped later)."""
        try:
            return self.eval(node, local)
        except (_Skip, TypeError, ValueError, ArithmeticError, LookupError) as e:
            logger.debug("%s:%s: dict entry left out (%s)", self.path, getattr(node, "lineno", "?"), e)
            return _Unresolved(str(e))

    def eval_set(self, node: ast.Set, local: Optional[Dict[str, Any]]) -> Any:
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

    def eval_call(self, node: ast.Call, local: Optional[Dict[str, Any]]) -> Any:
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

    def eval_fstring(self, node: ast.JoinedStr, local: Optional[Dict[str, Any]]) -> str:
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

    def eval_comprehension(self, node: Any, local: Optional[Dict[str, Any]]) -> Any:
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

    # -- statements --------------------------------------------------------------------------------------------
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


def _set_in(container: Any, keys: List[Any], value: Any) -> Any:
    """A copy of ``container`` with ``container[k0][k1]...`` set to ``value`` (dicts only)."""
    if not keys:
        return value
    if not isinstance(container, dict):
        raise _Skip("item assignment into a non-dict")
    new = dict(container)
    new[keys[0]] = _set_in(_lookup(container, keys[0]) if len(keys) > 1 else None, keys[1:], value)
    return new


def _deep_update(old: Dict[str, Any], other: Dict[str, Any]) -> Dict[str, Any]:
    """``mmengine.ConfigDict.update``: nested dicts are updated, everything else replaced (no ``_delete_``)."""
    new = dict(old)
    for k, v in other.items():
        new[k] = _deep_update(new[k], v) if isinstance(new.get(k), dict) and isinstance(v, dict) else v
    return new


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


# --------------------------------------------------------------------------------------------------------------------
# Files and bases
# --------------------------------------------------------------------------------------------------------------------


class _Loader:
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


def _check_py(path: Path) -> None:
    if path.is_dir():
        raise ConfigError(f"config {path} is a directory, not a Python config file")
    if path.suffix.lower() != ".py":
        raise ConfigError(f"config {path} is not a Python (.py) OpenMMLab config file")


def load_config(path: PathLike) -> Dict[str, Any]:
    """Parse the OpenMMLab Python config ``path`` (and its ``_base_`` files) into a plain dict, without executing it.

    Values that cannot be resolved statically are absent (see the module docstring). Raises :class:`ConfigError`
    for a missing/unreadable file, a non-``.py`` file, a syntax error (``file:line`` in the message) or cyclic bases.
    """
    p = Path(os.fspath(path)).expanduser()
    if not p.exists():
        raise ConfigError(f"config {p} does not exist")
    _check_py(p)
    data = _Loader().load(p)
    return {k: v for k, v in _clean(data).items() if k != BASE_KEY and not k.startswith("__")}


# --------------------------------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class ModelConfig:
    """The config facts pose3d-rt uses, for one model. Every field but ``role`` is None when the config is silent.

    Sizes are ``(width, height)``. Field groups: common; detector; pose2d; lifter (see :func:`summarize` for the
    exact config keys each field comes from).
    """

    role: str
    source: Optional[str] = None
    # common
    model_type: Optional[str] = None
    backbone_type: Optional[str] = None
    mean: Optional[Tuple[float, ...]] = None
    std: Optional[Tuple[float, ...]] = None
    bgr_to_rgb: Optional[bool] = None
    input_size: Optional[Tuple[int, int]] = None
    num_keypoints: Optional[int] = None
    dataset: Optional[str] = None
    dataset_type: Optional[str] = None
    flip_test: Optional[bool] = None
    codec_type: Optional[str] = None
    # detector
    keep_ratio: Optional[bool] = None
    pad_size: Optional[Tuple[int, int]] = None
    pad_value: Optional[float] = None
    num_classes: Optional[int] = None
    classes: Optional[Tuple[str, ...]] = None
    score_thr: Optional[float] = None
    nms_type: Optional[str] = None
    nms_iou_threshold: Optional[float] = None
    max_per_img: Optional[int] = None
    nms_pre: Optional[int] = None
    min_bbox_size: Optional[float] = None
    # pose2d
    simcc_split_ratio: Optional[float] = None
    heatmap_size: Optional[Tuple[int, int]] = None
    bbox_padding: Optional[float] = None
    # lifter
    seq_len: Optional[int] = None
    seq_step: Optional[int] = None
    causal: Optional[bool] = None
    backbone_causal: Optional[bool] = None
    pad_video_seq: Optional[bool] = None
    keypoint_2d_src: Optional[str] = None
    kernel_sizes: Optional[Tuple[int, ...]] = None
    receptive_field: Optional[int] = None
    num_blocks: Optional[int] = None
    in_channels: Optional[int] = None
    stem_channels: Optional[int] = None
    use_stride_conv: Optional[bool] = None
    zero_center: Optional[bool] = None
    root_index: Optional[int] = None
    remove_root: Optional[bool] = None
    reshape_keypoints: Optional[bool] = None
    concat_vis: Optional[bool] = None
    normalize_camera: Optional[bool] = None
    rootrel: Optional[bool] = None

    def known(self) -> Dict[str, Any]:
        """The fields that are set (not None), as a dict."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def __str__(self) -> str:
        items = ", ".join(f"{k}={v!r}" for k, v in self.known().items())
        return f"ModelConfig({items})"


def _get(cfg: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(cfg, dict):
            cfg = cfg.get(key)
        elif isinstance(cfg, (list, tuple)) and isinstance(key, int) and -len(cfg) <= key < len(cfg):
            cfg = cfg[key]
        else:
            return None
    return cfg


def _first(*values: Any) -> Any:
    for v in values:
        if v is not None:
            return v
    return None


def _dict(value: Any) -> Dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _as_bool(value: Any) -> Optional[bool]:
    return value if isinstance(value, bool) else None


def _as_int(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _as_float(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _as_str(value: Any) -> Optional[str]:
    return value if isinstance(value, str) else None


def _as_floats(value: Any) -> Optional[Tuple[float, ...]]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (float(value),)
    if isinstance(value, (list, tuple)) and value and all(_as_float(v) is not None for v in value):
        return tuple(float(v) for v in value)
    return None


def _as_ints(value: Any) -> Optional[Tuple[int, ...]]:
    if isinstance(value, (list, tuple)) and value and all(_as_int(v) is not None for v in value):
        return tuple(_as_int(v) for v in value)  # type: ignore[misc]
    return None


def _as_wh(value: Any) -> Optional[Tuple[int, int]]:
    """``(w, h)`` from an int (square) or a 2-sequence."""
    n = _as_int(value)
    if n is not None:
        return (n, n)
    seq = _as_ints(value)
    if seq is not None and len(seq) == 2:
        return (seq[0], seq[1])
    return None


_DATASET_NAMES = {
    "coco": "coco", "human36m": "h36m", "h36m": "h36m", "cocowholebody": "coco_wholebody", "halpe": "halpe",
    "aic": "aic", "crowdpose": "crowdpose", "mpii": "mpii", "ochuman": "ochuman", "posetrack18": "posetrack18",
    "jhmdb": "jhmdb", "ubody2d": "ubody2d", "ubody3d": "ubody3d",
}


def dataset_name(value: Optional[str]) -> Optional[str]:
    """Short dataset name from a dataset class (``'CocoDataset'`` → ``'coco'``, ``'Human36mDataset'`` → ``'h36m'``)
    or a metainfo file (``'configs/_base_/datasets/coco.py'`` → ``'coco'``). None for None/empty."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.lower().endswith(".py") or "/" in text or "\\" in text:
        return Path(text.replace("\\", "/")).stem or None
    text = text.rsplit(".", 1)[-1]  # 'mmpose.CocoDataset'
    if text.endswith("Dataset") and len(text) > len("Dataset"):
        text = text[: -len("Dataset")]
    key = text.lower().replace("_", "").replace("-", "")
    if key in _DATASET_NAMES:
        return _DATASET_NAMES[key]
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text).lower()


def _datasets(cfg: Dict[str, Any], order: Sequence[str]) -> Iterator[Dict[str, Any]]:
    for split in order:
        ds = _get(cfg, f"{split}_dataloader", "dataset")
        if isinstance(ds, dict):
            yield ds


def _dataset_of(cfg: Dict[str, Any]) -> Tuple[Optional[str], Optional[str]]:
    """(short name, class name) of the training dataset, as mmpose's ``dataset_meta_from_config`` picks it."""
    name = cls = None
    for ds in _datasets(cfg, ("train", "val", "test")):
        from_file = _as_str(_get(ds, "metainfo", "from_file"))
        ds_type = _as_str(ds.get("type"))
        cls = cls or ds_type
        if from_file:
            name = dataset_name(from_file)
        elif ds_type and ds_type.rsplit(".", 1)[-1] not in ("CombinedDataset", "RepeatDataset", "ConcatDataset"):
            name = dataset_name(ds_type)
        if name:
            break
    cls = cls or _as_str(cfg.get("dataset_type"))
    if name is None:
        name = dataset_name(_as_str(cfg.get("dataset_type")))
    return name, cls


def _pipeline_steps(steps: Any) -> Iterator[Dict[str, Any]]:
    """The transforms of a pipeline, depth-first (into ``transforms`` of wrappers such as TestTimeAug)."""
    if isinstance(steps, dict):
        yield steps
        yield from _pipeline_steps(steps.get("transforms"))
    elif isinstance(steps, (list, tuple)):
        for s in steps:
            yield from _pipeline_steps(s)


def _test_pipeline(cfg: Dict[str, Any]) -> List[Dict[str, Any]]:
    for ds in _datasets(cfg, ("test", "val")):
        for cand in (ds.get("pipeline"), _get(ds, "dataset", "pipeline")):
            if isinstance(cand, (list, tuple)) and cand:
                return list(_pipeline_steps(cand))
    for key in ("test_pipeline", "val_pipeline"):
        if isinstance(cfg.get(key), (list, tuple)) and cfg[key]:
            return list(_pipeline_steps(cfg[key]))
    cand = _get(cfg, "data", "test", "pipeline")  # mmdet/mmpose 0.x
    return list(_pipeline_steps(cand)) if isinstance(cand, (list, tuple)) else []


def _step_type(step: Dict[str, Any]) -> str:
    t = step.get("type")
    return t.rsplit(".", 1)[-1] if isinstance(t, str) else ""


def _common(cfg: Dict[str, Any], out: ModelConfig) -> None:
    model = _dict(cfg.get("model"))
    out.model_type = _as_str(model.get("type"))
    out.backbone_type = _as_str(_get(model, "backbone", "type"))
    pre = _dict(model.get("data_preprocessor"))
    norm = _dict(cfg.get("img_norm_cfg"))  # mmdet/mmpose 0.x
    out.mean = _as_floats(_first(pre.get("mean"), norm.get("mean")))
    out.std = _as_floats(_first(pre.get("std"), norm.get("std")))
    out.bgr_to_rgb = _as_bool(_first(pre.get("bgr_to_rgb"), norm.get("to_rgb")))
    out.flip_test = _as_bool(_get(model, "test_cfg", "flip_test"))
    out.dataset, out.dataset_type = _dataset_of(cfg)


def _summarize_detector(cfg: Dict[str, Any], out: ModelConfig) -> None:
    model = _dict(cfg.get("model"))
    test_cfg = _dict(model.get("test_cfg"))
    if isinstance(test_cfg.get("rcnn"), dict):  # two-stage detectors
        test_cfg = {**_dict(test_cfg.get("rpn")), **test_cfg["rcnn"]}
    out.score_thr = _as_float(test_cfg.get("score_thr"))
    nms = test_cfg.get("nms")
    if isinstance(nms, dict):
        out.nms_type = _as_str(nms.get("type"))
        out.nms_iou_threshold = _as_float(_first(nms.get("iou_threshold"), nms.get("iou_thr")))
    out.max_per_img = _as_int(test_cfg.get("max_per_img"))
    out.nms_pre = _as_int(test_cfg.get("nms_pre"))
    out.min_bbox_size = _as_float(test_cfg.get("min_bbox_size"))
    out.num_classes = _as_int(_first(_get(model, "bbox_head", "num_classes"),
                                     _get(model, "roi_head", "bbox_head", "num_classes")))
    for ds in _datasets(cfg, ("test", "val", "train")):
        classes = _get(ds, "metainfo", "classes")
        if isinstance(classes, (list, tuple)) and all(isinstance(c, str) for c in classes):
            out.classes = tuple(classes)
            break
    if out.classes is None and isinstance(cfg.get("classes"), (list, tuple)):
        if all(isinstance(c, str) for c in cfg["classes"]):
            out.classes = tuple(cfg["classes"])

    steps = _test_pipeline(cfg)
    for step in steps:
        kind = _step_type(step)
        if out.input_size is None and "Resize" in kind:
            size = _as_wh(_first(step.get("scale"), step.get("img_scale")))
            if size is not None:
                out.input_size = size
                out.keep_ratio = _as_bool(step.get("keep_ratio"))
        elif out.input_size is None and kind == "MultiScaleFlipAug":
            out.input_size = _as_wh(_first(step.get("img_scale"), step.get("scale")))
        elif kind == "Pad" and out.pad_size is None:
            out.pad_size = _as_wh(step.get("size"))
            pad_val = step.get("pad_val")
            if isinstance(pad_val, dict):
                pad_val = pad_val.get("img")
            vals = _as_floats(pad_val)
            if vals and len(set(vals)) == 1:
                out.pad_value = vals[0]
    if out.input_size is None:
        out.input_size = _as_wh(cfg.get("img_scale"))


def _summarize_pose2d(cfg: Dict[str, Any], out: ModelConfig) -> None:
    model = _dict(cfg.get("model"))
    head = _dict(model.get("head"))
    codec = _dict(head.get("decoder")) or _dict(cfg.get("codec"))
    out.codec_type = _as_str(codec.get("type"))
    steps = _test_pipeline(cfg)
    affine = next((s for s in steps if _step_type(s) in ("TopdownAffine", "TopDownAffine")), {})
    out.input_size = _as_wh(_first(codec.get("input_size"), head.get("input_size"), affine.get("input_size"),
                                    _get(cfg, "data_cfg", "image_size")))
    out.heatmap_size = _as_wh(_first(codec.get("heatmap_size"), _get(cfg, "data_cfg", "heatmap_size")))
    out.simcc_split_ratio = _as_float(_first(codec.get("simcc_split_ratio"), head.get("simcc_split_ratio")))
    out.num_keypoints = _as_int(_first(head.get("out_channels"), head.get("num_joints"), codec.get("num_keypoints")))
    center = next((s for s in steps if _step_type(s) == "GetBBoxCenterScale"), None)
    if center is not None:
        out.bbox_padding = _as_float(center.get("padding", 1.25))


def _summarize_lifter(cfg: Dict[str, Any], out: ModelConfig) -> None:
    model = _dict(cfg.get("model"))
    backbone = _dict(model.get("backbone"))
    head = _dict(model.get("head"))
    codec = _dict(head.get("decoder")) or _dict(cfg.get("codec")) or _dict(cfg.get("val_codec"))
    out.codec_type = _as_str(codec.get("type"))
    out.num_keypoints = _as_int(_first(codec.get("num_keypoints"), head.get("num_joints")))
    for name in ("zero_center", "remove_root", "reshape_keypoints", "concat_vis", "normalize_camera", "rootrel"):
        setattr(out, name, _as_bool(codec.get(name)))
    out.root_index = _as_int(codec.get("root_index"))

    out.kernel_sizes = _as_ints(backbone.get("kernel_sizes"))
    if out.kernel_sizes is not None:
        out.receptive_field = math.prod(out.kernel_sizes)
    out.num_blocks = _as_int(backbone.get("num_blocks"))
    out.in_channels = _as_int(backbone.get("in_channels"))
    out.stem_channels = _as_int(backbone.get("stem_channels"))
    out.use_stride_conv = _as_bool(backbone.get("use_stride_conv"))
    out.backbone_causal = _as_bool(backbone.get("causal"))

    # The demo and the Inferencer window the 2D history with the *test* dataset's settings.
    datasets = list(_datasets(cfg, ("test", "val", "train")))

    def from_datasets(key: str) -> Any:
        return _first(*(ds.get(key) for ds in datasets))

    out.seq_len = _as_int(_first(from_datasets("seq_len"), backbone.get("seq_len")))
    out.seq_step = _as_int(from_datasets("seq_step"))
    out.causal = _as_bool(_first(from_datasets("causal"), backbone.get("causal")))
    out.pad_video_seq = _as_bool(from_datasets("pad_video_seq"))
    out.keypoint_2d_src = _as_str(from_datasets("keypoint_2d_src"))


_SUMMARIZERS = {"detector": _summarize_detector, "pose2d": _summarize_pose2d, "lifter": _summarize_lifter}


def summarize(cfg: Dict[str, Any], role: str, source: Optional[PathLike] = None) -> ModelConfig:
    """Pick the facts of one ``role`` (``"detector"``, ``"pose2d"`` or ``"lifter"``) from a :func:`load_config` dict.

    Common: ``model.type``, ``model.backbone.type``; ``mean``/``std``/``bgr_to_rgb`` from ``model.data_preprocessor``
    (or 0.x ``img_norm_cfg``); ``flip_test`` from ``model.test_cfg``; ``dataset`` (short name) and ``dataset_type``
    (class) from the train dataset's ``metainfo.from_file`` or ``type``, else ``dataset_type``.

    * detector: ``model.test_cfg`` (``rcnn`` for two-stage) → ``score_thr``, ``nms.iou_threshold``, ``max_per_img``,
      ``nms_pre``, ``min_bbox_size``; ``bbox_head.num_classes``; dataset ``metainfo.classes``; test pipeline
      ``Resize.scale`` (or ``img_scale``) → ``input_size``/``keep_ratio``, ``Pad`` → ``pad_size``/``pad_value``.
    * pose2d: ``model.head.decoder`` (else ``codec``) → ``codec_type``, ``input_size``, ``heatmap_size``,
      ``simcc_split_ratio``; ``head.out_channels`` → ``num_keypoints``; ``GetBBoxCenterScale.padding``.
    * lifter: ``model.backbone`` → ``kernel_sizes`` (``receptive_field`` = their product), ``num_blocks``,
      ``in_channels``, ``stem_channels``, ``use_stride_conv``, ``backbone_causal``; the codec's ``num_keypoints``,
      ``zero_center``, ``root_index``, ``remove_root``, ``reshape_keypoints``, ``concat_vis``, ``normalize_camera``,
      ``rootrel``; ``seq_len``, ``seq_step``, ``causal``, ``pad_video_seq``, ``keypoint_2d_src`` from the test
      dataset (then val, then train; ``seq_len``/``causal`` fall back to the backbone's).
    """
    if role not in _SUMMARIZERS:
        raise ValueError(f"unknown model role {role!r}; expected one of {', '.join(ROLES)}")
    if not isinstance(cfg, dict):
        raise TypeError(f"summarize() needs the dict returned by load_config(), got {type(cfg).__name__}")
    out = ModelConfig(role=role, source=None if source is None else os.fspath(source))
    _common(cfg, out)
    _SUMMARIZERS[role](cfg, out)
    return out


def load_optional(path: Optional[PathLike], role: str) -> Optional[ModelConfig]:
    """:func:`summarize` of the config at ``path``, or None (with a WARNING) when no such file exists locally.

    None is also returned, silently, for ``path=None``. A file that exists but is not a ``.py`` config, or that is
    invalid, raises :class:`ConfigError`.
    """
    if role not in _SUMMARIZERS:
        raise ValueError(f"unknown model role {role!r}; expected one of {', '.join(ROLES)}")
    if path is None:
        return None
    p = Path(os.fspath(path)).expanduser()
    if not p.exists():
        logger.warning("%s config %s not found locally; using the checkpoint's own metadata", role, p)
        return None
    _check_py(p)
    return summarize(load_config(p), role, source=p)


__all__ = ["ConfigError", "ModelConfig", "ROLES", "dataset_name", "load_config", "load_optional", "summarize"]
