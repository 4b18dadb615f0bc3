"""RTMDet preprocessing (mmdet 3.x test pipeline), torch-free: keep-ratio resize + bottom/right pad, normalise.

``letterbox`` is mmcv's ``Resize(keep_ratio=True)`` + ``Pad``; ``preprocess`` batches frames into the float32
``(N, 3, H, W)`` network input (docs/MMPOSE_BEHAVIOUR.md, RTMDet). Any frame that passes
:func:`pose3d_rt.frames.check_frame` is accepted, down to one pixel and any aspect ratio: each side is resized to
at least one pixel.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple, Union

import cv2
import numpy as np

from ..errors import InputError
from ..frames import check_frame

__all__ = ["DEFAULT_MEAN", "DEFAULT_STD", "DEFAULT_INPUT_SIZE", "Frames", "Letterbox", "PreprocessConfig",
           "letterbox", "preprocess"]

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
        object.__setattr__(self, "input_hw", (h, w))
        object.__setattr__(self, "pad_value", tuple(int(v) for v in pad))


def letterbox(frame: np.ndarray, input_hw: Tuple[int, int], pad_value: Union[int, Sequence[int]] = 114
              ) -> Tuple[np.ndarray, Letterbox]:
    """Keep-ratio resize into ``input_hw`` and pad bottom/right (mmcv ``Resize(keep_ratio)`` + ``Pad``).

    ``f = min(H / h, W / w)`` (for a square input this is mmcv's ``S / max(h, w)``, up-scaling included),
    new size ``int(x * f + 0.5)``, ``cv2.resize(..., INTER_LINEAR)``. Returns the uint8 ``(H, W, 3)`` canvas.
    """
    frame = check_frame(frame)  # BGR uint8, C order (cv2 needs it for views, flips, crops)
    H, W = int(input_hw[0]), int(input_hw[1])
    h, w = frame.shape[:2]
    f = min(H / h, W / w)
    new_w = min(int(w * f + 0.5), W)
    new_h = min(int(h * f + 0.5), H)
    new_w, new_h = max(new_w, 1), max(new_h, 1)
    resized = frame if (new_w, new_h) == (w, h) else cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad = [int(v) for v in np.broadcast_to(np.asarray(pad_value, dtype=np.uint8), (3,))]
    canvas = cv2.copyMakeBorder(resized, 0, H - new_h, 0, W - new_w, cv2.BORDER_CONSTANT, value=pad)
    return canvas, Letterbox((h, w), (new_h, new_w), (H, W), (new_w / w, new_h / h))


def preprocess(frames: Frames, cfg: PreprocessConfig = PreprocessConfig()) -> Tuple[np.ndarray, List[Letterbox]]:
    """Letterbox and normalise one frame or a sequence of frames (BGR uint8 ``(H, W, 3)``).

    Returns the float32 network input ``(N, 3, H, W)`` and one :class:`Letterbox` per frame.
    Normalisation: ``(x.astype(float32) - mean) / std`` per channel after padding (mmdet's order), in the
    network's channel order (BGR unless ``channel_order='rgb'``).
    """
    if isinstance(frames, np.ndarray) and frames.ndim == 4:
        raise InputError(
            f"frames: expected one uint8 (H, W, 3) array or a list of them, got an array of shape {frames.shape}"
        )
    frame_list = [frames] if isinstance(frames, np.ndarray) else list(frames)
    H, W = cfg.input_hw
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
        canvas, lb = letterbox(check_frame(fr, f"frames[{i}]"), cfg.input_hw, cfg.pad_value)
        planes = cv2.split(canvas)
        for k in range(3):
            x[i, k] = cv2.LUT(planes[src[k]], luts[k])
        boxes.append(lb)
    return x, boxes
