"""MotionBERT (DSTformer + MotionRegressionHead) as a lifter: its codec, flip test and decode, number for number
with mmpose (``MotionBERTLabel``, ``PoseLifter.predict`` with ``flip_test``; spec ``inferencer.md`` §3.1, §4).

The exported engine (``family=motionbert``, ``form=seq2seq``) maps ``keypoints`` ``(N, T, 17, 3)`` float32 with
``T <= window`` (243, the length of its ``temp_embed``) to the raw network output ``(N, T, 17, 3)``. Around it:

1. :func:`encode_input`: ``x/w*2 - 1``, ``y/w*2 - h/w`` (the TCN codec's formula with the correct ``(w, h)``, in
   mmpose's dtypes) plus a third channel: the 2D scores (``mode="default"``, what the original MotionBERT was
   trained with) or the constant 1.0 (``mode="mmpose"``, quirk I3);
2. :class:`MotionBERTModel`: ``[x; flip(x)]`` in ONE engine call of ``2N``, un-flip, average (:func:`flip_pose`:
   ``x -> (1 - x) - 1`` literally, joints by :data:`FLIP_INDICES`);
3. :func:`decode`: root row zeroed, ``xy -> (p + [1, h/w]) * w/2`` and ``z -> z * w/2`` in float64 stored as
   float32, ``x factor`` (4: mmpose's fixed fallback, I6), root-relative, ``/ 1000``;
4. the common post-processing of every lifter (:func:`pose3d_rt.lifters.codec.postprocess_3d`).

:func:`lift_single_frames` is the Inferencer's ``human3d`` path (T = 1 windows, I2). The per-track clip lifter of
the pipeline (clips of up to 243 frames, online windows) is :mod:`pose3d_rt.lifters.motionbert_stream`.
"""
from __future__ import annotations

from typing import Tuple, Union

import numpy as np

from ..engines.base import Engine
from ..engines.errors import ModelError
from ..errors import InputError
from .base import EngineLifter, K, LifterSpec, check_mode
from .codec import postprocess_3d

#: H36M-17 mirror joints (mmpose's ``flip_indices`` of ``h36m.py``): left and right hip/knee/ankle and
#: shoulder/elbow/wrist swapped, the centre line kept.
FLIP_INDICES = np.array([0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13], np.int64)
#: Root joint (pelvis) of the H36M skeleton: zeroed in the decode, and the origin of the output.
ROOT_INDEX = 0
#: ``MotionBERTLabel``'s factor (mm per pixel at the person) when the camera has no ``f``/``c``: a fixed
#: H36M-like constant, not a camera-derived value (I6).
DEFAULT_FACTOR = 4.0
#: Upper bound on frames per engine call (rows ``2N x T`` with flip); bounds the attention memory.
MAX_FRAMES_PER_CALL = 1024

_ONE = np.float32(1.0)


def _check_size(w: float, h: float) -> Tuple[float, float]:
    if not (np.isfinite(w) and np.isfinite(h) and w > 0 and h > 0):
        raise InputError(f"frame size must be (width, height) > 0, got ({w}, {h})")
    return w, h


def encode_2d(keypoints: np.ndarray, w: float, h: float) -> np.ndarray:
    """``MotionBERTLabel.encode``'s ``kp / w * 2 - [1, h / w]`` in mmpose's dtypes: ``kp / w * 2`` in float32, the
    subtraction in float64, stored as float32. ``keypoints`` ``(..., 17, >=2)`` pixels -> ``(..., 17, 2)``."""
    _check_size(w, h)
    kp = np.asarray(keypoints, np.float32)[..., :2]
    scaled = kp / np.float32(w) * np.float32(2)
    return (scaled.astype(np.float64) - np.array([1.0, h / w])).astype(np.float32)


def encode_input(keypoints: np.ndarray, w: float, h: float, scores: np.ndarray | None = None) -> np.ndarray:
    """The network input ``(..., 17, 3)``: :func:`encode_2d` and the third channel, ``scores`` ``(..., 17)`` or
    (None) the constant 1.0 of mmpose's ``keypoints_visible`` (I3)."""
    xy = encode_2d(keypoints, w, h)
    if scores is None:
        conf = np.ones(xy.shape[:-1] + (1,), np.float32)
    else:
        conf = np.asarray(scores, np.float32)
        if conf.shape != xy.shape[:-1]:
            raise InputError(f"scores must be {xy.shape[:-1]} (one per keypoint), got {conf.shape}")
        conf = conf[..., None]
    return np.concatenate([xy, conf], axis=-1)


def flip_pose(x: np.ndarray) -> np.ndarray:
    """mmpose's ``flip_coordinates(..., shift_coords=True, input_size=(1, 1))`` on ``(..., 17, C)`` float32:
    ``x -> 1 - x``, then ``x -= 1`` (float32, literally: ``(1 - x) - 1`` is not always ``-x`` in float32), then
    the joints reordered by :data:`FLIP_INDICES`. Its own inverse; the input is not modified."""
    out = np.array(x, dtype=np.float32)
    out[..., 0] = (_ONE - out[..., 0]) - _ONE
    return out[..., FLIP_INDICES, :]


def decode(raw: np.ndarray, w: float, h: float, factor: float = DEFAULT_FACTOR) -> np.ndarray:
    """``MotionBERTLabel.decode`` (``rootrel=True``): raw network output ``(..., 17, 3)`` -> camera-frame 3D.

    Root row set to 0; ``xy = (p + [1, h/w]) * w / 2`` and ``z = p_z * w / 2`` computed in float64 and stored as
    float32; ``* factor`` (float32); minus the root; ``/ 1000`` (float32). The result is root-relative and in
    metres only if ``factor`` is the right mm-per-pixel for the person (I6)."""
    _check_size(w, h)
    kp = np.array(raw, dtype=np.float32)
    if kp.ndim < 2 or kp.shape[-2:] != (K, 3):
        raise InputError(f"MotionBERT output must be (..., {K}, 3), got {kp.shape}")
    kp[..., ROOT_INDEX, :] = 0
    kp[..., :2] = (kp[..., :2].astype(np.float64) + np.array([1.0, h / w])) * float(w) / 2
    kp[..., 2] = kp[..., 2].astype(np.float64) * float(w) / 2
    kp *= np.float32(factor)
    kp -= kp[..., ROOT_INDEX:ROOT_INDEX + 1, :]
    kp /= np.float32(1000.0)
    return kp


class MotionBERTModel:
    """A MotionBERT engine as a :class:`~pose3d_rt.lifters.base.LifterModel`: ``infer((B, T, 17, 3))`` returns
    the raw output ``(B, T, 17, 3)``, flip-averaged when ``flip`` (decode it with :func:`decode`).

    Any ``1 <= T <= spec.window`` is accepted (the engine's time axis is dynamic); calls are split so that one
    engine call holds at most ``max_frames`` rows x frames (counting the flipped copies)."""

    def __init__(self, model: Union[Engine, EngineLifter], *, flip: bool = True,
                 max_frames: int = MAX_FRAMES_PER_CALL) -> None:
        self.lifter = model if isinstance(model, EngineLifter) else EngineLifter(model)
        self.spec: LifterSpec = self.lifter.spec
        self.source = self.lifter.source
        self.flip = bool(flip)
        self.max_frames = int(max_frames)
        if self.spec.family != "motionbert" or self.spec.in_channels != 3:
            raise ModelError(f"{self.source}: not a MotionBERT lifter (family={self.spec.family}, "
                             f"in_channels={self.spec.in_channels}); expected family=motionbert with 3 channels")

    @property
    def engine(self) -> Engine:
        return self.lifter.engine

    def infer(self, windows: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(windows, dtype=np.float32)
        if x.ndim != 4 or x.shape[2:] != (K, 3):
            raise InputError(f"MotionBERT windows must be (B, T, {K}, 3), got {x.shape}")
        b, t = x.shape[:2]
        copies = 2 if self.flip else 1
        step = max(1, self.max_frames // (copies * t))
        out = np.empty((b, t, K, 3), np.float32)
        for s in range(0, b, step):
            part = x[s:s + step]
            if not self.flip:
                out[s:s + step] = self.lifter.infer(part)  # checks T against the window, the output shape
                continue
            y = self.lifter.infer(np.concatenate([part, flip_pose(part)]))
            n = part.shape[0]
            out[s:s + step] = (y[:n] + flip_pose(y[n:])) * np.float32(0.5)
        return out


def as_motionbert(model: Union[Engine, EngineLifter, MotionBERTModel], *, flip: bool = True) -> MotionBERTModel:
    """``model`` as a :class:`MotionBERTModel` (an existing one keeps its own ``flip``)."""
    if isinstance(model, MotionBERTModel):
        return model
    return MotionBERTModel(model, flip=flip)


def lift_single_frames(model: Union[Engine, EngineLifter, MotionBERTModel], keypoints_h36m: np.ndarray,
                       frame_size: Tuple[float, float], *, scores: np.ndarray | None = None, mode: str = "mmpose",
                       flip: bool = True, postprocess: bool = True, rebase: bool = True) -> np.ndarray:
    """Lift ``N`` persons of one image, each as a T = 1 window: the Inferencer's ``human3d`` path (I2).

    ``keypoints_h36m`` ``(N, 17, 2)`` pixels in H36M order (after ``norm_pose_2d`` if the caller canonicalises),
    ``frame_size`` ``(w, h)``. ``mode="mmpose"``: channel 3 is 1.0 (I3); ``mode="default"``: ``scores``
    ``(N, 17)``. Flip test, decode, then (``postprocess``) axes ``[0, 2, 1]``, X and Z negated and (``rebase``)
    ``Z -= min Z``. Returns ``(N, 17, 3)`` float32 in the input row order."""
    check_mode(mode)
    kp = np.asarray(keypoints_h36m, np.float32)
    if kp.ndim != 3 or kp.shape[1] != K or kp.shape[2] < 2:
        raise InputError(f"keypoints_h36m must be (N, {K}, 2) pixels, got {kp.shape}")
    if mode == "default" and scores is None:
        raise InputError("mode='default' feeds the 2D scores as the third channel: pass scores=(N, 17)")
    w, h = (float(v) for v in frame_size)
    m = model if isinstance(model, MotionBERTModel) and model.flip == flip else as_motionbert(
        getattr(model, "lifter", model), flip=flip)
    if kp.shape[0] == 0:
        return np.zeros((0, K, 3), np.float32)
    x = encode_input(kp, w, h, None if mode == "mmpose" else scores)[:, None]
    out = decode(m.infer(x)[:, 0], w, h)
    return postprocess_3d(out, rebase=rebase) if postprocess else out


__all__ = [
    "FLIP_INDICES",
    "ROOT_INDEX",
    "DEFAULT_FACTOR",
    "MAX_FRAMES_PER_CALL",
    "encode_2d",
    "encode_input",
    "flip_pose",
    "decode",
    "MotionBERTModel",
    "as_motionbert",
    "lift_single_frames",
]
