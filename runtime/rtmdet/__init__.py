"""RTMDet person detection: letterbox preprocessing, box decoding and NMS, the :class:`Detector` stage.

``preprocess`` (letterbox, normalise; its batch function ``preprocess.preprocess`` is not re-exported here, so
that the name keeps meaning the module) -> ``decode`` (priors, the three output layouts, mmdet's filter/NMS)
-> ``detector`` (engine metadata, output-layout detection, the stage).
"""
from .decode import (
    DEFAULT_STRIDES,
    Detections,
    PostprocessConfig,
    decode_boxes_scores,
    decode_dets_labels,
    decode_raw_levels,
    distance2bbox,
    filter_detections,
    flatten_raw_levels,
    level_shapes,
    make_priors,
)
from .detector import LETTERBOXES, OUTPUT_FORMATS, Detector, DetectorConfig, parse_detector_metadata
from .preprocess import Letterbox, PreprocessConfig, letterbox, rect_input_hw

__all__ = [
    "Detections",
    "Detector",
    "DetectorConfig",
    "PreprocessConfig",
    "PostprocessConfig",
    "Letterbox",
    "OUTPUT_FORMATS",
    "LETTERBOXES",
    "DEFAULT_STRIDES",
    "letterbox",
    "rect_input_hw",
    "level_shapes",
    "make_priors",
    "distance2bbox",
    "flatten_raw_levels",
    "decode_boxes_scores",
    "decode_raw_levels",
    "decode_dets_labels",
    "filter_detections",
    "parse_detector_metadata",
]
