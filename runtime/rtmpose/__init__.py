"""RTMPose top-down 2D keypoints: crops, SimCC decoding, the :class:`PoseEstimator` stage."""
from .estimator import PoseEstimator, Poses2D

__all__ = ["PoseEstimator", "Poses2D"]
