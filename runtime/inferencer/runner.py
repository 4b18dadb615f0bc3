"""Driving ``pose3d-rt inferencer`` over its input: what is one input, and where its outputs go.

mmpose's ``_inputs_to_list`` (docs/spec/inferencer.md §2): a folder is its image files, sorted, each an independent
input; an image is one input; a video (and here a camera or a stream URL) is one input of many frames.

- ``mode="mmpose"`` (:class:`~.mmpose_mode.InferencerMMPose`): every image restarts the id counter (I10); a video
  keeps one counter (ids still never match, I1).
- ``mode="default"`` (a :class:`~pose3d_rt.pipeline.Pose3DPipeline` with mode ``default``): the normal pipeline
  (real tracking, clip lifting); a folder is processed as one sequence (its images are frames, as ``pose3d-rt
  run`` does) but each image still gets its own JSON and drawing; an image alone is a one-frame sequence.

Outputs per input (:mod:`.outputs`): ``--pred-out-dir D``: ``D/<stem>.json``; ``--vis-out-dir D``: ``D/<file
name>`` (a camera: ``webcam.mp4``, a stream: ``<name>.mp4``), or ``D`` itself when it has an extension (a video or
a single image). Files are written as the frames come (a video's JSON is valid after every frame).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Tuple

import cv2
import numpy as np

from ..errors import InputError
from ..io.atomic import prepare_output_dir
from ..io.sources import IMAGE_SUFFIXES, FrameSource, open_source
from ..results import FrameResult
from .outputs import FramesJsonWriter, VisWriter, json_instances, write_instances_json

log = logging.getLogger(__name__)

__all__ = ["InferencerSummary", "OutputOptions", "run_inferencer", "image_files"]

@dataclass
class OutputOptions:
    """Where and how results go: ``pred_out_dir`` / ``vis_out_dir`` ('' = not written), a
    :class:`~pose3d_rt.visualize.Visualizer` (needed for ``vis_out_dir`` and ``show``), ``show`` in a window."""

    pred_out_dir: str = ""
    vis_out_dir: str = ""
    visualizer: Any = None
    show: bool = False


@dataclass
class InferencerSummary:
    inputs: int = 0
    frames: int = 0
    persons: int = 0
    seconds: float = 0.0
    json_paths: List[Path] = field(default_factory=list)
    vis_paths: List[Path] = field(default_factory=list)
    interrupted: bool = False

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def image_files(folder: Path) -> List[Path]:
    """The images of ``folder`` in name order (the files :func:`~pose3d_rt.io.sources.open_source` reads)."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _vis_path(out: OutputOptions, name: str, single: bool, source: str) -> Optional[Path]:
    """Where the drawing of the input ``source`` (file ``name``) goes; never onto the input itself."""
    if not out.vis_out_dir:
        return None
    target = Path(out.vis_out_dir)
    if target.suffix:
        if not single:
            raise InputError(f"--vis-out-dir {target}: must be a folder when the input has several images")
        prepare_output_dir(target.parent if str(target.parent) else Path("."), "--vis-out-dir")
    else:
        target = prepare_output_dir(target, "--vis-out-dir") / name
    src = Path(source)
    if src.is_file() and target.exists() and target.resolve() == src.resolve():
        raise InputError(f"--vis-out-dir {out.vis_out_dir}: the drawing would overwrite the input {source}")
    return target


def _json_path(out: OutputOptions, stem: str) -> Optional[Path]:
    return prepare_output_dir(out.pred_out_dir, "--pred-out-dir") / f"{stem}.json" if out.pred_out_dir else None


def _display(out: OutputOptions, canvas: Optional[np.ndarray], wait_ms: int) -> bool:
    """Show ``canvas`` (``--show``); False when the user pressed Esc or q."""
    if not out.show or canvas is None:
        return True
    cv2.imshow("pose3d-rt inferencer", canvas)
    return cv2.waitKey(wait_ms) & 0xFF not in (27, ord("q"))


def _results(model: Any, src: FrameSource, keep_frames: bool) -> Iterator[Tuple[FrameResult, Optional[np.ndarray]]]:
    """(result, its frame or None) for every frame of ``src``: the mmpose-mode Inferencer frame by frame (one id
    counter for the whole source), or the default-mode pipeline's stream."""
    if getattr(model, "mode", "") == "mmpose":
        model.reset()
        wh = (src.info.width, src.info.height)
        for t, frame in enumerate(src):
            yield model(frame, t, wh), frame
        return
    for res in model.stream(src, keep_frames=keep_frames):
        frame, res.frame = res.frame, None
        yield res, frame


def _draw(out: OutputOptions, vis: Optional[VisWriter], res: FrameResult, frame: Optional[np.ndarray],
          wait_ms: int) -> bool:
    canvas = None
    if frame is not None and (vis is not None or out.show):
        canvas = out.visualizer.render(frame, res) if vis is None else vis.render(frame, res)
    if vis is not None and canvas is not None:
        vis.write(frame, res, canvas)
    return _display(out, canvas, wait_ms)


def _run_sequence(model: Any, src: FrameSource, out: OutputOptions, mode: str,
                  summary: InferencerSummary) -> bool:
    """A video, camera or stream: one JSON of frames, one video. False when stopped from the window."""
    info = src.info
    vis_name = Path(src.spec.split("?")[0]).name if info.kind == "video" else f"{info.name}.mp4"
    vis_path = _vis_path(out, vis_name, single=True, source=src.spec)
    json_path = _json_path(out, info.name)
    writer = FramesJsonWriter(json_path) if json_path is not None else None
    vis = VisWriter(vis_path, out.visualizer, video=True, fps=info.fps) if vis_path is not None else None
    go_on = True
    try:
        for res, frame in _results(model, src, keep_frames=vis is not None or out.show):
            if writer is not None:
                writer.write(res.frame_index, json_instances(res, mode))
            summary.frames += 1
            summary.persons += len(res)
            go_on = _draw(out, vis, res, frame, 1)
            if not go_on:
                break
    finally:
        for closer in (writer, vis):
            if closer is not None:
                closer.close()
    summary.json_paths += [json_path] if json_path is not None else []
    summary.vis_paths += [vis_path] if vis_path is not None else []
    return go_on


def _write_image(out: OutputOptions, mode: str, res: FrameResult, frame: Optional[np.ndarray],
                 name: Tuple[str, str, str], single: bool, summary: InferencerSummary) -> bool:
    """One image's outputs; ``name`` = (stem, file name, path or URL) of the image."""
    vis_path = _vis_path(out, name[1], single, name[2])
    json_path = _json_path(out, name[0])
    if json_path is not None:
        write_instances_json(json_path, json_instances(res, mode))
        summary.json_paths.append(json_path)
    vis = VisWriter(vis_path, out.visualizer, video=False) if vis_path is not None else None
    if vis is not None:
        summary.vis_paths.append(vis_path)
    summary.frames += 1
    summary.persons += len(res)
    return _draw(out, vis, res, frame, 0)


def _run_images(model: Any, specs: List[str], out: OutputOptions, mode: str, summary: InferencerSummary,
                folder: Optional[str] = None) -> bool:
    """Images: each its own input in mmpose mode (I10); one sequence (``folder``) in default mode. One JSON and
    one drawing each. False when stopped from the window."""
    keep = bool(out.vis_out_dir) or out.show
    single = len(specs) == 1
    names = [(Path(s.split("?")[0]).stem, Path(s.split("?")[0]).name, s) for s in specs]
    if mode == "mmpose" or folder is None:
        for spec, name in zip(specs, names):
            with open_source(spec) as src:
                for res, frame in _results(model, src, keep):
                    if not _write_image(out, mode, res, frame, name, single, summary):
                        return False
        return True
    with open_source(folder) as src:
        for res, frame in _results(model, src, keep):
            if not _write_image(out, mode, res, frame, names[res.frame_index], single, summary):
                return False
    return True


def run_inferencer(factory: Callable[[], Any], input_spec: str, out: OutputOptions, *,
                   mode: str = "mmpose") -> InferencerSummary:
    """Run the model ``factory()`` returns (an :class:`~.mmpose_mode.InferencerMMPose` or a default-mode
    ``Pose3DPipeline``; called once the input is open and the output folder checked, so that a bad input fails
    before any model loads) over ``input_spec`` (an image, a folder of images, a video, a URL, ``webcam[:N]``),
    writing as ``out`` says."""
    summary = InferencerSummary()
    if (out.vis_out_dir or out.show) and out.visualizer is None:
        raise InputError("--vis-out-dir/--show need a visualizer")
    src = open_source(input_spec)
    t0 = time.perf_counter()
    try:
        if out.pred_out_dir:
            prepare_output_dir(out.pred_out_dir, "--pred-out-dir")
        model = factory()
        if src.info.kind in ("image", "folder"):
            src.close()
            folder = src.info.kind == "folder"
            specs = [str(p) for p in image_files(Path(input_spec))] if folder else [str(input_spec)]
            summary.inputs = len(specs)
            _run_images(model, specs, out, mode, summary, folder=str(input_spec) if folder else None)
        else:
            summary.inputs = 1
            _run_sequence(model, src, out, mode, summary)
    except KeyboardInterrupt:
        log.warning("interrupted after %d frames; outputs so far are kept", summary.frames)
        summary.interrupted = True
    finally:
        src.close()
        if out.show:
            cv2.destroyAllWindows()
    summary.seconds = time.perf_counter() - t0
    return summary
