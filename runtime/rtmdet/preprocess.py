"""RTMDet preprocessing (mmdet 3.x test pipeline), torch-free: keep-ratio resize + bottom/right pad, normalise.

``letterbox`` is mmcv's ``Resize(keep_ratio=True)`` + ``Pad``; ``preprocess`` batches frames into the float32
``(N, 3, H, W)`` network input (docs/MMPOSE_BEHAVIOUR.md, RTMDet). Any frame that passes
:func:`pose3d_rt.frames.check_frame` is accepted, down to one pixel and any aspect ratio: each side is resized to
at least one pixel.

Two letterboxes, one resize. The frame is always resized with keep-ratio into the nominal ``input_hw`` (the same
scale either way); the *square* letterbox (mmdet's, mmpose mode) then pads to ``input_hw``, the *rect* letterbox
(``PreprocessConfig.pad_to_multiple``, default mode with a detector exported with dynamic H/W) pads only to the
next multiple of the largest stride: 1280x720 -> 640x360 -> a 640x384 input instead of 640x640
(:func:`rect_input_hw`). Pad value and placement (top-left image, bottom/right pad) are the same.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..errors import InputError
from ..frames import check_frame

__all__ = ["DEFAULT_MEAN", "DEFAULT_STD", "DEFAULT_INPUT_SIZE", "Frames", "Letterbox", "PreprocessConfig",
           "letterbox", "preprocess", "resized_hw", "rect_input_hw", "batch_input_hw"]

DEFAULT_MEAN = (103.53, 116.28, 123.675)  # BGR, mmdet DetDataPreprocessor
DEFAULT_STD = (57.375, 57.12, 58.395)
DEFAULT_INPUT_SIZE = 640

Frames = Union[np.ndarray, Sequence[np.ndarray]]


@dataclass(frozen=True)
class Letterbox:
    """Geometry of one keep-ratio resize + bottom/right pad.

    ``scale_factor = (new_w / w, new_h / h)`` (mmcv: from the integer resized size, two factors).
    """

    orig_hw: Tuple[int, int]
    resized_hw: Tuple[int, int]
    input_hw: Tuple[int, int]
    scale_factor: Tuple[float, float]


@dataclass(frozen=True)
class PreprocessConfig:
    """Network input geometry and normalisation. ``mean``/``std`` are in the network's channel order."""

    input_hw: Tuple[int, int] = (DEFAULT_INPUT_SIZE, DEFAULT_INPUT_SIZE)
    mean: Tuple[float, float, float] = DEFAULT_MEAN
    std: Tuple[float, float, float] = DEFAULT_STD
    pad_value: Tuple[int, int, int] = (114, 114, 114)  # in the frame's (BGR) order
    channel_order: str = "bgr"
    normalize: bool = True
    #: None: square letterbox, pad to ``input_hw``. An int m (the largest stride): rect letterbox, the keep-ratio
    #: resize into ``input_hw`` is padded only to the next multiple of m (:func:`rect_input_hw`)
    pad_to_multiple: Optional[int] = None

    def __post_init__(self) -> None:
        h, w = (int(v) for v in self.input_hw)
        if h <= 0 or w <= 0:
            raise ValueError(f"input_hw: expected two positive ints, got {self.input_hw}")
        if self.channel_order not in ("bgr", "rgb"):
            raise ValueError(f"channel_order: expected 'bgr' or 'rgb', got {self.channel_order!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or any(float(s) == 0.0 for s in self.std):
            raise ValueError(f"mean/std: expected 3 values each, std non-zero; got {self.mean}, {self.std}")
        pad = tuple(self.pad_value) if np.ndim(self.pad_value) else (self.pad_value,)
        pad = pad * 3 if len(pad) == 1 else pad
        if len(pad) != 3:
            raise ValueError(f"pad_value: expected 1 or 3 values, got {self.pad_value}")
        if self.pad_to_multiple is not None and int(self.pad_to_multiple) <= 0:
            raise ValueError(f"pad_to_multiple: expected None or a positive int, got {self.pad_to_multiple}")
        if self.pad_to_multiple is not None:
            object.__setattr__(self, "pad_to_multiple", int(self.pad_to_multiple))
        object.__setattr__(self, "input_hw", (h, w))
        object.__setattr__(self, "pad_value", tuple(int(v) for v in pad))


def resized_hw(frame_hw: Tuple[int, int], fit_hw: Tuple[int, int]) -> Tuple[int, int]:
    """The keep-ratio resized size ``(new_h, new_w)`` of a ``frame_hw`` frame fitted into ``fit_hw`` (mmcv).

    ``f = min(H / h, W / w)`` (for a square ``fit_hw`` this is mmcv's ``S / max(h, w)``, up-scaling included),
    each side ``int(x * f + 0.5)``, kept within ``fit_hw`` and at least 1."""
    h, w = int(frame_hw[0]), int(frame_hw[1])
    H, W = int(fit_hw[0]), int(fit_hw[1])
    f = min(H / h, W / w)
    return max(min(int(h * f + 0.5), H), 1), max(min(int(w * f + 0.5), W), 1)


def rect_input_hw(frame_hw: Tuple[int, int], fit_hw: Tuple[int, int], multiple: int) -> Tuple[int, int]:
    """The rect letterbox's network input ``(H, W)``: the smallest multiples of ``multiple`` that hold the
    keep-ratio resize of ``frame_hw`` into ``fit_hw`` (1280x720 into 640x640 -> 640x360 -> ``(384, 640)``)."""
    m = int(multiple)
    rh, rw = resized_hw(frame_hw, fit_hw)
    return -(-rh // m) * m, -(-rw // m) * m


def letterbox(frame: np.ndarray, input_hw: Tuple[int, int], pad_value: Union[int, Sequence[int]] = 114,
              fit_hw: Optional[Tuple[int, int]] = None) -> Tuple[np.ndarray, Letterbox]:
    """Keep-ratio resize into ``fit_hw`` (default ``input_hw``; :func:`resized_hw`) with
    ``cv2.resize(..., INTER_LINEAR)``, then pad bottom/right up to ``input_hw`` (mmcv ``Resize(keep_ratio)`` +
    ``Pad``). Returns the uint8 ``(H, W, 3)`` canvas and its :class:`Letterbox`.

    ``fit_hw`` different from ``input_hw`` is the rect letterbox (:func:`rect_input_hw`); ``input_hw`` must hold
    the resized frame."""
    frame = check_frame(frame)  # BGR uint8, C order (cv2 needs it for views, flips, crops)
    H, W = int(input_hw[0]), int(input_hw[1])
    h, w = frame.shape[:2]
    new_h, new_w = resized_hw((h, w), fit_hw if fit_hw is not None else (H, W))
    if new_h > H or new_w > W:
        raise ValueError(f"letterbox: input_hw {(H, W)} cannot hold the resized frame {(new_h, new_w)}")
    resized = frame if (new_w, new_h) == (w, h) else cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad = [int(v) for v in np.broadcast_to(np.asarray(pad_value, dtype=np.uint8), (3,))]
    canvas = cv2.copyMakeBorder(resized, 0, H - new_h, 0, W - new_w, cv2.BORDER_CONSTANT, value=pad)
    return canvas, Letterbox((h, w), (new_h, new_w), (H, W), (new_w / w, new_h / h))


def batch_input_hw(frame_hws: Sequence[Tuple[int, int]], cfg: PreprocessConfig) -> Tuple[int, int]:
    """The network input ``(H, W)`` of a batch of frames of sizes ``frame_hws``: ``cfg.input_hw`` (square
    letterbox), or with ``cfg.pad_to_multiple`` the largest rect shape of the batch (one shape per engine call;
    every frame keeps its own resize, so a mixed batch decodes exactly as frame by frame)."""
    if cfg.pad_to_multiple is None or not frame_hws:
        return cfg.input_hw
    shapes = [rect_input_hw(hw, cfg.input_hw, cfg.pad_to_multiple) for hw in frame_hws]
    return max(s[0] for s in shapes), max(s[1] for s in shapes)


def preprocess(frames: Frames, cfg: PreprocessConfig = PreprocessConfig()) -> Tuple[np.ndarray, List[Letterbox]]:
    """Letterbox and normalise one frame or a sequence of frames (BGR uint8 ``(H, W, 3)``).

    Returns the float32 network input ``(N, 3, H, W)`` (``H, W`` from :func:`batch_input_hw`) and one
    :class:`Letterbox` per frame.
    Normalisation: ``(x.astype(float32) - mean) / std`` per channel after padding (mmdet's order), in the
    network's channel order (BGR unless ``channel_order='rgb'``).
    """
    if isinstance(frames, np.ndarray) and frames.ndim == 4:
        raise InputError(
            f"frames: expected one uint8 (H, W, 3) array or a list of them, got an array of shape {frames.shape}"
        )
    frame_list = [check_frame(fr, f"frames[{i}]") for i, fr in
                  enumerate([frames] if isinstance(frames, np.ndarray) else list(frames))]
    H, W = batch_input_hw([fr.shape[:2] for fr in frame_list], cfg)
    # (x - mean) / std depends only on the uint8 value and the channel: a 256-entry float32 table per channel
    # (cv2.LUT) gives bit-identical values to the float formula and writes the planes straight into NCHW.
    levels = np.arange(256, dtype=np.float32)
    if cfg.normalize:
        lut = (levels[None, :] - np.asarray(cfg.mean, np.float32)[:, None]) / np.asarray(cfg.std, np.float32)[:, None]
    else:
        lut = np.stack([levels] * 3)
    luts = [np.ascontiguousarray(lut[k].reshape(1, 256)) for k in range(3)]
    src = (0, 1, 2) if cfg.channel_order == "bgr" else (2, 1, 0)
    x = np.empty((len(frame_list), 3, H, W), dtype=np.float32)
    boxes = []
    for i, fr in enumerate(frame_list):
        canvas, lb = letterbox(fr, (H, W), cfg.pad_value, fit_hw=cfg.input_hw)
        planes = cv2.split(canvas)
        for k in range(3):
            x[i, k] = cv2.LUT(planes[src[k]], luts[k])
        boxes.append(lb)
    return x, boxes
