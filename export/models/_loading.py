"""Shared strict-loading helpers for the family modules: shape signatures and informative mismatch reports."""
from __future__ import annotations

from typing import Callable, Dict, List, Mapping, Tuple

import torch
from torch import nn

from ...engines.errors import ModelError


def shapes_of(state_dict: Mapping[str, object]) -> Dict[str, Tuple[int, ...]]:
    return {k: tuple(getattr(v, "shape", ())) for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}


def expected_shapes(build: Callable[[], nn.Module]) -> Dict[str, Tuple[int, ...]]:
    """Key -> shape of a model built on the meta device (no memory, no init cost)."""
    with torch.device("meta"):
        model = build()
    return shapes_of(model.state_dict())


def mismatch_report(expected: Mapping[str, Tuple[int, ...]], found: Mapping[str, Tuple[int, ...]],
                    limit: int = 8) -> List[str]:
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    wrong = [f"{k} {found[k]} vs expected {expected[k]}" for k in expected if k in found and found[k] != expected[k]]
    out = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", wrong)):
        if items:
            more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
            out.append(f"{len(items)} {label}: {', '.join(items[:limit])}{more}")
    return out


def strict_load(model: nn.Module, state_dict: Mapping[str, torch.Tensor], what: str) -> nn.Module:
    sd = dict(state_dict)
    for key, value in model.state_dict().items():  # num_batches_tracked is optional
        if key.endswith(".num_batches_tracked") and key not in sd:
            sd[key] = torch.zeros_like(value)
    problems = mismatch_report(shapes_of(model.state_dict()), shapes_of(sd))
    if problems:
        raise ModelError(f"{what} does not match the checkpoint: " + "; ".join(problems))
    model.load_state_dict(sd, strict=True)
    return model.eval()


def family_guard(state_dict: Mapping[str, object], family: str) -> None:
    from ..checkpoint import detect_family

    found = detect_family(state_dict)
    if found != family:
        raise ModelError(f"this checkpoint looks like a {found} model, not a {family} model")


def match_variant(state_dict: Mapping[str, object], variants: Mapping[str, object],
                  build: Callable[[object], nn.Module], prefilter: Callable[[object], str], label: str) -> str:
    """The first variant whose key set and shapes equal the checkpoint's. ``prefilter(cfg)`` returns "" when the
    cheap signature (stem width, head size) agrees, else the reason; ModelError lists every variant's mismatch."""
    found = shapes_of(state_dict)
    reports = []
    for name, cfg in variants.items():
        reason = prefilter(cfg)
        if reason:
            reports.append(f"{name}: {reason}")
            continue
        problems = mismatch_report(expected_shapes(lambda c=cfg: build(c)), found, limit=3)
        if not problems:
            return name
        reports.append(f"{name}: " + "; ".join(problems))
    raise ModelError(f"no {label} variant matches this checkpoint: " + " | ".join(reports))
