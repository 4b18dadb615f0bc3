"""SimCC decoding and flip-test merging of RTMPose outputs (mmpose ``SimCCLabel.decode``, ``flip_vectors``).

References: docs/MMPOSE_BEHAVIOUR.md, RTMPose; mmpose ``codecs/utils/post_processing.py::get_simcc_maximum``,
``codecs/simcc_label.py::decode``, ``models/utils/tta.py::flip_vectors``, ``models/heads/coord_cls_heads/
rtmcc_head.py::predict``. Everything is vectorised over instances and keypoints.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

#: mmpose's SimCC codec default for every RTMPose config.
DEFAULT_SPLIT_RATIO = 2.0


def _pair(simcc_x: np.ndarray, simcc_y: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    x = np.asarray(simcc_x)
    y = np.asarray(simcc_y)
    if x.ndim == 2:
        x = x[None]
    if y.ndim == 2:
        y = y[None]
    if x.ndim != 3 or y.ndim != 3 or x.shape[:2] != y.shape[:2]:
        raise ValueError(f"SimCC outputs must be (N, K, Wx) and (N, K, Wy) with equal N, K; got {x.shape} and {y.shape}")
    return x, y


def get_simcc_maximum(simcc_x: np.ndarray, simcc_y: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per-axis argmax bins and scores of SimCC vectors (N, K, Wx), (N, K, Wy) (or (K, W) for one instance).

    Returns ``locs`` (N, K, 2) float32 (x bin, y bin; the first maximum on ties) and ``scores`` (N, K) =
    ``min(max_x, max_y)`` in the input dtype (raw values, no softmax). Where the score is ``<= 0`` both
    bins are set to -1 (mmpose rule; a NaN score leaves them untouched, as in mmpose).
    """
    x, y = _pair(simcc_x, simcc_y)
    locs = np.stack([np.argmax(x, axis=-1), np.argmax(y, axis=-1)], axis=-1).astype(np.float32)
    scores = np.minimum(np.max(x, axis=-1), np.max(y, axis=-1))
    locs[scores <= 0] = -1
    return locs, scores


def decode_simcc(simcc_x: np.ndarray, simcc_y: np.ndarray,
                 split_ratio: float = DEFAULT_SPLIT_RATIO) -> Tuple[np.ndarray, np.ndarray]:
    """SimCC vectors -> keypoints in crop-input pixels (N, K, 2) float32 and scores (N, K).

    ``bins / split_ratio`` after the ``score <= 0 -> bin -1`` rule (so invalid keypoints land at ``-1 / r``).
    """
    locs, scores = get_simcc_maximum(simcc_x, simcc_y)
    locs /= np.float32(split_ratio)
    return locs, scores.astype(np.float32, copy=False)


def flip_back_simcc(simcc_x_flip: np.ndarray, simcc_y_flip: np.ndarray,
                    flip_indices: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
    """Outputs for the horizontally flipped crop -> the original crop's frame (mmpose ``flip_vectors``):
    swap left/right keypoints with ``flip_indices`` and reverse the x bins. No sub-bin shift."""
    x, y = _pair(simcc_x_flip, simcc_y_flip)
    idx = np.asarray(flip_indices, np.int64)
    if idx.shape != (x.shape[1],):
        raise ValueError(f"flip_indices has {idx.size} entries but the outputs have {x.shape[1]} keypoints")
    return x[:, idx, ::-1], y[:, idx]


def merge_flip(simcc_x: np.ndarray, simcc_y: np.ndarray, simcc_x_flip: np.ndarray, simcc_y_flip: np.ndarray,
               flip_indices: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
    """Flip-test average ``(orig + flip_back(flipped)) * 0.5`` (mmpose ``RTMCCHead.predict``), float32."""
    x, y = _pair(simcc_x, simcc_y)
    xf, yf = flip_back_simcc(simcc_x_flip, simcc_y_flip, flip_indices)
    if xf.shape != x.shape or yf.shape != y.shape:
        raise ValueError(f"flip outputs {xf.shape}/{yf.shape} do not match the originals {x.shape}/{y.shape}")
    half = np.float32(0.5)
    return ((x + xf) * half).astype(np.float32, copy=False), ((y + yf) * half).astype(np.float32, copy=False)


__all__ = ["DEFAULT_SPLIT_RATIO", "get_simcc_maximum", "decode_simcc", "flip_back_simcc", "merge_flip"]
