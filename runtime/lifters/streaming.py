"""The streaming :class:`Lifter`: 2D poses of tracked persons in, frame by frame; 3D poses out.

Two modes, one stage (``Lifter(mode=...)``):

``mode="mmpose"`` (parity)
    What ``body3d_pose_lifter_demo.py`` does, bit for bit (:mod:`pose3d_rt.lifters.mmpose_parity`): the demo's
    bounded history and window, ``norm_pose_2d``, ``collate_pose_sequence`` and the codec with the swapped frame
    size, then per-frame rebase and output sorted by track id.

``mode="default"`` (corrected, the product)
    One ring buffer slot per track in a pool ``(slots, W, 17, C)`` (``W`` = model window = receptive field), so
    memory is bounded by the number of concurrent tracks, never by the video length. All tracks of a frame go
    to the model in ONE batched call. Timing:

    - exact (default): the output for frame ``e`` is computed when frame ``e + R`` arrives (``R`` = the model's
      right context: ``RF // 2`` for a centred TCN, 0 for a causal one), so real future frames are used.
      :meth:`Lifter.flush` emits the last ``R`` frames at end of stream with edge replication of each track's
      last frame. Result: identical to running the dilated model offline over each whole track, edge-padded
      (:func:`~pose3d_rt.lifters.base.lift_offline`).
    - ``online=True``: zero latency, frozen future (the newest frame replicated into the right half).

    Track policies (never a zero is injected into a window):

    - a track entering at frame ``k``: its first frame is replicated to the left (left edge replication);
    - a track missing in a frame (a gap): the slot carries its last real observation forward; the track is not
      lifted for the frames where it was not observed, and windows of other frames see the carried pose. When
      the track reappears, real observations resume; already-emitted frames are not revised;
    - a track that ends (:meth:`Lifter.end_track`, e.g. on the tracker's removal signal, or automatically after
      ``max_missing`` consecutive missing frames): the slot keeps replicating its last real frame (exactly the
      right edge replication of offline inference) until its pending frames have been emitted in frame order,
      then it is freed.

    Codec normalisation: with ``norm_pose_2d`` (the default) the canonicalised poses live in H36M pixel space
    and are normalised with the H36M frame (w = h = 1000, docs/MMPOSE_BEHAVIOUR.md, Q2); without it, with the
    real frame width and height. Rebase: ``"frame"`` (mmpose's per-frame ``Z -= min Z``), ``"track"`` (subtract
    the lowest Z seen so far on that track: the causal form of VideoPose3D's single global minimum, Q17) or
    ``"none"``.

The model is any :class:`~pose3d_rt.lifters.base.LifterModel` (or an Engine, wrapped in an
:class:`~pose3d_rt.lifters.base.EngineLifter`); the Lifter reads each window's target frame at
``LifterSpec.output_index``, so a seq2seq lifter (MotionBERT) runs through the same ring buffers, with the score
channel filled when ``in_channels == 3``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence, Tuple, Union

import numpy as np

from ..engines.base import Engine
from ..errors import InputError
from ..keypoint_sets import (
    SOURCE_NUM_KEYPOINTS,
    canonical_dataset_name,
    convert_keypoint_definition,
    convert_keypoint_scores,
)
from .base import K, LifterModel, as_lifter_model, check_mode, tracked_persons
from .codec import (
    H36M_BBOX_CENTER,
    H36M_BBOX_SCALE,
    H36M_FRAME_SIZE,
    codec_frame_size,
    lowest_z,
    normalize_screen_coordinates,
    postprocess_3d,
)
from .codec import norm_pose_2d as _norm_pose_2d
from .mmpose_parity import MMPoseHistory, PoseFrame, mmpose_model_input
from .pool import Pool
from .tcn_stream import StreamingTCNEngine, StreamStates, default_chunk

logger = logging.getLogger(__name__)

REBASE_MODES = ("frame", "track", "none")


@dataclass
class LiftedFrame:
    """The 3D poses of one frame, sorted by track id: ``M`` persons."""

    frame_index: int
    track_ids: np.ndarray  # (M,) int64
    keypoints_3d: np.ndarray  # (M, 17, 3) float32 (display frame after post-processing, metres)
    keypoints_2d: np.ndarray  # (M, 17, 2) float32 pixels, lifter joint order, of frame_index
    scores_2d: np.ndarray  # (M, 17) float32

    @classmethod
    def empty(cls, frame_index: int) -> LiftedFrame:
        return cls(int(frame_index), np.zeros((0,), np.int64), np.zeros((0, K, 3), np.float32),
                   np.zeros((0, K, 2), np.float32), np.zeros((0, K), np.float32))

    def __len__(self) -> int:
        return int(self.track_ids.shape[0])


class Lifter:
    """Streaming 2D -> 3D lifting of all tracks of a video, one batched model call per frame.

    ``update(keypoints_2d, track_ids, ...)`` is called once per frame, in order, and returns the
    :class:`LiftedFrame` s that became ready (exact mode: the frame ``R`` frames back, after a warm-up of ``R``
    frames; online and mmpose mode: this frame). ``flush()`` at end of stream returns the rest. Over a whole
    stream, every input frame yields exactly one LiftedFrame (possibly with no persons), in frame order.

    Arguments: ``model`` an Engine or :class:`LifterModel`; ``mode`` ``"default"`` | ``"mmpose"`` (module
    docstring); ``online`` frozen-future zero-latency timing (default mode; mmpose mode is always online);
    ``norm_pose_2d`` box canonicalisation with ``bbox_center``/``bbox_scale`` (the lifter dataset's
    ``stats_info``); ``keypoint_source`` the 2D model's keypoint set (converted to the model's joint order
    here); ``frame_size`` ``(width, height)`` of the video (may also be given per update); ``rebase``
    ``"frame"`` | ``"track"`` | ``"none"`` and ``postprocess`` (False: raw camera-frame output);
    ``max_missing`` frames a track may be missing before it is ended automatically (None: only
    :meth:`end_track` ends tracks); ``chunk`` frames per engine call of a stream-form TCN (None: ``default_chunk``).
    """

    def __init__(self, model: Union[LifterModel, Engine], *, mode: str = "default", online: bool = False,
                 norm_pose_2d: bool = True, bbox_center: Sequence[float] = H36M_BBOX_CENTER,
                 bbox_scale: float = H36M_BBOX_SCALE, keypoint_source: str = "h36m",
                 frame_size: Tuple[float, float] | None = None, rebase: str = "frame", postprocess: bool = True,
                 max_missing: int | None = 30, initial_tracks: int = 8, chunk: int | None = None) -> None:
        check_mode(mode)
        if rebase not in REBASE_MODES:
            raise InputError(f"rebase must be one of {REBASE_MODES}, got {rebase!r}")
        self.model = as_lifter_model(model)
        self.spec = self.model.spec
        self.mode = mode
        self.online = bool(online) or mode == "mmpose"
        self.norm_pose_2d = bool(norm_pose_2d)
        self.bbox_center = tuple(float(v) for v in bbox_center)
        self.bbox_scale = float(bbox_scale)
        self.keypoint_source = canonical_dataset_name(keypoint_source)
        self.frame_size = None if frame_size is None else (float(frame_size[0]), float(frame_size[1]))
        self.rebase = rebase if postprocess else "none"
        self.postprocess = bool(postprocess)
        self.max_missing = max_missing
        if mode == "mmpose":
            if self.spec.alignment == "seq2seq":
                raise InputError("mode='mmpose' reproduces the TCN demo; it has no seq2seq equivalent")
            if rebase == "track":
                raise InputError("mode='mmpose' rebases per frame (or not at all); rebase='track' is a default-mode option")
        sp = self.spec
        chunk = default_chunk(sp.alignment == "causal") if chunk is None else chunk
        self._stream = self._stream_states(initial_tracks, chunk) if sp.form == "stream" else None
        ring = sp.window if self._stream is None else max(sp.window, sp.frames_right + self._stream.chunk)
        self._history = MMPoseHistory(sp.window, causal=sp.alignment == "causal")
        self._pool = Pool(ring, sp.in_channels, initial_tracks)
        self._slot_of: Dict[int, int] = {}
        self._t = -1  # internal frame counter of the current stream (0-based)
        self._index0 = 0  # caller frame index of internal frame 0
        self._warned_boxes = False

    def _stream_states(self, capacity: int, chunk: int) -> StreamStates:
        """A stream-form TCN (stepped with per-layer states) runs the exact default mode only."""
        if self.mode == "mmpose" or self.online:
            raise InputError(f"{getattr(self.model, 'source', 'the lifter')}: a stream-form lifter computes exact "
                             "delayed results; mode='mmpose' and online=True need a windowed (strided) export")
        engine = getattr(self.model, "engine", None)
        if engine is None:
            raise InputError("a stream-form lifter must be an Engine exported with form=stream")
        return StreamStates(StreamingTCNEngine(engine), capacity, chunk)

    # -- public API ------------------------------------------------------------------------------------------
    @property
    def latency(self) -> int:
        """Frames between an input frame and its output: 0 online, the model's right context in exact mode
        (plus ``chunk - 1`` for a stream-form TCN, which runs once per chunk of frames)."""
        if self.online:
            return 0
        return self.spec.frames_right + (self._stream.chunk - 1 if self._stream is not None else 0)

    @property
    def active_track_ids(self) -> np.ndarray:
        """Track ids currently holding a ring-buffer slot (default mode)."""
        return np.sort(self._pool.track[self._pool.track >= 0])

    @property
    def buffer_shape(self) -> Tuple[int, ...]:
        """Shape of the ring-buffer pool ``(slots, W, 17, C)`` (default mode)."""
        return tuple(self._pool.norm.shape)

    def update(self, keypoints_2d: np.ndarray, track_ids: Iterable[int], *, scores_2d: np.ndarray | None = None,
               bboxes: np.ndarray | None = None, frame_size: Tuple[float, float] | None = None,
               frame_index: int | None = None) -> List[LiftedFrame]:
        """Add one frame's 2D poses (``(n, K, 2)`` pixels in ``keypoint_source`` order, ``(n,)`` track ids,
        ``(n, K)`` scores, ``(n, 4)`` xyxy boxes) and return the frames that became ready."""
        kp, ids, sc, bb = self._prepare(keypoints_2d, track_ids, scores_2d, bboxes)
        fsize = self._frame_size(frame_size)
        if frame_index is None:
            frame_index = self._index0 + self._t + 1
        if self._t >= 0 and int(frame_index) != self._index0 + self._t + 1:
            raise InputError(f"frame_index {frame_index}: expected {self._index0 + self._t + 1} (frames must be "
                             "consecutive; call flush() to start a new stream)")
        if self._t < 0:
            self._index0 = int(frame_index)
        self._t += 1
        if self.mode == "mmpose":
            return [self._update_mmpose(kp, ids, sc, bb, fsize)]
        return self._update_default(kp, ids, sc, bb, fsize)

    def end_track(self, track_id: int) -> None:
        """Finalise a track (the tracker removed it): no more observations are expected.

        Online/mmpose mode: the slot is freed now. Exact mode: the slot keeps replicating the track's last real
        frame until its pending frames (at most ``latency``) have been emitted, in frame order, by later
        :meth:`update` / :meth:`flush` calls; then it is freed.
        """
        slot = self._slot_of.get(int(track_id))
        if slot is None:
            return
        if self.online:
            self._free(np.array([slot]))
        else:
            self._pool.ended[slot] = True

    def end_tracks(self, track_ids: Iterable[int]) -> None:
        for tid in track_ids:
            self.end_track(int(tid))

    def flush(self) -> List[LiftedFrame]:
        """End of stream: emit every pending frame (edge replication of each track's last frame), then reset."""
        out: List[LiftedFrame] = []
        if self.mode == "default" and not self.online and self._t >= 0:
            out = self._flush_exact()
        self.reset()
        return out

    def reset(self) -> None:
        """Forget everything (a new stream starts with the next update)."""
        sp = self.spec
        self._history = MMPoseHistory(sp.window, causal=sp.alignment == "causal")
        self._pool.release(np.arange(self._pool.capacity))
        self._slot_of.clear()
        self._t = -1
        if self._stream is not None:
            self._stream.reset()

    # -- input preparation -----------------------------------------------------------------------------------
    def _frame_size(self, frame_size: Tuple[float, float] | None) -> Tuple[float, float] | None:
        if frame_size is not None:
            self.frame_size = (float(frame_size[0]), float(frame_size[1]))
        if self.frame_size is None and (self.mode == "mmpose" or not self.norm_pose_2d):
            raise InputError("the lifter needs the frame size (width, height): pass frame_size=")
        return self.frame_size

    def _prepare(self, keypoints_2d: np.ndarray, track_ids: Iterable[int], scores_2d: np.ndarray | None,
                 bboxes: np.ndarray | None) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        kp = np.asarray(keypoints_2d, dtype=np.float32)
        if kp.size == 0 and kp.ndim < 3:
            kp = kp.reshape(0, SOURCE_NUM_KEYPOINTS[self.keypoint_source], 2)
        if kp.ndim != 3 or kp.shape[-1] < 2:
            raise InputError(f"keypoints_2d must be (n, K, 2) pixels, got {kp.shape}")
        kp = kp[..., :2]
        n = kp.shape[0]
        ids = np.asarray(list(track_ids) if not isinstance(track_ids, np.ndarray) else track_ids, np.int64)
        ids = ids.reshape(-1)
        if ids.shape != (n,):
            raise InputError(f"track_ids must have one id per person ({n}), got shape {ids.shape}")
        sc = np.ones(kp.shape[:2], np.float32) if scores_2d is None else np.asarray(scores_2d, np.float32)
        if sc.shape != kp.shape[:2]:
            raise InputError(f"scores_2d must be {kp.shape[:2]}, got {sc.shape}")
        bb = None
        if bboxes is not None:
            bb = np.asarray(bboxes, np.float32).reshape(-1, 4) if np.size(bboxes) else np.zeros((0, 4), np.float32)
            if bb.shape != (n, 4):
                raise InputError(f"bboxes must be ({n}, 4) xyxy, got {bb.shape}")
        order = self.spec.input_joint_order
        if order == "h36m":
            kp = convert_keypoint_definition(kp, self.keypoint_source)
            sc = convert_keypoint_scores(sc, self.keypoint_source)
        elif self.keypoint_source in ("coco", "coco_wholebody", "posetrack18"):
            kp, sc = kp[:, :K], sc[:, :K]
        else:
            raise InputError(f"the lifter expects COCO-ordered input; cannot feed {self.keypoint_source} keypoints")
        if bb is None and self.norm_pose_2d:
            if self.mode == "mmpose":
                raise InputError("mode='mmpose' with norm_pose_2d needs the person boxes (bboxes=)")
            if not self._warned_boxes:
                logger.warning("lifter: no boxes given; norm_pose_2d uses the keypoints' bounding boxes")
                self._warned_boxes = True
            bb = np.concatenate([kp.min(axis=1), kp.max(axis=1)], axis=1) if n else np.zeros((0, 4), np.float32)
        return kp, ids, sc, bb

    def _normalize(self, kp: np.ndarray, sc: np.ndarray, bb: np.ndarray | None,
                   fsize: Tuple[float, float] | None) -> np.ndarray:
        x = kp
        if self.norm_pose_2d:
            x = _norm_pose_2d(kp, bb, self.bbox_center, self.bbox_scale, min_box_size=1.0)
        w, h = codec_frame_size(fsize or H36M_FRAME_SIZE, mode="default", norm_pose_2d=self.norm_pose_2d)
        x = normalize_screen_coordinates(x, w, h)
        if self.spec.in_channels == 3:
            x = np.concatenate([x, sc[..., None]], axis=-1)
        return x

    # -- output --------------------------------------------------------------------------------------------
    def _run(self, windows: np.ndarray) -> np.ndarray:
        """One model call: ``(B, W, 17, C)`` -> raw camera-frame ``(B, 17, 3)`` of each window's target frame."""
        if windows.shape[0] == 0:
            return np.zeros((0, K, 3), np.float32)
        return self.model.infer(windows)[:, self.spec.output_index]

    def _finish(self, raw: np.ndarray, floors_slots: np.ndarray | None) -> np.ndarray:
        if not self.postprocess:
            return raw.astype(np.float32)
        if self.rebase == "track" and floors_slots is not None:
            disp = postprocess_3d(raw, rebase=False)
            pool, lz = self._pool, lowest_z(disp)
            floors = np.empty_like(lz)
            for s in np.unique(floors_slots):  # rows are in frame order: running minimum per track
                rows = floors_slots == s
                run = np.minimum.accumulate(np.concatenate([pool.floor[s:s + 1], lz[rows]]))[1:]
                floors[rows] = run
                pool.floor[s] = run[-1]
            disp[..., 2] -= floors[:, None]
            return disp
        return postprocess_3d(raw, rebase=self.rebase == "frame")

    # -- mmpose mode -----------------------------------------------------------------------------------------
    def _update_mmpose(self, kp: np.ndarray, ids: np.ndarray, sc: np.ndarray, bb: np.ndarray | None,
                       fsize: Tuple[float, float]) -> LiftedFrame:
        frame = PoseFrame(kp, ids, bb, sc)
        self._history.append(frame)
        frame_index = self._index0 + self._t
        window = self._history.window(self._history.num_frames)  # Q1: the demo's 1-based frame number
        inp = mmpose_model_input(window, image_size_arg=codec_frame_size(fsize, mode="mmpose"),
                                 norm_pose_2d=self.norm_pose_2d, bbox_center=self.bbox_center,
                                 bbox_scale=self.bbox_scale, causal=self.spec.alignment == "causal")
        if len(inp.rows) == 0:
            return LiftedFrame.empty(frame_index)
        raw = self._run(inp.model_input)  # decode: + target_root, which is zero at inference
        kp3d = self._finish(raw, None)
        tgt = window[inp.target]  # the target slot holds the current frame (Q1), so rows index this frame
        order = np.argsort(inp.track_ids, kind="stable")
        rows = inp.rows[order]
        return LiftedFrame(frame_index, inp.track_ids[order], kp3d[order], tgt.keypoints[rows, :, :2],
                           tgt.scores[rows] if tgt.scores is not None else np.ones((len(rows), K), np.float32))

    # -- default mode --------------------------------------------------------------------------------------
    def _free(self, slots: np.ndarray) -> None:
        for s in slots:
            self._slot_of.pop(int(self._pool.track[s]), None)
        self._pool.release(slots)

    def _update_default(self, kp: np.ndarray, ids: np.ndarray, sc: np.ndarray, bb: np.ndarray | None,
                        fsize: Tuple[float, float] | None) -> List[LiftedFrame]:
        kp, ids, sc, bb = tracked_persons(kp, ids, sc, bb)
        pool, t = self._pool, self._t
        norm = self._normalize(kp, sc, bb, fsize)

        slots = self._slots_for(ids, norm, kp, sc)
        self._write_frame(slots, norm, kp, sc)
        if self.online:
            frame = self._emit_online(slots, ids)
            self._free(np.flatnonzero((pool.track >= 0) & pool.ended))
            return [frame]
        if self._stream is not None:
            out = self._emit_stream(t) if self._stream.due(t) else []
            e = self._stream.next_frame - 1 - self.spec.frames_right  # the last frame emitted
        else:
            e = t - self.spec.frames_right
            out = [] if e < 0 else [self._emit_exact([e], last=t)[0]]
        done = (pool.track >= 0) & pool.ended & (pool.last_real <= max(e, -1))
        self._free(np.flatnonzero(done))
        return out

    def _write_frame(self, slots: np.ndarray, norm: np.ndarray, kp: np.ndarray, sc: np.ndarray) -> None:
        """Frame ``t`` into the ring: present tracks get their pose, absent ones carry their last frame forward."""
        pool, t, w = self._pool, self._t, self._pool.window
        pos = t % w
        pool.norm[slots, pos] = norm
        pool.kp2d[slots, pos] = kp
        pool.sc2d[slots, pos] = sc
        pool.observed[slots, pos] = True
        pool.last_real[slots] = t
        pool.missing[slots] = 0
        pool.ended[slots] = False  # a track that comes back after end_track() is revived
        # absent tracks (gaps and ended tracks): carry the last frame forward (never zeros)
        live = np.flatnonzero(pool.track >= 0)
        absent = np.setdiff1d(live, slots, assume_unique=True)
        if absent.size and t > 0:
            prev = (t - 1) % w
            pool.norm[absent, pos] = pool.norm[absent, prev]
            pool.kp2d[absent, pos] = pool.kp2d[absent, prev]
            pool.sc2d[absent, pos] = pool.sc2d[absent, prev]
            pool.observed[absent, pos] = False
            pool.missing[absent] += 1
            if self.max_missing is not None:
                pool.ended[absent[pool.missing[absent] > self.max_missing]] = True

    def _slots_for(self, ids: np.ndarray, norm: np.ndarray, kp: np.ndarray, sc: np.ndarray) -> np.ndarray:
        """The pool slot of each track id: existing tracks keep theirs; a new track takes a free slot whose whole
        ring is filled with its first frame (left edge replication)."""
        pool, t = self._pool, self._t
        slots = np.array([self._slot_of.get(int(i), -1) for i in ids], np.int64)
        new = slots < 0
        if new.any():
            fresh = pool.take(int(new.sum()))
            if self._stream is not None:
                self._stream.grow(pool.capacity)
                self._stream.born[fresh] = t
            slots[new] = fresh
            for s, tid in zip(fresh, ids[new]):
                self._slot_of[int(tid)] = int(s)
            pool.track[fresh] = ids[new]
            pool.norm[fresh] = norm[new][:, None]
            pool.kp2d[fresh] = kp[new][:, None]
            pool.sc2d[fresh] = sc[new][:, None]
            pool.observed[fresh] = False
            pool.floor[fresh] = np.inf
        return slots

    def _emit_online(self, slots: np.ndarray, ids: np.ndarray) -> LiftedFrame:
        sp, t, w = self.spec, self._t, self._pool.window
        frame_index = self._index0 + t
        if slots.size == 0:
            return LiftedFrame.empty(frame_index)
        past = (t - sp.frames_left + np.arange(sp.frames_left + 1)) % w
        positions = np.concatenate([past, np.full(sp.frames_right, t % w)])
        order = np.argsort(ids, kind="stable")
        slots = slots[order]
        raw = self._run(self._pool.norm[slots[:, None], positions[None, :]])
        pool = self._pool
        return LiftedFrame(frame_index, ids[order], self._finish(raw, slots), pool.kp2d[slots, t % w].copy(),
                           pool.sc2d[slots, t % w].copy())

    def _emit_exact(self, frames: Sequence[int], last: int) -> List[LiftedFrame]:
        """Emit internal frames ``frames`` (all > last - W), future frames beyond ``last`` edge-replicated;
        all (frame, track) windows go to the model in one call."""
        sp, pool, w = self.spec, self._pool, self._pool.window
        live = np.flatnonzero(pool.track >= 0)
        batch_slots, batch_pos, owners = [], [], []
        for k, e in enumerate(frames):
            ep = e % w
            sl = live[pool.observed[live, ep]]
            sl = sl[np.argsort(pool.track[sl], kind="stable")]
            f = np.minimum(e - sp.frames_left + np.arange(w), last)
            batch_slots.append(sl)
            batch_pos.append(np.broadcast_to(f % w, (sl.size, w)))
            owners.append(np.full(sl.size, k))
        slots = np.concatenate(batch_slots) if batch_slots else np.zeros(0, np.int64)
        positions = np.concatenate(batch_pos) if batch_pos else np.zeros((0, w), np.int64)
        owner = np.concatenate(owners) if owners else np.zeros(0, np.int64)
        raw = self._run(pool.norm[slots[:, None], positions])
        kp3d = self._finish(raw, slots)
        out = []
        for k, e in enumerate(frames):
            sel = owner == k
            sl = slots[sel]
            ep = e % w
            out.append(LiftedFrame(self._index0 + e, pool.track[sl].copy(), kp3d[sel], pool.kp2d[sl, ep].copy(),
                                   pool.sc2d[sl, ep].copy()))
        return out

    def _flush_exact(self) -> List[LiftedFrame]:
        t = self._t
        if self._stream is not None:
            return self._emit_stream(t, final=True)
        first = max(0, t - self.spec.frames_right + 1)
        return self._emit_exact(list(range(first, t + 1)), last=t)

    def _emit_stream(self, t: int, final: bool = False) -> List[LiftedFrame]:
        """Feed frames ``next_frame .. t`` of every live track to the stream-form TCN in one call (at the end of
        the stream, followed by ``R`` copies of each track's frame ``t``: the right edge) and emit the frames
        whose results came out, in frame order."""
        st, pool, w, r = self._stream, self._pool, self._pool.window, self.spec.frames_right
        first = st.next_frame
        extra = r if final else 0
        if first > t and not extra:
            return []
        live = np.flatnonzero(pool.track >= 0)
        cols = pool.norm[live[:, None], (np.arange(first, t + 1) % w)[None, :]]
        if extra:  # the right edge: each track's frame t, repeated
            edge = pool.norm[live, t % w][:, None]
            cols = np.concatenate([cols, np.repeat(edge, extra, axis=1)], axis=1)
        raw = st.run(live, cols) if live.size else np.zeros((0, cols.shape[1], K, 3), np.float32)
        if not live.size:
            st.next_frame += cols.shape[1]
        frames = [e for e in range(first - r, first - r + cols.shape[1]) if 0 <= e <= t]
        rows = [live[pool.observed[live, e % w]] for e in frames]
        rows = [sl[np.argsort(pool.track[sl], kind="stable")] for sl in rows]
        slots = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        cols_of = np.concatenate([np.full(sl.size, e - first + r) for e, sl in zip(frames, rows)]) if rows else slots
        where = np.searchsorted(live, slots)  # row of each slot in ``raw``
        kp3d = self._finish(raw[where, cols_of] if slots.size else np.zeros((0, K, 3), np.float32), slots)
        return self._lifted_frames(frames, rows, kp3d)

    def _lifted_frames(self, frames: List[int], rows: List[np.ndarray], kp3d: np.ndarray) -> List[LiftedFrame]:
        """One LiftedFrame per internal frame of ``frames``: its slots ``rows`` and their 3D (``kp3d`` rows in the
        same order, frame after frame), with the 2D kept in the ring."""
        pool, w = self._pool, self._pool.window
        out, k = [], 0
        for e, sl in zip(frames, rows):
            out.append(LiftedFrame(self._index0 + e, pool.track[sl].copy(), kp3d[k:k + sl.size],
                                   pool.kp2d[sl, e % w].copy(), pool.sc2d[sl, e % w].copy()))
            k += sl.size
        return out


__all__ = ["REBASE_MODES", "LiftedFrame", "Lifter"]
