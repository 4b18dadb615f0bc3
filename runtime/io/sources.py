"""Frame sources: one image, a video file, a folder of images, a URL or a camera, probed before any model loads.

``open_source(spec)`` returns a :class:`FrameSource`: an iterable of BGR uint8 frames with a :class:`VideoInfo`.
An array goes through :func:`~pose3d_rt.frames.check_frame` (gray and BGRA become BGR); frames of
:meth:`FrameSource.from_frames` are checked by the pipeline as they come.
Everything unreadable raises :class:`~pose3d_rt.errors.InputError` naming the input and what is wrong.
``source.read_ahead = N`` decodes on a background thread N frames ahead (what ``pose3d-rt run`` does).
"""
from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Union

import cv2
import numpy as np

from ..errors import InputError
from ..frames import check_frame
from .workers import ReadAhead

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jp2")
_WEBCAM = re.compile(r"^webcam(?::(\d+))?$")
_STREAM = re.compile(r"^(rtsp|rtmp|http|https|udp|tcp)://", re.IGNORECASE)
DEFAULT_FPS = 30.0


@dataclass(frozen=True)
class VideoInfo:
    """What is known about a source before reading it. ``total_frames`` is None for cameras and streams."""

    kind: str  # "image" | "video" | "folder" | "webcam" | "stream"
    name: str  # file stem used to name outputs ("webcam" for cameras)
    width: int
    height: int
    fps: float
    total_frames: Optional[int]

    @property
    def is_image(self) -> bool:
        return self.kind == "image"


class FrameSource:
    """Iterable of BGR uint8 frames. Use as a context manager so the capture is released.

    ``read_ahead`` > 0 decodes on a background thread that many frames ahead of the consumer
    (:class:`~pose3d_rt.io.workers.ReadAhead`; the frames and their order are the same); :meth:`close` stops it.
    ``read_seconds``: time spent decoding; ``wait_seconds``: time the consumer waited for a frame (the same
    without read-ahead). ``on_frame(index, frame)``, if set, is called for every frame where it is decoded (on the
    reader thread with read-ahead; ``pose3d-rt run`` keeps the frames to draw with it).
    ``timestamp``: the presentation time (seconds) of the frame last handed to the consumer: the container's
    (``CAP_PROP_POS_MSEC``, variable frame rates included), the clock's for a camera, else ``index / fps``."""

    def __init__(self, spec: str, info: VideoInfo, *, cap=None, files: Optional[List[Path]] = None,
                 image: Optional[np.ndarray] = None, read_ahead: int = 0) -> None:
        self.spec = spec
        self.info = info
        self._cap = cap
        self._files = files
        self._image = image
        self._iterable = None
        self.read_ahead = int(read_ahead)
        self.frames_read = 0  # frames handed to the consumer
        self.error: Optional[str] = None  # set when a stream broke part-way (the frames before it were delivered)
        self._broke: Optional[str] = None  # the break, seen by the decoder (maybe ahead of the consumer)
        self._reader: Optional[ReadAhead] = None
        self._inline_s = 0.0
        # called as on_frame(index, frame) for every frame as it is decoded (on the reader thread with read-ahead)
        self.on_frame: Optional[Callable[[int, np.ndarray], None]] = None
        self.timestamp: Optional[float] = None
        self._times: Dict[int, float] = {}  # decoded frame index -> seconds, until the consumer takes the frame
        self._last_time: Optional[float] = None

    @classmethod
    def from_frames(cls, frames, width: int, height: int, fps: float = DEFAULT_FPS,
                    total_frames: Optional[int] = None, name: str = "frames") -> FrameSource:
        """A source over any iterable of BGR uint8 frames (a generator, a list, another decoder)."""
        src = cls(name, VideoInfo("video", name, int(width), int(height), float(fps), total_frames))
        src._iterable = frames
        return src

    @property
    def read_seconds(self) -> float:
        return self._inline_s + (self._reader.busy_s if self._reader is not None else 0.0)

    @property
    def wait_seconds(self) -> float:
        return self._inline_s + (self._reader.wait_s if self._reader is not None else 0.0)

    def __iter__(self) -> Iterator[np.ndarray]:
        frames: Iterator[np.ndarray] = self._frames() if self.on_frame is None else _tapped(self._frames(),
                                                                                              self.on_frame)
        if self.read_ahead > 0:
            if self._reader is not None:
                self._reader.close()
            self._reader = ReadAhead(frames, self.read_ahead, name=f"pose3d-rt-reader:{self.info.name}")
            frames = iter(self._reader)
        try:
            while True:
                t0 = time.perf_counter()
                try:
                    frame = next(frames)
                except StopIteration:
                    break
                finally:
                    if self.read_ahead <= 0:
                        self._inline_s += time.perf_counter() - t0
                self.timestamp = self._times.pop(self.frames_read, None)
                if self.timestamp is None:
                    self.timestamp = self.frames_read / self.info.fps if self.info.fps > 0 else 0.0
                self.frames_read += 1
                yield frame
        finally:
            if self._reader is not None:
                self._reader.close()
        if self._broke is not None:
            self.error = self._broke
            log.warning(self.error)

    def _frames(self) -> Iterator[np.ndarray]:
        """The decoded frames (on the reader thread with read-ahead); a part-way break is noted in ``_broke``."""
        if self._iterable is not None:
            yield from self._iterable
            return
        if self._image is not None:
            yield self._image
            return
        n = 0
        if self._files is not None:
            for path in self._files:
                img = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if img is None:
                    self._broke = f"{path}: not a readable image; stopped after {n} frames"
                    return
                n += 1
                yield img
            return
        cap = self._cap
        t0 = time.monotonic()
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                total = self.info.total_frames
                if total is not None and n < total - 1:
                    self._broke = f"{self.spec}: decoding stopped at frame {n} of {total} (corrupt or truncated)"
                return
            self._stamp(n, time.monotonic() - t0 if self.info.kind == "webcam"
                        else cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
            n += 1
            yield frame

    def _stamp(self, n: int, seconds: float) -> None:
        """Note frame ``n``'s time; one that is not finite or not after the previous frame's becomes the previous
        plus one frame period."""
        last = self._last_time
        if last is not None and not (math.isfinite(seconds) and seconds > last):
            seconds = last + 1.0 / (self.info.fps if self.info.fps > 0 else DEFAULT_FPS)
        elif not math.isfinite(seconds):
            seconds = 0.0
        self._times[n] = self._last_time = seconds

    def close(self) -> None:
        """Stop the read-ahead thread (if any), then release the capture."""
        if self._reader is not None:
            self._reader.close()
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _tapped(frames: Iterator[np.ndarray], hook: Callable[[int, np.ndarray], None]) -> Iterator[np.ndarray]:
    for i, frame in enumerate(frames):
        hook(i, frame)
        yield frame


def _read_image(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"{path}: not a readable image")
    return img


def _open_capture(spec: Union[str, int], label: str) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(spec)
    if not cap.isOpened():
        cap.release()
        raise InputError(f"{label}: cannot be opened as a video (unsupported, corrupt or unreachable)")
    return cap


def open_source(spec: Union[str, Path, np.ndarray]) -> FrameSource:
    """Probe ``spec`` and return a :class:`FrameSource`. Nothing is loaded but the first frame (for its size)."""
    if isinstance(spec, np.ndarray):
        image = check_frame(spec, "image array")
        h, w = image.shape[:2]
        return FrameSource("<array>", VideoInfo("image", "array", w, h, 0.0, 1), image=image)
    text = str(spec)
    m = _WEBCAM.match(text)
    if m:
        index = int(m.group(1) or 0)
        cap = _open_capture(index, f"webcam:{index}")
        return _capture_source(text, cap, "webcam", "webcam", live=True)
    if _STREAM.match(text):
        stem = Path(text.split("?")[0].rstrip("/")).stem or "stream"
        if Path(text.split("?")[0]).suffix.lower() in IMAGE_SUFFIXES:
            cap = _open_capture(text, text)
            ok, frame = cap.read()
            cap.release()
            if not ok:
                raise InputError(f"{text}: cannot be read as an image")
            h, w = frame.shape[:2]
            return FrameSource(text, VideoInfo("image", stem, w, h, 0.0, 1), image=frame)
        cap = _open_capture(text, text)
        return _capture_source(text, cap, "stream", stem, live=text.lower().startswith(("rtsp", "rtmp", "udp", "tcp")))
    path = Path(text)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise InputError(f"{path}: folder contains no images ({', '.join(IMAGE_SUFFIXES)})")
        first = _read_image(files[0])
        h, w = first.shape[:2]
        return FrameSource(text, VideoInfo("folder", path.name, w, h, DEFAULT_FPS, len(files)), files=files)
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        img = _read_image(path)
        h, w = img.shape[:2]
        return FrameSource(text, VideoInfo("image", path.stem, w, h, 0.0, 1), image=img)
    # Anything else: probe with the decoder (not the extension).
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is not None:
        h, w = img.shape[:2]
        return FrameSource(text, VideoInfo("image", path.stem, w, h, 0.0, 1), image=img)
    cap = _open_capture(str(path), str(path))
    return _capture_source(text, cap, "video", path.stem, live=False)


class _Prefetched:
    """A capture whose first frame was read during probing; hands it back first."""

    def __init__(self, cap: cv2.VideoCapture, first: np.ndarray) -> None:
        self._cap = cap
        self._first: Optional[np.ndarray] = first

    def read(self):
        if self._first is not None:
            f, self._first = self._first, None
            return True, f
        return self._cap.read()

    def get(self, prop: int) -> float:
        return self._cap.get(prop)

    def release(self) -> None:
        self._cap.release()


def _capture_source(spec: str, cap: cv2.VideoCapture, kind: str, name: str, live: bool) -> FrameSource:
    ok, first = cap.read()
    if not ok or first is None:
        cap.release()
        raise InputError(f"{spec}: no frame could be decoded (empty, corrupt or unsupported video)")
    h, w = first.shape[:2]
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    if not np.isfinite(fps) or fps <= 0 or fps > 1000:
        log.warning("%s reports fps=%s; using %.0f", spec, fps, DEFAULT_FPS)
        fps = DEFAULT_FPS
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    total = None if live or n <= 0 else n
    return FrameSource(spec, VideoInfo(kind, name, w, h, fps, total), cap=_Prefetched(cap, first))
