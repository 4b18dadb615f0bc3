"""Top-down crop geometry and preprocessing of RTMPose (mmpose ``inference_topdown``), torch-free.

Reproduces (docs/MMPOSE_BEHAVIOUR.md, RTMPose; checked against mmpose 1.3.2 code and the ``tests/fixtures/pose``
references):

1. ``GetBBoxCenterScale``: box xyxy -> ``center = (p1 + p2) * 0.5``, ``scale = (p2 - p1) * 1.25`` (float32).
2. ``TopdownAffine._fix_aspect_ratio``: enlarge one side so that ``w / h`` equals the model input ratio.
3. ``get_warp_matrix(center, scale, rot, output_size)``: three point pairs built in float32 and solved with
   ``cv2.getAffineTransform`` (float64 2x3). mmpose's code puts the second point *left* of the centre
   (``center + rotate((-scale_w / 2, 0))``, and ``(w/2, h/2) + (-w/2, 0)`` in the crop) and the third one by a
   90-degree turn around it; for ``rot = 0`` this is ``[[s, 0, w/2 - s*cx], [0, s, h/2 - s*cy]]`` with
   ``s = w / scale_w`` up to float32 rounding -- which depends on the choice of points, so it must be mmpose's.
4. The crop: ``cv2.warpAffine(img, M, (w, h), flags=INTER_LINEAR)`` with the default constant 0 border.
5. ``PoseDataPreprocessor``: BGR -> RGB, float32, ``(x - mean) / std``; all crops of a frame in one batch.

Warp arithmetic (``warp_method``)
---------------------------------
OpenCV up to 4.x computes ``warpAffine(INTER_LINEAR)`` on uint8 images in fixed point: source coordinates
quantised to 1/32 pixel (``AB_BITS = 10``, ``INTER_BITS = 5``, rounded) and 15-bit integer bilinear weights.
OpenCV 5 evaluates the same warp in floating point, which changes ~6 % of crop pixels by up to 4 grey levels
relative to the mmpose references (made with OpenCV 4.11). ``warp_method="fixed_point"`` (the default) computes
the quantised source coordinates exactly as OpenCV 4.x does (a few vectorised integer operations per crop) and
lets ``cv2.remap`` do the fixed-point interpolation from those ``CV_16SC2`` + interpolation-table maps: the crops
are bit-identical to mmpose's on every reference crop, whatever the installed OpenCV. ``warp_method="opencv"``
calls ``cv2.warpAffine`` itself (faster, bit-exact only with OpenCV 4.x).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..boxes import whole_image_box
from ..frames import check_frame

logger = logging.getLogger(__name__)

#: mmpose ``GetBBoxCenterScale`` default padding.
BBOX_PADDING = 1.25
#: RTMPose data preprocessor (RGB order).
RTMPOSE_MEAN_RGB: Tuple[float, float, float] = (123.675, 116.28, 103.53)
RTMPOSE_STD_RGB: Tuple[float, float, float] = (58.395, 57.12, 57.375)
WARP_METHODS = ("fixed_point", "opencv")

# OpenCV 4.x fixed-point warp constants (imgproc/src/imgwarp.cpp)
_AB_BITS = 10
_AB_SCALE = 1 << _AB_BITS
_INTER_BITS = 5
_INTER_TAB_SIZE = 1 << _INTER_BITS
_ROUND_DELTA = _AB_SCALE // _INTER_TAB_SIZE // 2

SizeWH = Tuple[int, int]


def _as_boxes(boxes: Union[np.ndarray, Sequence[Sequence[float]], None]) -> np.ndarray:
    if boxes is None:
        return np.zeros((0, 4), np.float32)
    arr = np.asarray(boxes)
    if arr.size == 0:
        return np.zeros((0, 4), np.float32)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] < 4:
        raise ValueError(f"boxes: expected an (N, 4) xyxy array (extra columns such as scores are ignored), "
                         f"got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"boxes: expected numbers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr[:, :4], dtype=np.float32)


def bbox_xyxy2cs(boxes: np.ndarray, padding: float = BBOX_PADDING) -> Tuple[np.ndarray, np.ndarray]:
    """Boxes (N, 4) xyxy -> ``centers`` (N, 2), ``scales`` (N, 2) (w, h times ``padding``), float32 as mmpose."""
    b = _as_boxes(boxes)
    scale = (b[:, 2:] - b[:, :2]) * np.float32(padding)
    center = (b[:, 2:] + b[:, :2]) * np.float32(0.5)
    return center.astype(np.float32), scale.astype(np.float32)


def fix_aspect_ratio(scales: np.ndarray, aspect_ratio: float) -> np.ndarray:
    """Enlarge (w, h) scales (N, 2) to ``w / h == aspect_ratio`` (mmpose ``TopdownAffine._fix_aspect_ratio``).

    If ``w > h * a`` the height becomes ``w / a``, else the width becomes ``h * a`` (float32, never shrinks).
    """
    s = np.asarray(scales, np.float32).reshape(-1, 2)
    w, h = s[:, :1], s[:, 1:]
    a = np.float32(aspect_ratio)
    return np.where(w > h * a, np.hstack([w, w / a]), np.hstack([h * a, h])).astype(np.float32)


def _third_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = a - b
    return b + np.stack([-d[..., 1], d[..., 0]], -1)


def get_warp_matrix(center: Sequence[float], scale: Sequence[float], output_size: SizeWH, rot: float = 0.0,
                    inv: bool = False) -> np.ndarray:
    """The 2x3 float64 affine matrix mapping the box region to the ``output_size`` (w, h) crop, as mmpose.

    Built like mmpose's ``get_warp_matrix`` (``shift = 0``): src points ``c``, ``c + R(rot) (-sw/2, 0)`` and the
    third one by a 90-degree turn, stored as float32; dst points ``(w/2, h/2)``, ``(0, h/2)`` and their third
    point; solved by ``cv2.getAffineTransform``. ``inv=True`` gives the crop -> image matrix.
    """
    c = np.asarray(center, np.float32).reshape(2)
    sw = float(np.asarray(scale, np.float32).reshape(2)[0])
    dst_w, dst_h = output_size
    r = np.deg2rad(rot)
    src_dir = np.array([[np.cos(r), -np.sin(r)], [np.sin(r), np.cos(r)]]) @ np.array([sw * -0.5, 0.0])
    src = np.zeros((3, 2), np.float32)
    src[0] = c
    src[1] = c + src_dir
    src[2] = _third_point(src[0], src[1])
    dst = np.zeros((3, 2), np.float32)
    dst[0] = (dst_w * 0.5, dst_h * 0.5)
    dst[1] = np.array([dst_w * 0.5, dst_h * 0.5]) + np.array([dst_w * -0.5, 0.0])
    dst[2] = _third_point(dst[0], dst[1])
    return cv2.getAffineTransform(dst, src) if inv else cv2.getAffineTransform(src, dst)


def warp_matrices(centers: np.ndarray, scales: np.ndarray, output_size: SizeWH) -> np.ndarray:
    """(N, 2, 3) float64 image -> crop matrices for every box (one ``cv2.getAffineTransform`` per box)."""
    c = np.asarray(centers, np.float32).reshape(-1, 2)
    s = np.asarray(scales, np.float32).reshape(-1, 2)
    out = np.empty((c.shape[0], 2, 3), np.float64)
    for i in range(c.shape[0]):
        out[i] = get_warp_matrix(c[i], s[i], output_size)
    return out


def invert_affine(matrices: np.ndarray) -> np.ndarray:
    """Inverse of (..., 2, 3) affine matrices (vectorised, float64)."""
    m = np.asarray(matrices, np.float64)
    a = m[..., :2]
    ainv = np.linalg.inv(a)
    t = -np.einsum("...ij,...j->...i", ainv, m[..., 2])
    return np.concatenate([ainv, t[..., None]], -1)


def apply_affine(points: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Map points (N, K, 2) with per-instance (N, 2, 3) matrices (or one (2, 3) matrix), float64."""
    p = np.asarray(points, np.float64)
    m = np.asarray(matrices, np.float64)
    if m.ndim == 2:
        m = np.broadcast_to(m, p.shape[:-2] + (2, 3))
    return np.einsum("...ij,...kj->...ki", m[..., :2], p) + m[..., None, :, 2]


def crop_to_image(points: np.ndarray, centers: np.ndarray, scales: np.ndarray, input_size: SizeWH) -> np.ndarray:
    """Crop-input pixels (N, K, 2) -> image pixels: ``p / (w, h) * scale + center - scale / 2`` (mmpose
    ``TopdownPoseEstimator.add_pred_to_datasample``). Evaluated in float64 (as numpy promotes it in mmpose) and
    rounded to float32 once."""
    p = np.asarray(points, np.float32).astype(np.float64)
    c = np.asarray(centers, np.float32).reshape(-1, 1, 2).astype(np.float64)
    s = np.asarray(scales, np.float32).reshape(-1, 1, 2)
    with np.errstate(invalid="ignore", over="ignore"):  # a non-finite box gives non-finite keypoints
        half = (s * np.float32(0.5)).astype(np.float64)
        out = p / np.asarray(input_size, np.float64) * s.astype(np.float64) + c - half
        return out.astype(np.float32)


def image_to_crop(points: np.ndarray, centers: np.ndarray, scales: np.ndarray, input_size: SizeWH) -> np.ndarray:
    """Inverse of :func:`crop_to_image` (float64 result)."""
    p = np.asarray(points, np.float64)
    c = np.asarray(centers, np.float64).reshape(-1, 1, 2)
    s = np.asarray(scales, np.float64).reshape(-1, 1, 2)
    return (p - c + 0.5 * s) / s * np.asarray(input_size, np.float64)


def _opencv_inverse(matrix: np.ndarray) -> np.ndarray:
    """The inverse affine exactly as ``cv2.warpAffine`` computes it (same operations, same order, float64)."""
    m = [float(v) for v in np.asarray(matrix, np.float64).reshape(6)]
    d = m[0] * m[4] - m[1] * m[3]
    d = 1.0 / d if d != 0 else 0.0
    a11, a22 = m[4] * d, m[0] * d
    m[0], m[4] = a11, a22
    m[1] *= -d
    m[3] *= -d
    b1 = -m[0] * m[2] - m[1] * m[5]
    b2 = -m[3] * m[2] - m[4] * m[5]
    m[2], m[5] = b1, b2
    return np.array(m, np.float64)


def fixed_point_maps(matrix: np.ndarray, output_size: SizeWH) -> Tuple[np.ndarray, np.ndarray]:
    """``cv2.remap`` maps (``CV_16SC2`` integer source pixel, ``CV_16UC1`` 1/32-pixel interpolation-table index)
    reproducing the source coordinates OpenCV 4.x's ``warpAffine(INTER_LINEAR)`` computes for an image -> crop
    ``matrix`` (2, 3): the inverse matrix, ``round(m * 1024)`` per row/column term plus the rounding delta,
    shifted to 1/32 pixel."""
    w, h = output_size
    m = _opencv_inverse(matrix)
    x = np.arange(w, dtype=np.float64)
    y = np.arange(h, dtype=np.float64)
    adelta = np.rint(m[0] * x * _AB_SCALE).astype(np.int64)
    bdelta = np.rint(m[3] * x * _AB_SCALE).astype(np.int64)
    x0 = np.rint((m[1] * y + m[2]) * _AB_SCALE).astype(np.int64) + _ROUND_DELTA
    y0 = np.rint((m[4] * y + m[5]) * _AB_SCALE).astype(np.int64) + _ROUND_DELTA
    shift = _AB_BITS - _INTER_BITS
    xs = (x0[:, None] + adelta[None, :]) >> shift
    ys = (y0[:, None] + bdelta[None, :]) >> shift
    lim = np.iinfo(np.int16)
    map1 = np.stack([np.clip(xs >> _INTER_BITS, lim.min, lim.max), np.clip(ys >> _INTER_BITS, lim.min, lim.max)],
                    -1).astype(np.int16)
    mask = _INTER_TAB_SIZE - 1
    map2 = ((ys & mask) * _INTER_TAB_SIZE + (xs & mask)).astype(np.uint16)
    return map1, map2


def warp_crops(image: np.ndarray, matrices: np.ndarray, output_size: SizeWH,
               warp_method: str = "fixed_point") -> np.ndarray:
    """Crops (N, h, w, C) of ``image`` (H, W, C) for the (N, 2, 3) image -> crop matrices, bilinear, black border.

    One OpenCV call per crop; see the module docstring for ``warp_method``.
    """
    if warp_method not in WARP_METHODS:
        raise ValueError(f"warp_method: expected one of {WARP_METHODS}, got {warp_method!r}")
    w, h = output_size
    m = np.asarray(matrices, np.float64).reshape(-1, 2, 3)
    out = np.zeros((m.shape[0], h, w) + image.shape[2:], image.dtype)
    ok = np.isfinite(m).all(axis=(1, 2))
    ok[ok] = np.abs(np.linalg.det(m[ok, :, :2])) > 1e-12
    if not ok.all():
        logger.debug("warp_crops: %d degenerate box(es) (zero size or non-finite) give black crops", int((~ok).sum()))
    for i in np.flatnonzero(ok):
        if warp_method == "opencv":
            out[i] = cv2.warpAffine(image, m[i], (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                    borderValue=0).reshape(out.shape[1:])
        else:
            map1, map2 = fixed_point_maps(m[i], output_size)
            out[i] = cv2.remap(image, map1, map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=0).reshape(out.shape[1:])
    return out


def normalize_crops(crops: np.ndarray, mean: Sequence[float], std: Sequence[float],
                    channel_order: str = "rgb", normalize: bool = True) -> np.ndarray:
    """BGR uint8 crops (N, h, w, 3) -> (N, 3, h, w) float32 network input.

    ``channel_order`` is the order of the network's input planes; ``mean``/``std`` are given in that order.
    Computed as mmpose's data preprocessor: reorder channels, cast to float32, ``(x - mean) / std``.
    """
    if channel_order not in ("rgb", "bgr"):
        raise ValueError(f"channel_order: expected 'rgb' or 'bgr', got {channel_order!r}")
    c = crops[..., ::-1] if channel_order == "rgb" else crops
    x = np.ascontiguousarray(c.transpose(0, 3, 1, 2)).astype(np.float32)
    if normalize:
        x -= np.asarray(mean, np.float32).reshape(1, 3, 1, 1)
        x /= np.asarray(std, np.float32).reshape(1, 3, 1, 1)
    return x


@dataclass
class TopdownBatch:
    """The network input of one frame and the geometry to map results back.

    ``inputs`` (N, 3, h, w) float32; ``boxes`` (N, 4) the boxes used (the whole image if it fell back);
    ``centers``/``scales`` (N, 2) float32 (scales after the aspect fix, mmpose ``input_center``/``input_scale``);
    ``matrices`` (N, 2, 3) image -> crop; ``crops`` (N, h, w, 3) uint8 BGR (kept only on request);
    ``input_size`` (w, h).
    """

    inputs: np.ndarray
    boxes: np.ndarray
    centers: np.ndarray
    scales: np.ndarray
    matrices: np.ndarray
    input_size: SizeWH
    crops: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return int(self.boxes.shape[0])


def preprocess(image: np.ndarray, boxes: Union[np.ndarray, Sequence[Sequence[float]], None], input_size: SizeWH,
               mean: Sequence[float] = RTMPOSE_MEAN_RGB, std: Sequence[float] = RTMPOSE_STD_RGB, *,
               channel_order: str = "rgb", normalize: bool = True, padding: float = BBOX_PADDING,
               whole_image_if_empty: bool = False, warp_method: str = "fixed_point",
               keep_crops: bool = False) -> TopdownBatch:
    """``image`` (H, W, 3) BGR uint8 + ``boxes`` (N, 4) xyxy -> :class:`TopdownBatch` (mmpose top-down pipeline).

    With no boxes and ``whole_image_if_empty`` the whole image ``[0, 0, W, H]`` is used as one box (what
    ``inference_topdown`` does, :func:`pose3d_rt.boxes.whole_image_box`); otherwise the batch is empty.
    """
    image = check_frame(image, "image")
    b = _as_boxes(boxes)
    if b.shape[0] == 0 and whole_image_if_empty:  # docs/MMPOSE_BEHAVIOUR.md, Q7
        b = whole_image_box(image.shape[1], image.shape[0])
    w, h = int(input_size[0]), int(input_size[1])
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite or huge boxes: black crops (warp_crops)
        centers, scales = bbox_xyxy2cs(b, padding)
        scales = fix_aspect_ratio(scales, w / h)
        mats = warp_matrices(centers, scales, (w, h))
    crops = warp_crops(image, mats, (w, h), warp_method)
    inputs = normalize_crops(crops, mean, std, channel_order, normalize)
    return TopdownBatch(inputs, b, centers, scales, mats, (w, h), crops if keep_crops else None)


__all__ = [
    "BBOX_PADDING", "RTMPOSE_MEAN_RGB", "RTMPOSE_STD_RGB", "WARP_METHODS", "TopdownBatch", "bbox_xyxy2cs",
    "fix_aspect_ratio", "get_warp_matrix", "warp_matrices", "invert_affine", "apply_affine", "crop_to_image",
    "image_to_crop", "fixed_point_maps", "warp_crops", "normalize_crops", "preprocess",
]
