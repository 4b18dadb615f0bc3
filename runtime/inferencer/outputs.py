"""What ``pose3d-rt inferencer`` writes: ``--pred-out-dir`` JSON files and ``--vis-out-dir`` drawings.

The Inferencer's schema and names (docs/spec/inferencer.md §6; mmpose ``BaseMMPoseInferencer.postprocess``,
``Pose3DInferencer._finalize_video_processing``):

- image ``X/name.ext`` -> ``DIR/name.json``: the list of the image's instances;
- video ``X/name.ext`` (or a camera, a stream) -> ``DIR/name.json``: ``[{"frame_id": i, "instances": [...]}, ...]``,
  ``i`` 0-based;
- an instance is ``{"keypoints": 17 x [X, Y, Z], "keypoint_scores": 17 x 1.0}``, in ascending track id;
- ``json.dumps(..., indent="  ")`` (mmengine's ``dump(..., indent='  ')``): floats are Python ``repr`` of the
  float32 values, non-finite values ``NaN`` as mmengine writes them (mmpose mode); default mode writes ``null``
  for a person without 3D.

mmpose writes a video's file once, at the end; :class:`FramesJsonWriter` streams it instead (atomically in place
from the first frame, valid JSON after every frame, byte-identical to the end-of-run file), so an interrupted run
keeps the frames done and memory does not grow with the video.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np

from ..io.atomic import write_text_atomic
from ..io.sinks import JsonStream, VideoSink, write_image
from ..results import DEMO_INSTANCE, FrameResult

log = logging.getLogger(__name__)

__all__ = ["INDENT", "json_instances", "dumps", "write_instances_json", "FramesJsonWriter", "VisWriter"]

INDENT = "  "


def json_instances(res: FrameResult, mode: str = "mmpose") -> List[Dict[str, Any]]:
    """The persons of ``res`` as the Inferencer's instances (``keypoints``, ``keypoint_scores``). In default mode a
    person without 3D (not lifted) gets ``"keypoints": null``."""
    out = res.instances(DEMO_INSTANCE, missing_3d=np.nan)
    if mode != "mmpose" and res.keypoints_3d is not None:
        lifted = np.isfinite(res.keypoints_3d).all(axis=(1, 2))
        for inst, ok in zip(out, lifted.tolist()):
            if not ok:
                inst["keypoints"] = None
    return out


def dumps(obj: Any) -> str:
    """mmengine's ``dump(obj, file, indent='  ')`` text for plain Python data."""
    return json.dumps(obj, indent=INDENT)


def write_instances_json(path: Path, instances: List[Dict[str, Any]]) -> Path:
    """An image's JSON: the list of its instances, written atomically."""
    return write_text_atomic(path, dumps(instances))


class FramesJsonWriter:
    """A video's JSON ``[{"frame_id", "instances"}, ...]`` streamed to ``path``: after every :meth:`write` the file
    is the complete JSON of the frames so far (``[]`` before the first), with the bytes ``dumps`` gives for the
    whole list. The file is made under a temporary name and renamed into place when opened."""

    def __init__(self, path: Union[str, Path]) -> None:
        self.path = Path(path)
        self._stream = JsonStream(self.path, "[", "\n]", empty_tail="]")

    @property
    def count(self) -> int:
        return self._stream.count

    def write(self, frame_id: int, instances: List[Dict[str, Any]]) -> None:
        text = dumps({"frame_id": int(frame_id), "instances": instances})
        self._stream.append("\n" + "\n".join(INDENT + line for line in text.split("\n")))

    def close(self) -> None:
        if not self._stream.closed:
            self._stream.close()
            log.info("wrote %d frames to %s", self.count, self.path)

    def __enter__(self) -> FramesJsonWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class VisWriter:
    """``--vis-out-dir``: the drawings of one input, a video (``VideoSink``: size fixed by the first frame, the
    input's fps) or one image file; ``visualizer`` is a :class:`~pose3d_rt.visualize.Visualizer`."""

    def __init__(self, path: Path, visualizer: Any, *, video: bool, fps: float = 30.0) -> None:
        self.path = path
        self.visualizer = visualizer
        self._video: Optional[VideoSink] = VideoSink(path, fps) if video else None
        self._canvas: Optional[np.ndarray] = None

    def render(self, frame: np.ndarray, res: FrameResult) -> np.ndarray:
        self._canvas = self.visualizer.render(frame, res, out=self._canvas if self._video is not None else None)
        return self._canvas

    def write(self, frame: np.ndarray, res: FrameResult, canvas: Optional[np.ndarray] = None) -> None:
        canvas = self.render(frame, res) if canvas is None else canvas
        if self._video is not None:
            self._video.write(canvas)
        else:
            write_image(self.path, canvas)

    def close(self) -> None:
        if self._video is not None:
            self._video.close()
