"""Frame visualisation: the demo's ``[2D | 3D]`` composite, drawn with OpenCV only (no Matplotlib).

Layout follows mmpose's ``Pose3dLocalVisualizer.add_datasample`` (docs/MMPOSE_BEHAVIOUR.md, Visualisation) with the panel bugs Q10-Q13
fixed:

- Q10/Q11: the 3D panel is drawn directly with OpenCV, ``S·n × S`` pixels (``S = max(H, W)``, ``n`` slots) for any
  ``n``; no figure buffer reshape, no Matplotlib version dependence;
- Q12: every 3D skeleton is masked with *its own* 2D scores (persons are sorted by track id with their scores);
- Q13: a joint is valid only if its 2D score passes the threshold **and** its 3D coordinates are finite.

Colours are the mmpose metadata triplets (:mod:`pose3d_rt.keypoint_sets`). mmpose draws them as RGB on an RGB canvas;
our canvas is BGR, so the BGR tuples of ``KeypointDataset.keypoint_colors``/``link_colors`` (the triplets reversed)
give the same on-screen colours.

Differences from mmpose, on purpose:

- keypoint alpha blending (``alpha``, 0.8 as in the demo) is done with **one** blend per person: its circles are
  drawn on a copy of their bounding region, which is blended once over the canvas, instead of one full-image
  ``addWeighted`` per circle. Only overlapping circles of one person differ (mmpose blends the later circle over
  the earlier, already blended one). Order as in mmpose: per person its circles, then its links; then all boxes;
  links and boxes are not blended;
- the 3D panel uses an orthographic virtual camera with Matplotlib's ``view_init`` conventions (same screen axes for
  the same ``azim``/``elev``) and the same metres per pixel on all axes (Matplotlib's ``'auto'`` aspect squeezes the
  z axis into a 4:4:3 box and rescales with the limits every frame); the view is centred on the mean of the valid
  joints and a ground grid replaces Matplotlib's axis panes;
- a 3D link is drawn when both endpoints are valid (score ``>= kpt_thr``, the joints' rule; mmpose uses ``>`` for
  links only); links and joints are painted far to near.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .errors import InputError
from .keypoint_sets import (
    H36M17,
    KeypointDataset,
    canonical_dataset_name,
    convert_keypoint_scores,
    get_dataset,
)
from .results import FrameResult

logger = logging.getLogger(__name__)

Color = Tuple[int, int, int]

#: mmcv ``imshow_bboxes`` colour ``'green'`` (the same tuple in RGB and BGR).
BOX_COLOR: Color = (0, 255, 0)
TITLE_COLOR: Color = (0, 0, 0)
GRID_FILL: Color = (242, 242, 242)
GRID_LINE: Color = (205, 205, 205)
GRID_BORDER: Color = (150, 150, 150)

#: Ground-grid cells per side of the ``axis_limit`` square.
GRID_CELLS = 6
#: The 3D view is scaled so that a box of ``axis_limit`` (x, y) by ``2 · Z_HEADROOM · axis_limit`` (z) around the
#: centre fits the slot below the title: a standing person's mean joint is ~0.9 m above the floor, a little more
#: than ``axis_limit / 2``, and the floor grid should stay inside the slot.
Z_HEADROOM = 0.6
#: Fraction of the half-slot used by the view (a small white margin).
FILL = 0.95
# Pixel coordinates are clipped to this range before int conversion (garbage input must not overflow OpenCV).
_COORD_LIMIT = 1.0e6


def view_basis(azimuth: float = 70.0, elev: float = 15.0) -> np.ndarray:
    """Camera axes of Matplotlib's ``view_init(elev, azim)`` (degrees), as the rows of a 3×3 rotation.

    Row 0 is the screen-right vector ``(-sin a, cos a, 0)``, row 1 the screen-up vector
    ``(-sin e cos a, -sin e sin a, cos e)`` and row 2 the unit vector from the scene centre towards the eye
    ``(cos e cos a, cos e sin a, sin e)`` (Matplotlib ``get_proj``/``view_transformation``: ``u = V × w``,
    ``v = w × u`` with ``V = +Z``). Right-handed: ``right × up = toward_eye``.
    """
    a = math.radians(float(azimuth))
    e = math.radians(float(elev))
    ca, sa, ce, se = math.cos(a), math.sin(a), math.cos(e), math.sin(e)
    return np.array(
        [[-sa, ca, 0.0],
         [-se * ca, -se * sa, ce],
         [ce * ca, ce * sa, se]],
        dtype=np.float64,
    )


def _project_basis(points: np.ndarray, centre: np.ndarray, basis: np.ndarray, scale: float,
                   origin: Tuple[float, float]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(u, v, depth)`` of ``(..., 3)`` points for a precomputed :func:`view_basis` (depth grows towards the eye)."""
    d = (np.asarray(points, np.float64) - np.asarray(centre, np.float64)) @ basis.T
    return origin[0] + scale * d[..., 0], origin[1] - scale * d[..., 1], d[..., 2]


def project(points_xyz: np.ndarray, centre: Sequence[float], *, azimuth: float = 70.0, elev: float = 15.0,
            scale: float = 1.0, origin: Tuple[float, float] = (0.0, 0.0)) -> Tuple[np.ndarray, np.ndarray]:
    """Orthographic projection of ``(..., 3)`` world points (X right, Y forward, Z up) to pixels ``(u, v)``.

    The virtual camera looks at ``centre`` from the direction of Matplotlib's ``view_init(elev, azim)``;
    ``centre`` maps to ``origin``, one metre is ``scale`` pixels, ``u`` grows to the right and ``v`` downwards
    (image convention): ``u = origin_u + scale · (p − c)·right``, ``v = origin_v − scale · (p − c)·up`` with the
    rows of :func:`view_basis`. Points on the viewing axis through ``centre`` map to ``origin``. Returns float64
    arrays of the points' leading shape.
    """
    u, v, _ = _project_basis(points_xyz, np.asarray(centre, np.float64).reshape(3), view_basis(azimuth, elev),
                             float(scale), (float(origin[0]), float(origin[1])))
    return u, v


def view_limits(keypoints_3d: np.ndarray, valid: np.ndarray, axis_limit: float = 1.7
                ) -> Tuple[np.ndarray, Tuple[float, float]]:
    """The demo's axis limits for one person: ``(centre (3,), (z_low, z_high))``.

    ``centre`` is the mean of the valid joints (zeros if none); x and y span ``centre ± axis_limit/2`` and z spans
    ``[min(0, z_c − axis_limit/2), z_c + axis_limit/2]`` (docs/MMPOSE_BEHAVIOUR.md, Visualisation).
    """
    kp = np.asarray(keypoints_3d, np.float64).reshape(-1, 3)
    ok = np.asarray(valid, bool).reshape(-1)
    centre = kp[ok].mean(axis=0) if ok.any() else np.zeros(3, np.float64)
    half = 0.5 * float(axis_limit)
    zc = float(centre[2])
    return centre, (min(0.0, zc - half), zc + half)


def ground_height(z_limits: Tuple[float, float]) -> float:
    """Height of the ground grid: the floor ``z = 0`` when it lies within the z limits, else the lower limit."""
    lo, hi = z_limits
    return 0.0 if lo <= 0.0 <= hi else float(lo)


def pad_offsets(height: int, width: int, target_height: int, target_width: int) -> Tuple[int, int, int, int]:
    """White padding ``(top, bottom, left, right)`` centring an ``height × width`` panel in the target size.

    ``top = ⌊Δh/2⌋``, ``bottom = Δh − top`` (the odd pixel goes to the bottom), the same for left/right, with
    ``Δ = max(target − size, 0)`` (docs/MMPOSE_BEHAVIOUR.md, Visualisation).
    """
    dh = max(int(target_height) - int(height), 0)
    dw = max(int(target_width) - int(width), 0)
    return dh // 2, dh - dh // 2, dw // 2, dw - dw // 2


def _title_height(size: int) -> int:
    """Height in pixels of the title strip at the top of a ``size × size`` slot."""
    return max(14, int(round(0.06 * size)))


def _slot_camera(size: int, basis: np.ndarray, axis_limit: float) -> Tuple[float, Tuple[float, float]]:
    """``(pixels per metre, slot pixel of the view centre)`` for a ``size × size`` slot.

    The view centre is the slot centre; the scale fits the nominal view box (x, y: ``±axis_limit/2``,
    z: ``±Z_HEADROOM·axis_limit``) horizontally into the slot and vertically between the title strip and the
    bottom edge, with a ``FILL`` margin.
    """
    half = 0.5 * float(axis_limit)
    zh = Z_HEADROOM * float(axis_limit)
    corners = np.array([[x, y, z] for x in (-half, half) for y in (-half, half) for z in (-zh, zh)])
    cu, cv, _ = _project_basis(corners, np.zeros(3), basis, 1.0, (0.0, 0.0))
    avail_v = 0.5 * size - _title_height(size)
    scale = FILL * min(0.5 * size / max(float(np.abs(cu).max()), 1e-9), avail_v / max(float(np.abs(cv).max()), 1e-9))
    return float(scale), (0.5 * size, 0.5 * size)


def _dataset_tables(name: str) -> Tuple[str, KeypointDataset]:
    """``(source name for score conversion, colour/skeleton tables)`` of a 2D keypoint set."""
    src = canonical_dataset_name(name)  # InputError for unknown names
    table = "coco" if src == "coco_wholebody" else src  # wholebody: its first 17 joints are COCO-17
    try:
        ds = get_dataset(table)
    except KeyError:
        raise InputError(f"dataset_2d={name!r}: pose3d_rt.keypoint_sets has no colour/skeleton table for {src!r} "
                         f"(drawable: coco, coco_wholebody (body joints), h36m)") from None
    return src, ds


def _buffer(out: Optional[np.ndarray], shape: Tuple[int, ...]) -> np.ndarray:
    """``out`` if it is a writable C-contiguous uint8 array of ``shape``, else a new (uninitialised) one."""
    if (out is not None and isinstance(out, np.ndarray) and out.shape == tuple(shape) and out.dtype == np.uint8
            and out.flags.c_contiguous and out.flags.writeable):
        return out
    if out is not None:
        logger.debug("render(out=...): buffer %s %s does not fit %s uint8; allocating", getattr(out, "shape", None),
                     getattr(out, "dtype", None), tuple(shape))
    return np.empty(shape, np.uint8)


@dataclass
class _Layout:
    """Everything that depends only on the frame size and the view settings (computed once per size)."""

    key: tuple
    height: int
    width: int
    size: int  # S = max(H, W)
    slots: int  # n
    out_w: int
    out_h: int
    top: int
    left: int
    scale: float  # pixels per metre in a 3D slot
    origin: Tuple[float, float]  # slot pixel of the view centre
    basis: np.ndarray  # view_basis rows
    # Ground grid in slot pixels (int32) for a ground plane through the view centre's height; per frame it is
    # only shifted vertically (orthographic camera): inner lines (Li, 2, 2), border lines (4, 2, 2), square (4, 2).
    grid_inner: np.ndarray
    grid_border: np.ndarray
    grid_quad: np.ndarray
    joint_radius: int
    line_thickness: int
    titles: List[np.ndarray]  # per slot, a (title_h, S, 3) white patch with "Prediction (idx)"


@dataclass
class Visualizer:
    """Draws a :class:`~pose3d_rt.results.FrameResult` over its frame: ``[2D | 3D]`` composite, BGR uint8.

    - ``kpt_thr``: a keypoint (2D) or joint (3D, through its H36M-converted 2D score) is drawn if its score is
      ``>= kpt_thr``; ``radius`` / ``thickness``: 2D circle radius and line/box width in pixels.
    - ``num_instances``: 3D slots ``n`` (persons by ascending track id, the first ``n``; missing persons leave their
      slot white). ``0`` draws no 3D panel. Negative means "as many as the first rendered frame with 3D results
      has" (at least 1) and is then frozen, so that a video keeps one size (mmpose's rule, docs/MMPOSE_BEHAVIOUR.md, Q21);
      :meth:`output_size` is only known after that frame.
    - ``axis_azimuth`` / ``axis_elev``: the virtual camera, degrees, as Matplotlib's ``view_init(elev, azim)``;
      ``axis_limit``: metres of the x/y extent (and nominal z extent) shown per slot.
    - ``dataset_2d``: keypoint set of ``keypoints_2d`` (``coco``, ``coco_wholebody``'s body joints, ``h36m``).
    - ``draw_bbox`` green person boxes; ``show_3d=False`` returns the 2D panel alone.
    - ``alpha``: opacity of the 2D keypoint circles (mmpose 0.8; ``1.0`` draws them opaque).
    """

    kpt_thr: float = 0.3
    radius: int = 3
    thickness: int = 1
    num_instances: int = 1
    axis_azimuth: float = 70.0
    axis_elev: float = 15.0
    axis_limit: float = 1.7
    dataset_2d: str = "coco"
    draw_bbox: bool = True
    show_3d: bool = True
    alpha: float = 0.8
    _layout: Optional[_Layout] = field(default=None, init=False, repr=False, compare=False)
    _tables: Optional[tuple] = field(default=None, init=False, repr=False, compare=False)
    _resolved_n: Optional[int] = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (self.axis_limit > 0 and math.isfinite(self.axis_limit)):
            raise ValueError(f"axis_limit must be a positive number of metres, got {self.axis_limit}")
        if not (0.0 <= self.alpha <= 1.0):
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        self._dataset()  # fail early on an unknown 2D keypoint set

    # ------------------------------------------------------------------ configuration helpers
    def _dataset(self) -> Tuple[str, KeypointDataset]:
        if self._tables is None or self._tables[0] != self.dataset_2d:
            self._tables = (self.dataset_2d, *_dataset_tables(self.dataset_2d))
        return self._tables[1], self._tables[2]

    def _slots(self, result: Optional[FrameResult] = None) -> Optional[int]:
        """Number of 3D slots; ``None`` while a negative ``num_instances`` is not yet resolved."""
        if self.num_instances >= 0:
            return int(self.num_instances)
        if self._resolved_n is None and result is not None and result.keypoints_3d is not None:
            self._resolved_n = max(1, len(result))
            logger.info("num_instances < 0: %d 3D slot(s), from the first frame (kept for the whole run)",
                        self._resolved_n)
        return self._resolved_n

    def output_size(self, width: int, height: int, has_3d: bool = True) -> Tuple[int, int]:
        """``(width, height)`` of :meth:`render`'s output for a ``width × height`` frame.

        With the 3D panel (``show_3d``, ``num_instances != 0`` and results carrying ``keypoints_3d``, i.e. a lifter
        is configured: pass ``has_3d=False`` otherwise) it is ``(2·S·n, S)`` with ``S = max(width, height)``;
        without it, the frame size. Raises ValueError for a negative ``num_instances`` before the first render.
        """
        w, h = int(width), int(height)
        if w <= 0 or h <= 0:
            raise ValueError(f"frame size must be positive, got {w}x{h}")
        if not (self.show_3d and has_3d) or self.num_instances == 0:
            return w, h
        n = self._slots()
        if n is None:
            raise ValueError("num_instances < 0: the number of 3D slots is fixed by the first rendered frame")
        s = max(w, h)
        return 2 * s * n, s

    def slot_camera(self, width: int, height: int) -> Tuple[float, Tuple[float, float]]:
        """The virtual camera of a 3D slot for a ``width × height`` frame: ``(pixels per metre, (u0, v0))``.

        A person's joints land at ``project(joints, centre, azimuth=axis_azimuth, elev=axis_elev, scale=..,
        origin=(u0, v0))`` inside its ``S × S`` slot, ``centre`` being the mean of its valid joints.
        """
        s = max(int(width), int(height))
        return _slot_camera(s, view_basis(self.axis_azimuth, self.axis_elev), self.axis_limit)

    def _get_layout(self, height: int, width: int, n: int) -> _Layout:
        key = (height, width, n, float(self.axis_azimuth), float(self.axis_elev), float(self.axis_limit))
        lay = self._layout
        if lay is not None and lay.key == key:
            return lay
        s = max(height, width)
        top, _, left, _ = pad_offsets(height, width, s, s * n)
        basis = view_basis(self.axis_azimuth, self.axis_elev)
        title_h = _title_height(s)
        scale, origin = _slot_camera(s, basis, self.axis_limit)
        half = 0.5 * self.axis_limit
        # Ground grid, relative to the view centre's height (shifted vertically per frame).
        ticks = np.linspace(-half, half, GRID_CELLS + 1)
        ends = np.array([[[t, -half, 0.0], [t, half, 0.0]] for t in ticks]
                        + [[[-half, t, 0.0], [half, t, 0.0]] for t in ticks], np.float64)  # (L, 2, 3)
        gu, gv, _ = _project_basis(ends, np.zeros(3), basis, scale, origin)
        grid = np.rint(np.stack([gu, gv], axis=-1)).astype(np.int32)  # (L, 2, 2)
        border = np.zeros(len(ends), bool)
        border[[0, GRID_CELLS, GRID_CELLS + 1, 2 * GRID_CELLS + 1]] = True
        quad = np.array([[-half, -half, 0.0], [half, -half, 0.0], [half, half, 0.0], [-half, half, 0.0]])
        qu, qv, _ = _project_basis(quad, np.zeros(3), basis, scale, origin)
        grid_quad = np.rint(np.stack([qu, qv], axis=-1)).astype(np.int32)
        titles = [self._title_patch(f"Prediction ({i})", title_h, s) for i in range(n)]
        lay = _Layout(key=key, height=height, width=width, size=s, slots=n, out_w=2 * s * n, out_h=s, top=top,
                      left=left, scale=float(scale), origin=origin, basis=basis, grid_inner=grid[~border],
                      grid_border=grid[border], grid_quad=grid_quad, joint_radius=max(2, int(round(s / 160))),
                      line_thickness=max(1, int(round(s / 320))), titles=titles)
        logger.debug("visualizer layout for %dx%d, %d slot(s): output %dx%d, %.1f px/m", width, height, n,
                     lay.out_w, lay.out_h, lay.scale)
        self._layout = lay
        return lay

    @staticmethod
    def _title_patch(text: str, title_h: int, s: int) -> np.ndarray:
        patch = np.full((title_h, s, 3), 255, np.uint8)
        font = cv2.FONT_HERSHEY_SIMPLEX
        thick = max(1, int(round(title_h / 30)))
        fs = cv2.getFontScaleFromHeight(font, max(6, int(round(0.5 * title_h))), thick)
        (tw, th), _ = cv2.getTextSize(text, font, fs, thick)
        org = (max(0, (s - tw) // 2), int(round(0.5 * (title_h + th))))
        cv2.putText(patch, text, org, font, fs, TITLE_COLOR, thick, cv2.LINE_AA)
        return patch

    # ------------------------------------------------------------------ rendering
    def render(self, frame_bgr: np.ndarray, result: FrameResult, out: Optional[np.ndarray] = None) -> np.ndarray:
        """The composite for one frame: the 2D panel, white-padded to ``S·n × S``, then the 3D panel
        (``2·S·n × S`` in all; see :meth:`output_size`), or the 2D panel alone without 3D. BGR uint8;
        ``frame_bgr`` is not modified.

        Without ``out`` a new array is returned. ``out``, a C-contiguous uint8 array of the output's shape, is drawn
        into (every pixel is rewritten) and returned: reusing one buffer for a stream saves the page faults of a
        fresh multi-megabyte allocation per frame (about 0.3-0.6 ms for a 2560×640 composite on this machine).
        A buffer of another shape is ignored (a new array is returned).
        """
        frame = np.asarray(frame_bgr)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame must be an (H, W, 3) uint8 BGR image, got {frame.dtype} {frame.shape}")
        h, w = frame.shape[:2]
        src, ds = self._dataset()
        n = self._slots(result) if self.show_3d else 0
        if not n or result.keypoints_3d is None:
            canvas = _buffer(out, frame.shape)
            canvas[...] = frame
            self._draw_2d(canvas, result, ds)
            return canvas
        lay = self._get_layout(h, w, n)
        s = lay.size
        canvas = _buffer(out, (lay.out_h, lay.out_w, 3))
        sn = s * n
        top, left = lay.top, lay.left
        canvas[:, sn:] = 255
        canvas[:top, :sn] = 255
        canvas[top + h:, :sn] = 255
        canvas[top:top + h, :left] = 255
        canvas[top:top + h, left + w:sn] = 255
        view2d = canvas[top:top + h, left:left + w]
        view2d[...] = frame
        self._draw_2d(view2d, result, ds)
        self._draw_3d(canvas[:, sn:], result, src, lay)
        return canvas

    def _draw_2d(self, canvas: np.ndarray, result: FrameResult, ds: KeypointDataset) -> None:
        """Per person its keypoints (blended), then its links; then all boxes. Onto ``canvas`` (the frame), in place."""
        n = len(result)
        if n == 0:
            return
        h, w = canvas.shape[:2]
        thick = max(1, int(self.thickness))
        k = ds.num_keypoints
        if result.keypoints_2d.shape[1] < k:
            raise InputError(f"keypoints_2d has {result.keypoints_2d.shape[1]} joints, dataset_2d "
                             f"{self.dataset_2d!r} needs {k}")
        kp = result.keypoints_2d[:, :k]
        finite = np.isfinite(kp).all(axis=-1)
        # int() of the coordinates (truncation towards zero), garbage clipped so that OpenCV cannot overflow.
        kpi = np.trunc(np.clip(np.where(finite[..., None], kp, 0.0), -_COORD_LIMIT, _COORD_LIMIT)).astype(np.int64)
        above = (result.scores_2d[:, :k] >= float(self.kpt_thr)) & finite
        inside = (kpi[..., 0] > 0) & (kpi[..., 0] < w) & (kpi[..., 1] > 0) & (kpi[..., 1] < h)
        ok = above & inside
        sk = ds.skeleton_array
        draw = (ok[:, sk[:, 0]] & ok[:, sk[:, 1]]).tolist()  # (n, L): both ends inside, both scores >= kpt_thr
        sk_l = sk.tolist()
        link_colors = ds.link_colors
        for p in range(n):
            if above[p].any():
                self._draw_circles(canvas, kpi[p], above[p], ds.keypoint_colors)
            pts = kpi[p].tolist()
            for li, d in enumerate(draw[p]):
                if d:
                    a, b = sk_l[li]
                    cv2.line(canvas, pts[a], pts[b], link_colors[li], thick)
        if self.draw_bbox:
            boxes = result.boxes
            good = np.isfinite(boxes).all(axis=1)
            bi = np.clip(boxes[good], -_COORD_LIMIT, _COORD_LIMIT).astype(np.int32).tolist()
            for x1, y1, x2, y2 in bi:
                cv2.rectangle(canvas, (x1, y1), (x2, y2), BOX_COLOR, thick)

    def _draw_circles(self, canvas: np.ndarray, kpi: np.ndarray, mask: np.ndarray, colors: Sequence[Color]) -> None:
        """Filled circles at one person's ``kpi[mask]``. For ``alpha < 1`` they are drawn on a copy of their
        bounding region, which is then blended once over the canvas (mmpose blends every circle separately, which
        only differs where two circles of the person overlap)."""
        alpha = float(self.alpha)
        if alpha <= 0.0:
            return
        r = max(0, int(self.radius))
        pts = kpi[mask]  # (m, 2)
        ks = np.flatnonzero(mask).tolist()
        if alpha >= 1.0:
            for (x, y), kk in zip(pts.tolist(), ks):
                cv2.circle(canvas, (x, y), r, colors[kk], -1)
            return
        h, w = canvas.shape[:2]
        lo = pts.min(axis=0) - (r + 1)
        hi = pts.max(axis=0) + (r + 2)
        x0, y0 = max(0, int(lo[0])), max(0, int(lo[1]))
        x1, y1 = min(w, int(hi[0])), min(h, int(hi[1]))
        if x1 <= x0 or y1 <= y0:
            return  # every circle is outside the frame
        roi = canvas[y0:y1, x0:x1]
        over = roi.copy()
        for (x, y), kk in zip(pts.tolist(), ks):
            cv2.circle(over, (x - x0, y - y0), r, colors[kk], -1)
        cv2.addWeighted(over, alpha, roi, 1.0 - alpha, 0.0, dst=roi)

    def _draw_3d(self, panel: np.ndarray, result: FrameResult, src: str, lay: _Layout) -> None:
        """The slots of the 3D panel (already white) from ``result.keypoints_3d``, in place.

        Persons are sorted by track id (stable) together with their own 2D scores (Q12), the first ``n`` drawn.
        """
        kp3 = result.keypoints_3d
        if kp3 is None or len(result) == 0:
            return
        order = np.argsort(result.track_ids, kind="stable")[: lay.slots]
        sc3 = convert_keypoint_scores(result.scores_2d[order], src)  # H36M order, derived joints: mean score
        pts = kp3[order].astype(np.float64)
        valid = (sc3 >= float(self.kpt_thr)) & np.isfinite(pts).all(axis=-1)  # (m, 17): Q13 fixed
        s = lay.size
        for slot in range(len(order)):
            view = panel[:, slot * s:(slot + 1) * s]
            title = lay.titles[slot]
            view[: title.shape[0]] = title
            self._draw_slot(view, pts[slot], valid[slot], lay)

    def _draw_slot(self, view: np.ndarray, kp: np.ndarray, valid: np.ndarray, lay: _Layout) -> None:
        """One person: ground grid, then links and joints (far to near) of the valid joints."""
        centre, zlim = view_limits(kp, valid, self.axis_limit)
        # The grid was projected for a ground plane at the centre's height: shift it to the ground's height.
        dv = int(round(-lay.scale * (ground_height(zlim) - float(centre[2])) * float(lay.basis[1, 2])))
        dv = max(-100_000, min(100_000, dv))
        shift = np.array([0, dv], np.int32)
        cv2.fillConvexPoly(view, lay.grid_quad + shift, GRID_FILL)
        cv2.polylines(view, lay.grid_inner + shift, False, GRID_LINE, 1)
        cv2.polylines(view, lay.grid_border + shift, False, GRID_BORDER, 1)
        if not valid.any():
            return
        safe = np.where(valid[:, None], kp, centre)  # invalid joints are never drawn; keep them finite
        u, v, depth = _project_basis(safe, centre, lay.basis, lay.scale, lay.origin)
        uv = np.rint(np.clip(np.stack([u, v], axis=1), -_COORD_LIMIT, _COORD_LIMIT)).astype(np.int64).tolist()
        sk = H36M17.skeleton_array
        links = np.flatnonzero(valid[sk[:, 0]] & valid[sk[:, 1]])
        if links.size:
            link_depth = depth[sk[links, 0]] + depth[sk[links, 1]]
            link_colors = H36M17.link_colors
            sk_l = sk.tolist()
            for li in links[np.argsort(link_depth, kind="stable")].tolist():
                a, b = sk_l[li]
                cv2.line(view, uv[a], uv[b], link_colors[li], lay.line_thickness, cv2.LINE_AA)
        joints = np.flatnonzero(valid)
        kcolors = H36M17.keypoint_colors
        for j in joints[np.argsort(depth[joints], kind="stable")].tolist():
            cv2.circle(view, uv[j], lay.joint_radius, kcolors[j], -1, cv2.LINE_AA)


__all__ = ["Visualizer", "project", "view_basis", "view_limits", "ground_height", "pad_offsets", "BOX_COLOR"]
