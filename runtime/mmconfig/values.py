"""The values of the safe config evaluator: unresolved markers, evaluation limits, bounded operators and
builtins, and mmengine-style merging of config dicts.

Everything here is pure: nothing a config says is ever executed, and every operation that could build a huge value
(``'x' * 10**9``, ``2 ** 10**9``, ``'%99999d' % 1``) is refused with :class:`_Skip` before it is computed.
"""
from __future__ import annotations

import ast
import logging
import operator
import re
from typing import Any, Callable, Dict, List, Optional

logger = logging.getLogger(__name__)

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
    """Marks a value that cannot be known without executing the config. Never escapes
    :func:`~pose3d_rt.mmconfig.loader.load_config`."""

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
# Bounded operations
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



# --------------------------------------------------------------------------------------------------------------------
# Copy-on-write updates
# --------------------------------------------------------------------------------------------------------------------


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
