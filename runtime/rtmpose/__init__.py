"""RTMPose top-down 2D keypoints: crops, SimCC decoding, the :class:`PoseEstimator` stage.

``topdown`` (box -> centre/scale, mmpose's warp, normalisation) -> ``simcc`` (argmax decode, flip merge)
-> ``estimator`` (engine check and metadata, the stage).
"""
from .estimator import PoseEstimator, PoseModelConfig, Poses2D, parse_pose_engine
from .simcc import DEFAULT_SPLIT_RATIO, decode_simcc, flip_back_simcc, get_simcc_maximum, merge_flip
from .topdown import (
    BBOX_PADDING,
    RTMPOSE_MEAN_RGB,
    RTMPOSE_STD_RGB,
    WARP_METHODS,
    TopdownBatch,
    apply_affine,
    bbox_xyxy2cs,
    crop_to_image,
    fix_aspect_ratio,
    fixed_point_maps,
    get_warp_matrix,
    image_to_crop,
    invert_affine,
    normalize_crops,
    preprocess,
    warp_crops,
    warp_matrices,
)

__all__ = [
    "PoseEstimator",
    "Poses2D",
    "PoseModelConfig",
    "parse_pose_engine",
    "DEFAULT_SPLIT_RATIO",
    "decode_simcc",
    "flip_back_simcc",
    "get_simcc_maximum",
    "merge_flip",
    "BBOX_PADDING",
    "RTMPOSE_MEAN_RGB",
    "RTMPOSE_STD_RGB",
    "WARP_METHODS",
    "TopdownBatch",
    "apply_affine",
    "bbox_xyxy2cs",
    "crop_to_image",
    "fix_aspect_ratio",
    "fixed_point_maps",
    "get_warp_matrix",
    "image_to_crop",
    "invert_affine",
    "normalize_crops",
    "preprocess",
    "warp_crops",
    "warp_matrices",
]
