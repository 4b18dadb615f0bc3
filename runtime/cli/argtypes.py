"""argparse value types shared by the command-line tools (errors name the bad value)."""
from __future__ import annotations

import argparse


def _number(value: str, kind, what: str):
    try:
        return kind(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {value!r}") from None


def positive_int(value: str) -> int:
    n = _number(value, int, "a positive integer")
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return n


def nonneg_int(value: str) -> int:
    n = _number(value, int, "an integer >= 0")
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value!r}")
    return n


def nonneg_float(value: str) -> float:
    v = _number(value, float, "a number")
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value!r}")
    return v


def batch_or_dynamic(value: str):
    """``--batch`` of ``export``: ``"dynamic"`` or a positive integer."""
    if value == "dynamic":
        return "dynamic"
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--batch must be 'dynamic' or a positive integer, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"--batch must be 'dynamic' or a positive integer, got {value!r}")
    return n
