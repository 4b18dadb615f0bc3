"""``mode="mmpose"`` of ``pose3d-rt inferencer``: mmpose's ``Pose3DInferencer`` (``--pose3d human3d``) per input.

One call of :class:`InferencerMMPose` is one ``preprocess_single`` + ``forward`` of the Inferencer
(docs/spec/inferencer.md §3-4), number for number:

1. the 2D stage (:mod:`.stage2d`): detector boxes filtered by ``cat_ids`` and ``bbox_thr``, the +1-pixel NMS, the
   whole-image box when nothing is left; RTMPose (flip test) on the BGR frame -- images too (the Inferencer reads
   files as BGR; unlike the demo's Q6);
2. fresh ids per person and frame (I1) and the "delete" branch (I4); images restart at id 0 (I10: the caller
   calls :meth:`InferencerMMPose.reset` per image);
3. COCO -> H36M, then the box canonicalisation (``lifter.md`` §5.4, :func:`pose3d_rt.lifters.codec.norm_pose_2d`)
   unless ``disable_norm_pose_2d`` (what mmpose 1.3.2 does: the fixtures' ``video_default`` run is canonicalised,
   ``video_nonorm`` is not; a later mmpose commit inverts the test, ``if disable_norm_pose_2d:``, which the
   fixtures rule out);
4. the lift of each person's single frame (T = 1, I2) with the constant confidence channel (I3), flip test and the
   x4-factor decode (I6), with the camera ``(w, h)`` in the right order
   (:func:`pose3d_rt.lifters.motionbert.lift_single_frames`), then the axis swap and per-person rebase;
5. persons sorted by track id (stable; a deleted person's -1 comes first).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError
from ..frames import check_frame
from ..keypoint_sets import convert_keypoint_definition
from ..lifters.codec import H36M_BBOX_CENTER, H36M_BBOX_SCALE, norm_pose_2d
from ..results import FrameResult
from .stage2d import Boxes2D, fresh_track_ids, select_boxes

log = logging.getLogger(__name__)

__all__ = ["InferencerOptions", "InferencerMMPose"]


@dataclass
class InferencerOptions:
    """The Inferencer's call arguments that change numbers (names as ``inferencer_demo.py``'s flags)."""

    bbox_thr: float = 0.3
    nms_thr: float = 0.3
    det_cat_ids: Tuple[int, ...] = (0,)
    disable_norm_pose_2d: bool = False
    disable_rebase_keypoint: bool = False
    lifter_flip_test: bool = True  # the MotionBERT configs' test_cfg.flip_test
    bbox_center: Tuple[float, float] = H36M_BBOX_CENTER  # the lifter dataset's stats_info
    bbox_scale: float = H36M_BBOX_SCALE

    def validate(self) -> None:
        for name in ("bbox_thr", "nms_thr"):
            value = getattr(self, name)
            if not 0.0 <= float(value) <= 1.0:
                raise InputError(f"--{name.replace('_', '-')}: must be in [0, 1], got {value}")
        if not len(self.det_cat_ids):
            raise InputError("--det-cat-ids: give at least one class id")


class InferencerMMPose:
    """The Inferencer's per-input processing on engines (see the module docstring).

    ``detector`` is a :class:`~pose3d_rt.rtmdet.Detector` or None (``--det-model whole_image``: the whole image is
    the person box); ``pose2d`` a :class:`~pose3d_rt.rtmpose.estimator.PoseEstimator` (the caller sets its flip
    test and the fixed-point warp); ``lifter`` the MotionBERT engine (or any model
    :func:`~pose3d_rt.lifters.motionbert.lift_single_frames` takes).
    """

    mode = "mmpose"

    def __init__(self, detector: Any, pose2d: Any, lifter: Any, options: Optional[InferencerOptions] = None) -> None:
        self.detector = detector
        self.pose2d = pose2d
        self.lifter = lifter
        self.options = options or InferencerOptions()
        self.options.validate()
        self.keypoint_dataset = getattr(pose2d, "dataset_name", "coco")
        self.next_id = 0

    def reset(self) -> None:
        """A new input for the Inferencer's buffer: ids restart at 0 (every image, I10; a new video)."""
        self.next_id = 0

    def boxes(self, frame: np.ndarray) -> Boxes2D:
        """The person boxes of ``frame`` (BGR) the 2D model will see (:func:`.stage2d.select_boxes`)."""
        h, w = frame.shape[:2]
        dets = self.detector(frame) if self.detector is not None else None
        opt = self.options
        return select_boxes(dets, (w, h), opt.det_cat_ids, opt.bbox_thr, opt.nms_thr)

    def lift(self, keypoints_coco: np.ndarray, boxes: np.ndarray, image_wh: Tuple[int, int]) -> np.ndarray:
        """3D (n, 17, 3) of the persons' 2D keypoints (already through the id rule), as the Inferencer lifts them."""
        from ..lifters.motionbert import lift_single_frames

        opt = self.options
        kp = convert_keypoint_definition(keypoints_coco, self.keypoint_dataset, "h36m")[..., :2]
        if not opt.disable_norm_pose_2d:
            kp = norm_pose_2d(kp, boxes, opt.bbox_center, opt.bbox_scale)
        return lift_single_frames(self.lifter, kp.astype(np.float32, copy=False), image_wh, mode="mmpose",
                                  flip=opt.lifter_flip_test, postprocess=True,
                                  rebase=not opt.disable_rebase_keypoint)

    def __call__(self, frame: np.ndarray, frame_index: int = 0,
                 camera_wh: Optional[Sequence[int]] = None) -> FrameResult:
        """One input: ``frame`` (BGR uint8), its 0-based index, the camera ``(w, h)`` (default: the frame's; the
        Inferencer takes a video's from its reader) -> the :class:`FrameResult` in the Inferencer's order (ascending
        track id), 3D post-processed. The 2D fields are what the Inferencer shows in its 2D panel (I4 applied)."""
        frame = check_frame(frame, f"frame {frame_index}")
        h, w = frame.shape[:2]
        wh = (int(camera_wh[0]), int(camera_wh[1])) if camera_wh is not None else (w, h)
        sel = self.boxes(frame)
        poses = self.pose2d(frame, sel.boxes)
        kp = np.array(poses.keypoints, np.float32)
        boxes = np.array(sel.boxes, np.float32)
        ids, self.next_id = fresh_track_ids(kp, boxes, self.next_id)
        k3d = self.lift(kp, boxes, wh)
        order = np.argsort(ids, kind="stable")
        return FrameResult(frame_index, boxes[order], sel.scores[order], ids[order], kp[order],
                           np.asarray(poses.scores, np.float32)[order], k3d[order], (w, h))
