"""Parsing of model metadata (ONNX ``metadata_props`` / engine headers): every value is a string.

One place for the rules, with errors that name the model file and the key. The keys each model family reads
are listed in its stage's module docstring (docs/MMPOSE_BEHAVIOUR.md, ONNX metadata).
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence, Tuple

from .errors import ModelError

__all__ = ["meta_floats", "meta_int", "meta_bool"]


def meta_floats(meta: Mapping[str, str], key: str, n: Optional[int], source: str,
                allowed_lengths: Optional[Sequence[int]] = None) -> Optional[Tuple[float, ...]]:
    """``"1,2,3"`` -> ``(1.0, 2.0, 3.0)``; None when absent or empty; ``n`` (or ``allowed_lengths``) checks the count."""
    if key not in meta or str(meta[key]).strip() == "":
        return None
    try:
        vals = tuple(float(v) for v in str(meta[key]).replace(" ", "").split(","))
    except ValueError:
        raise ModelError(f"{source}: metadata {key}={meta[key]!r} is not a comma-separated list of numbers") from None
    lengths = tuple(allowed_lengths) if allowed_lengths is not None else ((n,) if n is not None else None)
    if lengths is not None and len(vals) not in lengths:
        raise ModelError(f"{source}: metadata {key}={meta[key]!r}: expected {n} comma-separated numbers")
    return vals


def meta_int(meta: Mapping[str, str], key: str, source: str) -> Optional[int]:
    """``"27"`` -> 27; None when absent or empty."""
    if key not in meta or str(meta[key]).strip() == "":
        return None
    try:
        return int(str(meta[key]).strip())
    except ValueError:
        raise ModelError(f"{source}: metadata {key}={meta[key]!r} is not an integer") from None


def meta_bool(meta: Mapping[str, str], key: str, source: str) -> Optional[bool]:
    """``1/true/yes`` -> True, ``0/false/no/""`` -> False, absent -> None."""
    if key not in meta:
        return None
    v = str(meta[key]).strip().lower()
    if v in ("1", "true", "yes"):
        return True
    if v in ("0", "false", "no", ""):
        return False
    raise ModelError(f"{source}: metadata {key}={meta[key]!r}: expected 0/1/true/false")
