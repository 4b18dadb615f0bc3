"""RTMDet person detection: letterbox preprocessing, box decoding and NMS, the :class:`Detector` stage."""
from .detector import Detections, Detector

__all__ = ["Detections", "Detector"]
