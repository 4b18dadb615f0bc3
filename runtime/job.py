"""The ``pose3d-rt run`` job: a source in, a visualization and a predictions JSON out, written as a stream.

Outputs under ``output_root`` (the mmpose demo's naming):
- the visualization: ``<output_root>/<input file name>`` (a video for video inputs, ``.mp4`` for cameras and
  streams, an image for images); never the input file itself;
- with ``save_predictions``: ``<output_root>/results_<input stem>.json`` in the demo's schema (in default mode each
  instance also carries ``track_id``, ``bbox``, ``bbox_score``, ``keypoints_2d`` and ``keypoint_scores_2d``, and
  ``frame_id`` is 0-based; in mmpose mode ``frame_id`` is 1-based as the demo writes it);
- with ``save_npz``: ``<output_root>/results_<input stem>.npz`` (flat arrays, one row per person-frame);
- with ``save_trc`` / ``save_bvh`` / ``save_csv``: motion-capture files, TRC and BVH per track
  (``results_<input stem>_track<ID>.trc|.bvh``) and a tidy ``results_<input stem>.csv`` (:mod:`pose3d_rt.io.mocap`).

The fields of both files are the one per-person schema of :mod:`pose3d_rt.results`; the writers are in
:mod:`pose3d_rt.io.sinks`. Interrupting (Ctrl-C, a crash, a broken input, a failing writer) leaves a valid JSON and
a playable video of the frames done.

Overlap (``overlap=True``, the default): frames are decoded on a reader thread (``FrameSource.read_ahead``) and the
results are drawn, encoded and written on a writer thread (:class:`~pose3d_rt.io.workers.OrderedWorker`), each
behind a small bounded queue, so the main thread runs the networks back to back. The outputs are the same bytes as
with ``overlap=False`` (everything in the main thread). ``--show`` draws and displays in the main thread (the
OpenCV window must live there). Every thread is joined before :func:`run` returns or raises.
"""
from __future__ import annotations

import logging
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import cv2
import numpy as np

from .errors import InputError
from .frames import check_frame
from .io.atomic import prepare_output_dir
from .io.held_frames import FrameStore, must_encode
from .io.mocap import MocapWriter
from .io.sinks import NpzSpill, PredictionWriter, VideoSink, h36m_meta_info, write_image
from .io.sources import FrameSource, VideoInfo, open_source
from .io.workers import READ_AHEAD, WRITE_BEHIND, OrderedWorker
from .results import FrameResult
from .timing import EngineClock, FrameTiming, engine_clock, frame_timing

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
    timing: Optional[FrameTiming] = None  # where the time went (networks vs the rest), see pose3d_rt.timing
    mocap_paths: List[Path] = field(default_factory=list)  # TRC, BVH and CSV files written

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
    prepare_output_dir(output_root, "--output-root")


@dataclass
class _Outputs:
    """What one run writes, opened before the first frame and closed however the run ends."""

    root: Optional[Path]
    paths: Dict[str, Path]
    is_image: bool
    json: Optional[PredictionWriter] = None
    npz: Optional[NpzSpill] = None
    mocap: Optional[MocapWriter] = None
    video: Optional[VideoSink] = None
    visualizer: Any = None
    show: bool = False
    show_interval: float = 0.0
    canvas: Optional[np.ndarray] = None  # one drawing buffer for the whole stream
    frames: Optional[FrameStore] = None  # the frames to draw, from decoding until their result is drawn

    def hold(self, index: int, frame: np.ndarray) -> None:
        """``FrameSource.on_frame``: keep frame ``index`` for drawing (called where it is decoded; a frame the
        pipeline will refuse is not kept, the pipeline raises its one-line error)."""
        try:
            frame = check_frame(frame, f"frame {index}")
        except InputError:
            return
        self.frames.put(index, frame)

    def _frame(self, res: FrameResult) -> np.ndarray:
        frame = self.frames.pop(res.frame_index)
        if frame is None:
            raise RuntimeError(f"frame {res.frame_index} was not held for drawing")
        return frame

    def draws(self) -> bool:
        """Whether results are drawn (a visualizer, and a file or a window to put the drawing in)."""
        return self.frames is not None and (self.root is not None or self.show)

    def write(self, res: FrameResult, canvas: Optional[np.ndarray] = None) -> None:
        """Write one result to the files: JSON, NPZ, and its drawing (``canvas``, or drawn here) to the video or
        image. Runs on the writer thread when overlapped; the visualizer is then used by that thread only.
        Drawn first, so that a drawing error leaves every file at the same frame."""
        drawn = self.root is not None and self.draws()
        if drawn and canvas is None:
            canvas = self.canvas = self.visualizer.render(self._frame(res), res, out=self.canvas)
        if self.json is not None:
            self.json.write_result(res)
        if self.npz is not None:
            self.npz.add(res)
        if self.mocap is not None:
            self.mocap.add(res)
        if not drawn:
            return
        if self.video is not None:
            self.video.write(canvas)
        elif self.is_image:
            write_image(self.paths["vis"], canvas)

    def display(self, res: FrameResult) -> Tuple[Optional[np.ndarray], bool]:
        """``--show`` (main thread): draw ``res`` into a new canvas and show it; (canvas, False when the user asked
        to stop with q or Esc in the window)."""
        if not (self.show and self.draws()):
            return None, True
        canvas = self.visualizer.render(self._frame(res), res)  # a new buffer: the writer may be encoding the last
        cv2.imshow("pose3d-rt", canvas)
        stop = cv2.waitKey(max(1, math.ceil(self.show_interval * 1000))) & 0xFF in (27, ord("q"))
        return canvas, not stop

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
                try:
                    if self.npz is not None:
                        self.npz.save()
                finally:
                    if self.mocap is not None:
                        self.mocap.close()


def _open_outputs(info: VideoInfo, root: Optional[Path], paths: Dict[str, Path], pipeline, *,
                  save_predictions: bool, save_npz: bool, mocap: Dict[str, bool], visualizer, show: bool,
                  show_interval: float) -> _Outputs:
    out = _Outputs(root, paths, info.is_image, visualizer=visualizer, show=show, show_interval=show_interval)
    try:
        if save_predictions:
            out.json = PredictionWriter(paths["json"], h36m_meta_info(), flat=info.is_image,
                                        mode=getattr(pipeline, "mode", "default"))
        if save_npz:
            out.npz = NpzSpill(paths["npz"])
        if any(mocap.values()):
            out.mocap = MocapWriter(root, info.name, trc=mocap["trc"], bvh=mocap["bvh"], csv=mocap["csv"],
                                    fps=info.fps, keypoint_dataset=getattr(pipeline, "keypoint_dataset", "coco"))
        if root is not None and not info.is_image:
            out.video = VideoSink(paths["vis"], info.fps)
    except BaseException:
        out.close()
        raise
    return out


def _probe(input_spec: str, output_root: Optional[str], save_predictions: bool, save_npz: bool,
           show: bool, mocap: Optional[Dict[str, bool]] = None) -> Tuple[FrameSource, Optional[Path], Dict[str, Path]]:
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
        elif save_predictions or save_npz or any((mocap or {}).values()):
            raise InputError("--save-predictions/--save-npz/--save-trc/--save-bvh/--save-csv need --output-root")
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


def _writer(outputs: _Outputs, overlap: bool) -> OrderedWorker:
    """The worker that writes each ``(result, canvas)``; an OSError (disk full, folder gone) becomes one line."""

    def handle(item: Tuple[FrameResult, Optional[np.ndarray]]) -> None:
        try:
            outputs.write(*item)
        except OSError as exc:
            where = f"--output-root {outputs.root}" if outputs.root is not None else "output"
            raise InputError(f"{where}: writing the outputs failed at frame {item[0].frame_index} "
                             f"({exc.strerror or exc})") from exc

    return OrderedWorker(handle, WRITE_BEHIND, threaded=overlap)


def _stream(pipeline, src: FrameSource, outputs: _Outputs, writer: OrderedWorker, bar,
            t0: float) -> Tuple[int, int, bool]:
    """Run the pipeline over ``src`` into ``writer``: (frames, persons, interrupted by Ctrl-C). A frame counts once
    it is handed to the writer."""
    frames = persons = 0
    results = pipeline.stream(src)  # the frames to draw are held by outputs.frames (FrameSource.on_frame)
    try:
        for res in results:
            canvas, go_on = outputs.display(res)
            writer.put((res, canvas))
            frames += 1
            persons += len(res)
            if bar is not None:
                bar.update(1)
                dt = time.perf_counter() - t0
                bar.set_postfix(fps=f"{frames / dt:.1f}" if dt > 0 else "-", persons=len(res))
            if not go_on:
                break
    except KeyboardInterrupt:
        log.warning("interrupted after %d frames; outputs so far are kept", frames)
        return frames, persons, True
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()  # the pipeline's own clean-up now, in this thread
    return frames, persons, False


def _finish_after_error(writer: OrderedWorker) -> None:
    """Write what was computed before an error; a second error of the writer is logged (the first one is raised)."""
    try:
        writer.finish()
    except Exception as exc:  # noqa: BLE001 - the pipeline's error is the one raised
        log.error("the writer failed too: %s", exc)


def _timing(frames: int, t0: float, clock: EngineClock, src: FrameSource, writer: OrderedWorker,
            overlap: bool) -> FrameTiming:
    timing = frame_timing(frames, time.perf_counter() - t0, clock, read_wait_s=src.wait_seconds,
                          write_wait_s=writer.wait_s, decode_s=src.read_seconds, output_s=writer.busy_s,
                          overlapped=overlap)
    log.info("timing: %s", timing.describe())
    return timing


def run(pipeline_factory, input_spec: str, *, output_root: Optional[str] = None, save_predictions: bool = False,
        save_npz: bool = False, show: bool = False, visualizer=None, progress: bool = True,
        show_interval: float = 0.0, overlap: bool = True, save_trc: bool = False, save_bvh: bool = False,
        save_csv: bool = False) -> RunSummary:
    """Probe ``input_spec`` first, then build the pipeline (``pipeline_factory()``), stream, write outputs.

    ``show_interval``: seconds each shown frame is held (the demo's ``--show-interval``; 0 = as fast as possible).
    ``overlap``: decode and draw/encode/write on background threads (same outputs; False does all in this thread).
    The summary's ``timing`` splits the wall time into network time and the rest (:class:`FrameTiming`).
    ``save_trc``/``save_bvh``/``save_csv``: the motion-capture files of :mod:`pose3d_rt.io.mocap`.
    """
    mocap = {"trc": save_trc, "bvh": save_bvh, "csv": save_csv}
    src, root, paths = _probe(input_spec, output_root, save_predictions, save_npz, show, mocap)  # before any model
    info = src.info
    try:
        pipeline = pipeline_factory()
        outputs = _open_outputs(info, root, paths, pipeline, save_predictions=save_predictions, save_npz=save_npz,
                                mocap=mocap, visualizer=visualizer, show=show, show_interval=show_interval)
    except BaseException:
        src.close()
        raise
    src.read_ahead = READ_AHEAD if overlap else 0
    if visualizer is not None:  # the pipeline's delay decides, as for Pose3DPipeline.stream(keep_frames=True)
        outputs.frames = FrameStore(must_encode(info.width, info.height, getattr(pipeline, "latency", 0) + 1))
        src.on_frame = outputs.hold
    bar = _progress_bar(info, progress)
    writer: Optional[OrderedWorker] = None
    try:
        writer = _writer(outputs, overlap)
        with engine_clock(pipeline) as clock:
            t0 = time.perf_counter()
            try:
                frames, persons, interrupted = _stream(pipeline, src, outputs, writer, bar, t0)
            except BaseException:
                _finish_after_error(writer)
                raise
            writer.finish()
            timing = _timing(frames, t0, clock, src, writer, overlap)
    finally:
        _close_all(writer, bar, outputs, src, show)
    return RunSummary(frames, persons, timing.wall_s, paths.get("vis"),
                      paths.get("json") if outputs.json else None, paths.get("npz") if outputs.npz else None,
                      interrupted, src.error, timing, outputs.mocap.written if outputs.mocap else [])


def _close_all(writer: Optional[OrderedWorker], bar, outputs: _Outputs, src: FrameSource, show: bool) -> None:
    """Stop the threads, then close every output and the input (each step runs even if one before it fails)."""
    try:
        if writer is not None:
            writer.abort()  # a no-op after finish(); the thread is gone before the outputs close
    finally:
        try:
            if bar is not None:
                bar.close()
            outputs.close()
        finally:
            src.close()  # stops the reader thread, then releases the capture
            if outputs.frames is not None:
                outputs.frames.clear()  # frames decoded ahead or waiting for the lifter when the run stopped
            if show:
                cv2.destroyAllWindows()
