"""The Inferencer's 2D stage and id rule, as mmpose's ``Pose2DInferencer`` / ``Pose3DInferencer`` run them.

docs/spec/inferencer.md §3 (mmpose 1.3.2 ``pose2d_inferencer.py: preprocess_single``,
``pose3d_inferencer.py: preprocess_single``):

1. :func:`select_boxes`: the detector's boxes with ``label in cat_ids`` and ``score > bbox_thr`` (strict, float32),
   then mmpose's box NMS (``evaluation.functional.nms``: +1-pixel areas, ``overlap <= nms_thr`` kept, descending
   score; :func:`pose3d_rt.boxes.nms` with ``offset=1, ties="last"``); no box left (or no detector) -> the whole
   image ``[0, 0, w, h]`` with score 1. The boxes keep their real detector scores (the demo writes 1).
2. :func:`fresh_track_ids`: I1 -- the Inferencer's tracker compares against ``results_pose2d_last``, a list that
   never receives an element, so nothing ever matches: every person of every frame with at least 3 keypoints of
   non-zero y gets ``next_id`` and ``next_id`` grows by one per person; the others take the "delete" branch (I4):
   id -1, their keypoints' y set to -10 and their box multiplied by 0, in place, before lifting.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from ..boxes import nms, whole_image_box
from ..rtmdet import Detections

__all__ = ["Boxes2D", "select_boxes", "fresh_track_ids", "MIN_KEYPOINTS_FOR_ID"]

#: the Inferencer's (and demo's) new-id rule: at least this many keypoints with a non-zero y
MIN_KEYPOINTS_FOR_ID = 3


@dataclass
class Boxes2D:
    """The person boxes of one frame, in the order the Inferencer estimates them: ``boxes`` (n, 4) float32 xyxy,
    ``scores`` (n,) float32 (detector scores, or 1 for the whole-image box); ``whole_image`` when it is the
    fallback box."""

    boxes: np.ndarray
    scores: np.ndarray
    whole_image: bool = False


def select_boxes(dets: Optional[Detections], image_wh: Tuple[int, int], cat_ids: Sequence[int], bbox_thr: float,
                 nms_thr: float) -> Boxes2D:
    """The Inferencer's person boxes from the detector's output (``None``: no detector, ``--det-model
    whole_image``). See the module docstring."""
    w, h = int(image_wh[0]), int(image_wh[1])
    if dets is not None and len(dets):
        keep = np.isin(dets.labels, np.asarray(list(cat_ids), np.int64)) & (dets.scores > np.float32(bbox_thr))
        boxes, scores = dets.boxes[keep], dets.scores[keep]
        order = nms(boxes, scores, nms_thr, offset=1, ties="last")
        if order.size:
            return Boxes2D(boxes[order], scores[order])
    return Boxes2D(whole_image_box(w, h), np.ones(1, np.float32), whole_image=True)


def fresh_track_ids(keypoints: np.ndarray, boxes: np.ndarray, next_id: int) -> Tuple[np.ndarray, int]:
    """Track ids under I1 (every person unmatched) and the "delete" branch (I4), in place.

    ``keypoints`` (n, K, 2) and ``boxes`` (n, 4) float32 are modified in place for the deleted persons (y = -10,
    box x 0), as mmpose does before the keypoint conversion. Returns the ids (n,) int64 and the new ``next_id``.
    """
    kp = np.asarray(keypoints)
    ok = np.count_nonzero(kp[:, :, 1], axis=1) >= MIN_KEYPOINTS_FOR_ID
    ids = np.full(len(kp), -1, np.int64)
    ids[ok] = next_id + np.arange(int(ok.sum()), dtype=np.int64)
    if not ok.all():
        keypoints[~ok, :, 1] = -10
        boxes[~ok] *= 0
    return ids, next_id + int(ok.sum())
