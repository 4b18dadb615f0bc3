"""Synthetic inputs of the benchmarks: frames and a video of walking stick figures, 2D tracks for the lifter,
person boxes for the 2D stage, and a :class:`~pose3d_rt.results.FrameResult` of standing persons for the
visualizer. Deterministic for a given seed."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Tuple

import numpy as np
from pose3d_rt.errors import InputError
from pose3d_rt.results import FrameResult

from benchmarks.fakes import STANDING_COCO_OFFSETS, STANDING_H36M_3D, TEMPLATE_CROP_XY

log = logging.getLogger(__name__)


def _draw_person(img: np.ndarray, cx: float, cy: float, height: float, phase: float, color) -> None:
    import cv2

    s = height / 8.0
    th = max(2, int(s * 0.6))
    head = (int(cx), int(cy - 3.4 * s))
    neck, hip = (cx, cy - 2.6 * s), (cx, cy + 0.3 * s)
    swing = np.sin(phase) * 1.2 * s

    def p(x, y):
        return int(round(x)), int(round(y))

    cv2.circle(img, head, max(2, int(0.7 * s)), color, -1, cv2.LINE_AA)
    cv2.line(img, p(*neck), p(*hip), color, th + 2, cv2.LINE_AA)
    for sgn in (-1, 1):
        cv2.line(img, p(*neck), p(cx + sgn * swing, cy - 0.4 * s), color, th, cv2.LINE_AA)  # arms
        cv2.line(img, p(*hip), p(cx - sgn * swing, cy + 3.6 * s), color, th, cv2.LINE_AA)  # legs


def synthetic_frame(t: int, size: Tuple[int, int] = (640, 480), persons: int = 3, seed: int = 0) -> np.ndarray:
    """Frame ``t`` of the synthetic video: a gradient background, noise and ``persons`` stick figures walking."""
    w, h = size
    rng = np.random.default_rng(seed * 100003 + t)
    y = np.linspace(60, 160, h, dtype=np.float32)[:, None]
    x = np.linspace(0, 40, w, dtype=np.float32)[None, :]
    base = (y + x)[..., None] + np.array([0, 10, 25], np.float32)
    img = np.clip(base + rng.normal(0, 4, (h, w, 1)), 0, 255).astype(np.uint8)
    for p in range(persons):
        phase = 2 * np.pi * t / 40.0 + p * 1.3
        cx = w * (0.15 + 0.7 * (p + 0.5) / max(persons, 1)) + 0.08 * w * np.sin(2 * np.pi * t / 100.0 + p)
        height = h * (0.55 + 0.1 * (p % 3) / 2)
        color = (int(40 + 60 * p) % 255, int(90 + 50 * p) % 255, int(200 - 40 * p) % 255)
        _draw_person(img, cx, h * 0.5, height, phase, color)
    return img


def make_synthetic_video(directory: os.PathLike, frames: int = 100, size: Tuple[int, int] = (640, 480),
                         persons: int = 3, fps: float = 20.0, seed: int = 0) -> Path:
    """Write the synthetic video into ``directory`` (MJPG .avi; a folder of PNGs if no encoder works)."""
    import cv2

    if frames < 1:
        raise InputError(f"the synthetic video needs >= 1 frame, got {frames}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "bench_synthetic.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), float(fps), tuple(int(v) for v in size))
    if writer.isOpened():
        try:
            for t in range(frames):
                writer.write(synthetic_frame(t, size, persons, seed))
        finally:
            writer.release()
        cap = cv2.VideoCapture(str(path))
        ok = cap.isOpened() and cap.read()[0]
        cap.release()
        if ok:
            return path
    log.info("no MJPG encoder: writing the synthetic video as PNG frames")
    folder = directory / "bench_synthetic_frames"
    folder.mkdir(exist_ok=True)
    for t in range(frames):
        cv2.imwrite(str(folder / f"{t:06d}.png"), synthetic_frame(t, size, persons, seed))
    return folder


def synthetic_tracks(persons: int, frames: int, frame_wh: Tuple[int, int], seed: int = 0
                     ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2D inputs for the lifter stage: ``(T, P, 17, 2)`` COCO keypoints (pixels), ``(T, P, 17)`` scores and
    ``(T, P, 4)`` boxes of ``persons`` walking figures."""
    w, h = frame_wh
    rng = np.random.default_rng(seed)
    t = np.arange(frames, dtype=np.float32)[:, None]
    p = np.arange(persons, dtype=np.float32)[None, :]
    cx = w * (0.15 + 0.7 * (p + 0.5) / max(persons, 1)) + 0.08 * w * np.sin(2 * np.pi * t / 100.0 + p)
    cy = np.full_like(cx, h * 0.5)
    scale = 0.6 * h / 256.0
    tmpl = (TEMPLATE_CROP_XY - np.array([96.0, 128.0], np.float32)) * scale
    kp = tmpl[None, None] + np.stack([cx, cy], -1)[:, :, None, :]
    kp = (kp + rng.normal(0, 1.5, kp.shape)).astype(np.float32)
    scores = rng.uniform(0.5, 1.0, kp.shape[:3]).astype(np.float32)
    boxes = np.concatenate([kp.min(axis=2), kp.max(axis=2)], axis=-1).astype(np.float32)
    return kp, scores, boxes


def person_boxes(count: int, frame_wh: Tuple[int, int]) -> np.ndarray:
    """``count`` person-sized xyxy boxes spread over a frame (the crops of the 2D stage)."""
    w, h = frame_wh
    bw, bh = 0.18 * w, 0.6 * h
    cx = w * (0.1 + 0.8 * (np.arange(count) + 0.5) / max(count, 1))
    cy = h * (0.45 + 0.1 * (np.arange(count) % 2))
    return np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1).clip(0, [w, h, w, h]).astype(np.float32)



def synthetic_result(persons: int, width: int = 640, height: int = 480, seed: int = 0) -> FrameResult:
    """A FrameResult with ``persons`` standing people spread over the frame, all keypoints visible."""
    rng = np.random.default_rng(seed)
    xs = (np.arange(persons) + 0.5) * width / max(persons, 1)
    kp2 = np.stack([STANDING_COCO_OFFSETS + [x, 0.45 * height] + rng.normal(0, 1.5, STANDING_COCO_OFFSETS.shape)
                    for x in xs]).astype(np.float32)
    boxes = np.concatenate([kp2.min(axis=1) - 10, kp2.max(axis=1) + 10], axis=1)
    scores = rng.uniform(0.5, 1.0, (persons, 17)).astype(np.float32)
    kp3 = np.stack([STANDING_H36M_3D + [0.6 * i, 0.1 * i, 0.0] + rng.normal(0, 0.01, STANDING_H36M_3D.shape)
                    for i in range(persons)])
    return FrameResult(frame_index=0, boxes=boxes, scores=np.ones(persons), track_ids=np.arange(persons)[::-1].copy(),
                       keypoints_2d=kp2, scores_2d=scores, keypoints_3d=kp3.astype(np.float32),
                       image_size=(width, height))


__all__ = ["synthetic_frame", "make_synthetic_video", "synthetic_tracks", "person_boxes", "synthetic_result"]
