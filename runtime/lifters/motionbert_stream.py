"""MotionBERT in the streaming pipeline: per-track clips of up to 243 frames (``mode="default"``), or online
windows that end at each frame (``online=True``).

:class:`MotionBERTLifter` is a :class:`~pose3d_rt.lifters.streaming.Lifter` (same ``update`` / ``end_track`` /
``flush`` and :class:`~pose3d_rt.lifters.streaming.LiftedFrame` results, one per input frame, in frame order), so
the pipeline does not care which lifter it has; :func:`make_lifter` picks the class from the model's family.

Clip mode (the default; MotionBERT as it was trained and evaluated, spec ``inferencer.md`` §9):

- every track owns one ring-buffer slot of ``window`` (243) frames (:class:`~pose3d_rt.lifters.pool.Pool`): its
  encoded input ``(x, y, score)``, 2D pixels and scores, and the decoded 3D of its lifted frames;
- a track's frames are cut into consecutive clips of ``clip_frames`` (<= 243) frames from the frame it first
  appeared; each frame is lifted exactly once, with the real context of its clip (no padding, no overlap);
- a clip is run when it is full, when its track ends (:meth:`~pose3d_rt.lifters.streaming.Lifter.end_track`, or
  ``max_missing`` frames without an observation), and at end of stream (:meth:`flush`), with the frames up to the
  track's last observation. Clips of several tracks due in the same frame go to the engine together (one call per
  clip length; the batch holds ``[x; flip(x)]``);
- a frame is emitted once every track observed in it has its 3D: at most ``clip_frames - 1`` frames after it was
  read (:attr:`latency`), so memory is bounded by the tracks and the window, never by the video length.

Gaps: a missing track's slot carries its last observation forward (as the TCN lifter); those frames are part of
its clip but are not emitted for it; a clip without any observation is not run.

Online (``online=True``): each frame is lifted from the window of up to ``clip_frames`` frames of its track that
ends at it (causal, latency 0; one model window per track and frame).

Input per frame: the 2D keypoints converted to H36M (derived joints = mean of their sources, also for the scores),
``norm_pose_2d`` onto the H36M mean box (default; then the codec frame is the H36M 1000 x 1000) or the real frame
size, encoded by :func:`~pose3d_rt.lifters.motionbert.encode_input` with the 2D scores as the third channel (the
original MotionBERT's input; mmpose feeds 1.0, I3). Output: the decode of
:func:`~pose3d_rt.lifters.motionbert.decode` (x 4 factor, root-relative, / 1000) and the common post-processing.
"""
from __future__ import annotations

import logging
from typing import List, Sequence, Tuple, Union

import numpy as np

from ..engines.base import Engine
from ..errors import InputError
from .base import K, LifterModel, as_lifter_model, check_mode, tracked_persons
from .codec import H36M_BBOX_CENTER, H36M_BBOX_SCALE, H36M_FRAME_SIZE, codec_frame_size
from .codec import norm_pose_2d as _norm_pose_2d
from .motionbert import MotionBERTModel, as_motionbert, decode, encode_input
from .streaming import LiftedFrame, Lifter

logger = logging.getLogger(__name__)

MMPOSE_MODE_MESSAGE = (
    "mode='mmpose' with a MotionBERT lifter: mmpose runs MotionBERT only through its Inferencer "
    "(T = 1 windows, constant confidence); use `pose3d-rt inferencer INPUT --pose3d human3d` for those numbers, "
    "or mode='default' for clip lifting"
)


class MotionBERTLifter(Lifter):
    """Streaming MotionBERT lifting of all tracks of a video (module docstring).

    Arguments as :class:`~pose3d_rt.lifters.streaming.Lifter`, plus ``flip`` (flip-test averaging, default on)
    and ``clip_frames`` (frames per clip or online window, default and maximum: the model's window, 243).
    ``mode`` must be ``"default"`` (see :data:`MMPOSE_MODE_MESSAGE`).
    """

    def __init__(self, model: Union[Engine, LifterModel, MotionBERTModel], *, mode: str = "default",
                 online: bool = False, flip: bool = True, clip_frames: int | None = None, norm_pose_2d: bool = True,
                 bbox_center: Sequence[float] = H36M_BBOX_CENTER, bbox_scale: float = H36M_BBOX_SCALE,
                 keypoint_source: str = "h36m", frame_size: Tuple[float, float] | None = None,
                 rebase: str = "frame", postprocess: bool = True, max_missing: int | None = 30,
                 initial_tracks: int = 8) -> None:
        check_mode(mode)
        if mode == "mmpose":
            raise InputError(MMPOSE_MODE_MESSAGE)
        mb = as_motionbert(model, flip=flip)
        window = mb.spec.window
        clip = window if clip_frames is None else int(clip_frames)
        if not 1 <= clip <= window:
            raise InputError(f"clip_frames={clip}: MotionBERT clips are 1 to {window} frames (its temporal "
                             "embedding length)")
        self.clip_frames = clip
        super().__init__(mb, mode="default", online=online, norm_pose_2d=norm_pose_2d, bbox_center=bbox_center,
                         bbox_scale=bbox_scale, keypoint_source=keypoint_source, frame_size=frame_size,
                         rebase=rebase, postprocess=postprocess, max_missing=max_missing,
                         initial_tracks=initial_tracks)
        self._next_emit = 0  # first internal frame not yet emitted
        self._wh = (float(H36M_FRAME_SIZE[0]), float(H36M_FRAME_SIZE[1]))  # the codec frame of the last update
        self._alloc_clip_state(self._pool.capacity)

    def _alloc_clip_state(self, capacity: int) -> None:
        """Per-slot clip bookkeeping, grown with the pool: first unlifted frame, first frame of the track, the
        decoded 3D of the ring positions and which of them are lifted."""
        w = self._pool.window
        old = getattr(self, "_clip_start", None)
        clip_start, born = np.zeros(capacity, np.int64), np.zeros(capacity, np.int64)
        out3d, done = np.zeros((capacity, w, K, 3), np.float32), np.zeros((capacity, w), bool)
        if old is not None:
            n = old.shape[0]
            clip_start[:n], born[:n], out3d[:n], done[:n] = old, self._born, self._out3d, self._done
        self._clip_start, self._born, self._out3d, self._done = clip_start, born, out3d, done

    # -- Lifter hooks ----------------------------------------------------------------------------------------
    @property
    def latency(self) -> int:
        """Frames between an input frame and its output: 0 online, at most ``clip_frames - 1`` in clip mode."""
        return 0 if self.online else self.clip_frames - 1

    def reset(self) -> None:
        super().reset()
        if hasattr(self, "_done"):
            self._done[:] = False
            self._next_emit = 0

    def _normalize(self, kp: np.ndarray, sc: np.ndarray, bb: np.ndarray | None,
                   fsize: Tuple[float, float] | None) -> np.ndarray:
        """``norm_pose_2d`` (optional), then the MotionBERT encode with the 2D scores as channel 3."""
        x = kp
        if self.norm_pose_2d:
            x = _norm_pose_2d(kp, bb, self.bbox_center, self.bbox_scale, min_box_size=1.0)
        self._wh = codec_frame_size(fsize or H36M_FRAME_SIZE, mode="default", norm_pose_2d=self.norm_pose_2d)
        return encode_input(x, self._wh[0], self._wh[1], sc)

    def _slots_for(self, ids: np.ndarray, norm: np.ndarray, kp: np.ndarray, sc: np.ndarray) -> np.ndarray:
        new = np.array([int(i) not in self._slot_of for i in ids], bool)
        slots = super()._slots_for(ids, norm, kp, sc)
        if self._pool.capacity > self._clip_start.shape[0]:
            self._alloc_clip_state(self._pool.capacity)
        fresh = slots[new]
        self._clip_start[fresh] = self._t
        self._born[fresh] = self._t
        self._done[fresh] = False
        return slots

    def _update_default(self, kp: np.ndarray, ids: np.ndarray, sc: np.ndarray, bb: np.ndarray | None,
                        fsize: Tuple[float, float] | None) -> List[LiftedFrame]:
        kp, ids, sc, bb = tracked_persons(kp, ids, sc, bb)
        norm = self._normalize(kp, sc, bb, fsize)
        slots = self._slots_for(ids, norm, kp, sc)
        self._write_frame(slots, norm, kp, sc)
        self._done[:, self._t % self._pool.window] = False
        if self.online:
            frame = self._emit_online_windows(slots, ids)
            self._free(np.flatnonzero((self._pool.track >= 0) & self._pool.ended))
            return [frame]
        self._run_due_clips(final=False)
        return self._emit_ready()

    def _flush_exact(self) -> List[LiftedFrame]:
        self._run_due_clips(final=True)
        return self._emit_ready()

    # -- clips -------------------------------------------------------------------------------------------------
    def _lift_ranges(self, slots: np.ndarray, first: np.ndarray, length: np.ndarray) -> List[np.ndarray]:
        """Run the frames ``first .. first + length - 1`` of each slot's ring through the model, grouped by
        length (one batched call per length); returns the decoded camera-frame 3D ``(length, 17, 3)`` per slot."""
        w = self._pool.window
        out: List[np.ndarray] = [np.zeros((0, K, 3), np.float32)] * slots.size
        for n in np.unique(length):
            rows = np.flatnonzero(length == n)
            pos = (first[rows, None] + np.arange(n)[None, :]) % w
            raw = self.model.infer(self._pool.norm[slots[rows, None], pos])
            dec = decode(raw, *self._wh)
            for r, d in zip(rows, dec):
                out[r] = d
        return out

    def _run_due_clips(self, final: bool) -> None:
        """Lift the clips that are due: full ones, those of ended tracks, and (``final``) every pending one."""
        pool, t, w = self._pool, self._t, self._pool.window
        live = np.flatnonzero(pool.track >= 0)
        cs = self._clip_start[live]
        stop = final | pool.ended[live]
        end = np.where(stop, pool.last_real[live], t)
        due = (stop | (t - cs + 1 >= self.clip_frames)) & (end >= cs)
        slots, first, end = live[due], cs[due], end[due]
        length = end - first + 1
        # a clip with no observation (a track missing throughout) is skipped, not run
        seen = np.array([pool.observed[s, (f + np.arange(n)) % w].any() for s, f, n in zip(slots, first, length)],
                        bool)
        run = np.flatnonzero(seen)
        for r, dec in zip(run, self._lift_ranges(slots[run], first[run], length[run])):
            pos = (first[r] + np.arange(length[r])) % w
            self._out3d[slots[r], pos] = dec
            self._done[slots[r], pos] = True
        self._clip_start[slots] = end + 1
        # a stopped track idle for a whole clip restarts its clip now (a revived track never exceeds the ring)
        cs = self._clip_start[live]
        self._clip_start[live[t - cs + 1 >= self.clip_frames]] = t + 1

    def _emit_ready(self) -> List[LiftedFrame]:
        """Emit, in frame order, the frames whose observed tracks all have their 3D; free ended tracks whose
        frames are all out."""
        pool, w = self._pool, self._pool.window
        frames, rows = [], []
        while self._next_emit <= self._t:
            p = self._next_emit % w
            sl = np.flatnonzero((pool.track >= 0) & pool.observed[:, p])
            if not self._done[sl, p].all():
                break
            frames.append(self._next_emit)
            rows.append(sl[np.argsort(pool.track[sl], kind="stable")])
            self._next_emit += 1
        out = self._frames_from_rows(frames, rows, [self._out3d[sl, e % w] for e, sl in zip(frames, rows)])
        gone = (pool.track >= 0) & pool.ended & (pool.last_real < self._next_emit)
        self._free(np.flatnonzero(gone & (self._clip_start > pool.last_real)))
        return out

    def _frames_from_rows(self, frames: List[int], rows: List[np.ndarray], kp3d: List[np.ndarray]
                          ) -> List[LiftedFrame]:
        """LiftedFrames of internal ``frames``, each with its slots ``rows`` and decoded 3D; the post-processing
        runs once over all of them (rows in frame order, for the per-track rebase)."""
        if not frames:
            return []
        disp = self._finish(np.concatenate(kp3d).reshape(-1, K, 3), np.concatenate(rows))
        return self._lifted_frames(frames, rows, disp)

    def _emit_online_windows(self, slots: np.ndarray, ids: np.ndarray) -> LiftedFrame:
        """This frame, each present track lifted from its window of up to ``clip_frames`` frames ending now."""
        t = self._t
        order = np.argsort(ids, kind="stable")
        slots = slots[order]
        length = np.minimum(t - self._born[slots] + 1, self.clip_frames)
        dec = self._lift_ranges(slots, t - length + 1, length)
        last = [d[-1] for d in dec]
        return self._frames_from_rows([t], [slots], [np.asarray(last, np.float32).reshape(-1, K, 3)])[0]


def make_lifter(model: Union[Engine, LifterModel], **options: object) -> Lifter:
    """The streaming lifter for ``model``: :class:`MotionBERTLifter` for ``family=motionbert``, else the TCN's
    :class:`~pose3d_rt.lifters.streaming.Lifter`. ``options`` are the Lifter's keyword arguments."""
    m = model if isinstance(model, MotionBERTModel) else as_lifter_model(model)
    if m.spec.family == "motionbert":
        return MotionBERTLifter(m, **options)
    return Lifter(m, **options)


__all__ = ["MMPOSE_MODE_MESSAGE", "MotionBERTLifter", "make_lifter"]
