"""Frames in (sources) and results out (sinks)."""
from .sources import FrameSource, VideoInfo, open_source

__all__ = ["FrameSource", "VideoInfo", "open_source"]
