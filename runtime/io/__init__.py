"""Frames in, results out: :mod:`.sources` (images, videos, folders, URLs, cameras), :mod:`.sinks` (the
predictions JSON, NPZ, video and image writers over the one schema of :mod:`pose3d_rt.results`), :mod:`.atomic`
(the one atomic-write helper), :mod:`.held_frames` (frames waiting for the lifter's delay) and :mod:`.workers`
(the reader and writer threads of a run, behind bounded queues)."""
from .sources import FrameSource, VideoInfo, open_source

__all__ = ["FrameSource", "VideoInfo", "open_source"]
