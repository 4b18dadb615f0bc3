"""The ``pose3d-rt run`` job: a source in, a visualization and a predictions JSON out, written as a stream.

Outputs under ``output_root`` (the mmpose demo's naming):
- the visualization: ``<output_root>/<input file name>`` (a video for video inputs, ``.mp4`` for cameras and
  streams, an image for images); never the input file itself;
- with ``save_predictions``: ``<output_root>/results_<input stem>.json`` in the demo's schema (in default mode each
  instance also carries ``track_id``, ``bbox``, ``bbox_score``, ``keypoints_2d`` and ``keypoint_scores_2d``, and
  ``frame_id`` is 0-based; in mmpose mode ``frame_id`` is 1-based as the demo writes it);
- with ``save_npz``: ``<output_root>/results_<input stem>.npz`` (flat arrays, one row per person-frame).

The fields of both files are the one per-person schema of :mod:`pose3d_rt.results`; the writers are in
:mod:`pose3d_rt.io.sinks`. Interrupting (Ctrl-C, a crash, a broken input) leaves a valid JSON and a playable video of the frames done.
"""
from __future__ import annotations

import logging
import math
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import cv2
import numpy as np

from .errors import InputError
from .io.sinks import NpzSpill, PredictionWriter, VideoSink, h36m_meta_info, write_image
from .io.sources import FrameSource, VideoInfo, open_source
from .results import FrameResult

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    frames: int
    persons: int
    seconds: float
    video_path: Optional[Path]
    json_path: Optional[Path]
    npz_path: Optional[Path]
    interrupted: bool = False
    error: Optional[str] = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def output_paths(info: VideoInfo, spec: str, output_root: Path) -> Dict[str, Path]:
    """Where the visualization, JSON and npz go for this source (never the input file itself)."""
    if info.kind in ("webcam", "stream"):
        vis_name = f"{info.name}.mp4"
    elif info.kind == "folder":
        vis_name = f"{info.name}.mp4"
    else:
        vis_name = Path(spec.split("?")[0]).name
    if info.kind == "video" and Path(vis_name).suffix.lower() not in (".mp4", ".avi", ".mov", ".mkv", ".m4v"):
        vis_name = Path(vis_name).stem + ".mp4"
    vis = output_root / vis_name
    src = Path(spec)
    if src.exists() and vis.exists() and vis.resolve() == src.resolve():
        raise InputError(
            f"--output-root {output_root}: the visualization would overwrite the input {spec}; choose another folder"
        )
    return {"vis": vis, "json": output_root / f"results_{info.name}.json",
            "npz": output_root / f"results_{info.name}.npz"}


def check_show_supported() -> None:
    """``--show`` needs an OpenCV build with a GUI backend and, on Linux, a display: say so before any work."""
    m = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    if m and m.group(1).upper() == "NONE":
        raise InputError("--show: this OpenCV build has no GUI (opencv-python-headless); to display, replace it "
                         "with opencv-python (pip uninstall opencv-python-headless && pip install opencv-python), "
                         "or write the visualization with --output-root")
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise InputError("--show: no display (neither DISPLAY nor WAYLAND_DISPLAY is set); use --output-root")


def check_output_root(output_root: Path) -> None:
    try:
        output_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--output-root {output_root}: cannot create the folder ({exc.strerror})") from None
    if not output_root.is_dir():
        raise InputError(f"--output-root {output_root}: not a folder")
    if not os.access(output_root, os.W_OK | os.X_OK):
        raise InputError(f"--output-root {output_root}: not writable")


@dataclass
class _Outputs:
    """What one run writes, opened before the first frame and closed however the run ends."""

    root: Optional[Path]
    paths: Dict[str, Path]
    is_image: bool
    json: Optional[PredictionWriter] = None
    npz: Optional[NpzSpill] = None
    video: Optional[VideoSink] = None
    visualizer: Any = None
    show: bool = False
    show_interval: float = 0.0
    canvas: Optional[np.ndarray] = None  # one drawing buffer for the whole stream

    def write(self, res: FrameResult) -> bool:
        """Write one result everywhere; False when the user asked to stop (q or Esc in the window)."""
        if self.json is not None:
            self.json.write_result(res)
        if self.npz is not None:
            self.npz.add(res)
        if self.visualizer is None or (self.root is None and not self.show) or res.frame is None:
            return True
        self.canvas = self.visualizer.render(res.frame, res, out=self.canvas)
        if self.video is not None:
            self.video.write(self.canvas)
        elif self.root is not None and self.is_image:
            write_image(self.paths["vis"], self.canvas)
        if self.show:
            cv2.imshow("pose3d-rt", self.canvas)
            if cv2.waitKey(max(1, math.ceil(self.show_interval * 1000))) & 0xFF in (27, ord("q")):
                return False
        return True

    def close(self) -> None:
        """Finish every output (each one is valid after this, also after an interruption)."""
        try:
            if self.json is not None:
                self.json.close()
        finally:
            try:
                if self.video is not None:
                    self.video.close()
            finally:
                if self.npz is not None:
                    self.npz.save()


def _open_outputs(info: VideoInfo, root: Optional[Path], paths: Dict[str, Path], mode: str, *,
                  save_predictions: bool, save_npz: bool, visualizer, show: bool,
                  show_interval: float) -> _Outputs:
    out = _Outputs(root, paths, info.is_image, visualizer=visualizer, show=show, show_interval=show_interval)
    try:
        if save_predictions:
            out.json = PredictionWriter(paths["json"], h36m_meta_info(), flat=info.is_image, mode=mode)
        if save_npz:
            out.npz = NpzSpill(paths["npz"])
        if root is not None and not info.is_image:
            out.video = VideoSink(paths["vis"], info.fps)
    except BaseException:
        out.close()
        raise
    return out


def _probe(input_spec: str, output_root: Optional[str], save_predictions: bool, save_npz: bool,
           show: bool) -> Tuple[FrameSource, Optional[Path], Dict[str, Path]]:
    """Open the input and check the output options: every user error before any model is loaded."""
    if show:
        check_show_supported()
    src: FrameSource = open_source(input_spec)
    root = Path(output_root) if output_root else None
    paths: Dict[str, Path] = {}
    try:
        if root is not None:
            check_output_root(root)
            paths = output_paths(src.info, input_spec, root)
        elif save_predictions or save_npz:
            raise InputError("--save-predictions/--save-npz need --output-root")
        elif not show:
            raise InputError("nothing to do: give --output-root (to save) and/or --show")
    except BaseException:
        src.close()
        raise
    return src, root, paths


def _progress_bar(info: VideoInfo, progress: bool):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=info.total_frames, unit="frame", desc=info.name, disable=None)


def _stream(pipeline, src: FrameSource, outputs: _Outputs, bar, t0: float) -> Tuple[int, int, bool]:
    """Run the pipeline over ``src`` into ``outputs``: (frames, persons, interrupted by Ctrl-C)."""
    frames = persons = 0
    try:
        for res in pipeline.stream(src, keep_frames=outputs.visualizer is not None):
            frames += 1
            persons += len(res)
            go_on = outputs.write(res)
            if bar is not None:
                bar.update(1)
                dt = time.perf_counter() - t0
                bar.set_postfix(fps=f"{frames / dt:.1f}" if dt > 0 else "-", persons=len(res))
            if not go_on:
                break
    except KeyboardInterrupt:
        log.warning("interrupted after %d frames; outputs so far are kept", frames)
        return frames, persons, True
    return frames, persons, False


def run(pipeline_factory, input_spec: str, *, output_root: Optional[str] = None, save_predictions: bool = False,
        save_npz: bool = False, show: bool = False, visualizer=None, progress: bool = True,
        show_interval: float = 0.0) -> RunSummary:
    """Probe ``input_spec`` first, then build the pipeline (``pipeline_factory()``), stream, write outputs.

    ``show_interval``: seconds each shown frame is held (the demo's ``--show-interval``; 0 = as fast as possible).
    """
    src, root, paths = _probe(input_spec, output_root, save_predictions, save_npz, show)  # before any model
    info = src.info
    try:
        pipeline = pipeline_factory()
        outputs = _open_outputs(info, root, paths, getattr(pipeline, "mode", "default"),
                                save_predictions=save_predictions, save_npz=save_npz, visualizer=visualizer,
                                show=show, show_interval=show_interval)
    except BaseException:
        src.close()
        raise
    bar = _progress_bar(info, progress)
    t0 = time.perf_counter()
    try:
        frames, persons, interrupted = _stream(pipeline, src, outputs, bar, t0)
    finally:
        if bar is not None:
            bar.close()
        try:
            outputs.close()
        finally:
            src.close()
            if show:
                cv2.destroyAllWindows()
    dt = time.perf_counter() - t0
    return RunSummary(frames, persons, dt, paths.get("vis"), paths.get("json") if outputs.json else None,
                      paths.get("npz") if outputs.npz else None, interrupted, src.error)
