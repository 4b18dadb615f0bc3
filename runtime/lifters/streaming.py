"""2D -> 3D lifting: the mmpose parity data path, the lifter-model interface and the streaming :class:`Lifter`.

Specs: ``docs/spec/lifter.md`` §4-5 and ``docs/spec/demo_flow.md`` §5.6-5.9, §11-12 (quirks Q1, Q2, Q4, Q5, Q9,
Q17), ``docs/spec/inferencer.md`` §9 (MotionBERT).

Two modes, one stage (``Lifter(mode=...)``):

``mode="mmpose"`` (parity)
    What ``body3d_pose_lifter_demo.py`` does, bit for bit: a bounded history of per-frame results
    (:class:`MMPoseHistory`, only the frames the demo's window can reach are kept, Q4), the demo's window
    (``extract_pose_sequence`` with the 1-based frame number as index, Q1; frozen future, Q5), ``norm_pose_2d``,
    ``collate_pose_sequence`` (including the zero-replication bug at a track's right edge, Q9), the codec with
    the swapped ``(w, h) = (H, W)`` (Q2), per-frame rebase, output sorted by track id. The same functions
    (:func:`window_indices`, :func:`collate_pose_sequence`, :func:`mmpose_model_input`) reproduce the
    ``tests/fixtures/lift`` reference windows and model inputs.

``mode="default"`` (corrected, the product)
    One ring buffer slot per track in a pool ``(slots, W, 17, C)`` (``W`` = model window = receptive field), so
    memory is bounded by the number of concurrent tracks, never by the video length. All tracks of a frame go
    to the model in ONE batched call. Timing:

    - exact (default): the output for frame ``e`` is computed when frame ``e + R`` arrives (``R`` = the model's
      right context: ``RF // 2`` for a centred TCN, 0 for a causal one), so real future frames are used.
      :meth:`Lifter.flush` emits the last ``R`` frames at end of stream with edge replication of each track's
      last frame. Result: identical to running the dilated model offline over each whole track, edge-padded
      (:func:`lift_offline`).
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
    and are normalised with the H36M frame (w = h = 1000, demo_flow.md §11 Q2); without it, with the real
    frame width and height. Rebase: ``"frame"`` (mmpose's per-frame ``Z -= min Z``), ``"track"`` (subtract the
    lowest Z seen so far on that track: the causal form of VideoPose3D's single global minimum, Q17) or
    ``"none"``.

Lifter models (:class:`LifterModel`, :class:`LifterSpec`) describe a network by its window length, input
channels (2 = x, y; 3 = x, y, score), output frames per window and alignment (``center`` / ``causal`` /
``seq2seq``). The TCN (strided: ``W = RF`` frames in, 1 frame out; dilated: ``T >= RF`` in, ``T - RF + 1`` out)
is one configuration; a sequence-to-sequence lifter such as MotionBERT (243 frames of (x, y, score) in, 243
frames of 3D out) is another: ``LifterSpec(family="motionbert", window=243, receptive_field=243, in_channels=3,
output_frames=243, alignment="seq2seq")``. The Lifter then feeds it the same centred 243-frame windows (with
the score channel filled from the ring buffer) and reads the output frame at the window's target position
(``LifterSpec.output_index``); the engine metadata ``family=motionbert`` selects this. What a MotionBERT config
adds beyond this module is its own output decode (root zeroing, scaling by the codec's ``w/2``) and optional
flip averaging, both per-frame functions applied to the ``(B, 17, 3)`` model output.
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, Iterable, List, Protocol, Sequence, Tuple, Union

import numpy as np

from ..engines.base import Engine
from ..engines.errors import ModelError
from ..errors import InputError
from ..keypoints import (
    H36M_BBOX_CENTER,
    H36M_BBOX_SCALE,
    H36M_FRAME_SIZE,
    H36M_NUM_KEYPOINTS,
    SOURCE_NUM_KEYPOINTS,
    canonical_dataset_name,
    convert_keypoint_definition,
    convert_keypoint_scores,
    lowest_z,
    normalize_screen_coordinates,
    postprocess_3d,
)
from ..keypoints import (
    norm_pose_2d as _norm_pose_2d,
)
from ..metadata import meta_bool, meta_int

logger = logging.getLogger(__name__)

MODES = ("default", "mmpose")
LIFTER_FAMILIES = ("tcn", "motionbert")
ALIGNMENTS = ("center", "causal", "seq2seq")
FORMS = ("strided", "dilated", "seq2seq")
REBASE_MODES = ("frame", "track", "none")
K = H36M_NUM_KEYPOINTS


# ---------------------------------------------------------------------------------------------------------------
# codec frame size (Q2)
# ---------------------------------------------------------------------------------------------------------------


def codec_frame_size(frame_wh: Tuple[float, float], *, mode: str = "default", norm_pose_2d: bool = True
                     ) -> Tuple[float, float]:
    """The ``(w, h)`` the VideoPoseLifting codec normalises with, for a frame of size ``frame_wh = (W, H)``.

    - ``mode="mmpose"``: ``(H, W)``. The demo passes ``frame.shape[:2]`` where ``(w, h)`` is expected (Q2).
    - ``mode="default"`` with ``norm_pose_2d``: the H36M frame ``(1000, 1000)``, because the canonicalised
      poses live in H36M pixel space (lifter.md §5.9, demo_flow.md §11 Q2).
    - ``mode="default"`` without it: the real ``(W, H)``.
    """
    _check_mode(mode)
    w, h = (float(v) for v in frame_wh)
    if not (w > 0 and h > 0):
        raise InputError(f"frame size must be (width, height) > 0, got {frame_wh}")
    if mode == "mmpose":
        return h, w
    if norm_pose_2d:
        return float(H36M_FRAME_SIZE[0]), float(H36M_FRAME_SIZE[1])
    return w, h


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise InputError(f"lifter mode must be one of {MODES}, got {mode!r}")


# ---------------------------------------------------------------------------------------------------------------
# lifter model interface
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LifterSpec:
    """What the :class:`Lifter` needs to know about a lifting network.

    ``window``: frames per model call (``T``); ``receptive_field``: frames that influence one output frame;
    ``in_channels``: 2 (x, y) or 3 (x, y, score); ``output_frames``: frames of 3D per call (1 for the strided
    TCN, ``T - RF + 1`` for the dilated TCN, ``T`` for seq2seq); ``alignment``: ``center`` (target in the middle),
    ``causal`` (target = last frame) or ``seq2seq`` (output frame ``j`` belongs to input frame ``j``);
    ``form``: ``strided`` | ``dilated`` (TCN; a dilated graph accepts any ``T >= RF``) | ``seq2seq``;
    ``input_joint_order``: the 17-joint order the network expects (``h36m``, or ``coco`` for VideoPose3D's
    in-the-wild Detectron checkpoint); ``dataset``: the lifter's training dataset (its ``stats_info``).
    """

    window: int
    receptive_field: int
    family: str = "tcn"
    in_channels: int = 2
    output_frames: int = 1
    alignment: str = "center"
    form: str = "strided"
    input_joint_order: str = "h36m"
    dataset: str = "h36m"

    def __post_init__(self) -> None:
        if self.family not in LIFTER_FAMILIES:
            raise ModelError(f"lifter family {self.family!r}: expected one of {LIFTER_FAMILIES}")
        if self.alignment not in ALIGNMENTS:
            raise ModelError(f"lifter alignment {self.alignment!r}: expected one of {ALIGNMENTS}")
        if self.form not in FORMS:
            raise ModelError(f"lifter form {self.form!r}: expected one of {FORMS}")
        if self.in_channels not in (2, 3):
            raise ModelError(f"lifter in_channels={self.in_channels}: expected 2 (x, y) or 3 (x, y, score)")
        if not (1 <= self.receptive_field <= self.window):
            raise ModelError(f"lifter receptive_field={self.receptive_field} must be in [1, window={self.window}]")
        if self.input_joint_order not in ("h36m", "coco"):
            raise ModelError(f"lifter input_joint_order={self.input_joint_order!r}: expected 'h36m' or 'coco'")

    @property
    def frames_left(self) -> int:
        """Past frames in a window before the target frame."""
        return self.window - 1 if self.alignment == "causal" else (self.window - 1) // 2

    @property
    def frames_right(self) -> int:
        """Future frames after the target (the exact mode's latency in frames)."""
        return self.window - 1 - self.frames_left

    @property
    def target_index(self) -> int:
        """Window position of the frame being lifted."""
        return self.frames_left

    @property
    def output_offset(self) -> int:
        """Window position that output frame 0 belongs to."""
        if self.alignment == "seq2seq":
            return 0
        if self.alignment == "causal":
            return self.receptive_field - 1
        return (self.receptive_field - 1) // 2

    @property
    def output_index(self) -> int:
        """Index into the model's output frames of the target frame's pose."""
        return self.target_index - self.output_offset


class LifterModel(Protocol):
    """A lifting network: ``infer((B, window, 17, in_channels) float32) -> (B, output_frames, 17, 3)``."""

    spec: LifterSpec

    def infer(self, windows: np.ndarray) -> np.ndarray:
        ...


_meta_int = meta_int
_meta_bool = meta_bool


def _static(dim: Any) -> int | None:
    return dim if isinstance(dim, (int, np.integer)) and dim >= 0 else None


#: Largest number of windows sent to a lifter engine in one call (bounds memory on long flushes).
MAX_WINDOWS_PER_CALL = 64


class EngineLifter:
    """:class:`LifterModel` over an :class:`~pose3d_rt.engines.Engine` (ONNX Runtime / TensorRT).

    The engine takes ``keypoints`` ``(N, T, 17, C)`` float32 (the codec-normalised 2D, joint-major) and returns
    ``(N, F, 17, 3)`` (a rank-3 ``(N, 17, 3)`` output is read as ``F = 1``). Metadata keys (all optional):
    ``family`` (``tcn`` | ``motionbert``), ``receptive_field``, ``causal``, ``form`` (``strided`` | ``dilated``),
    ``input_joint_order`` (``h36m`` | ``coco``), ``dataset``, ``window``. Defaults: a static ``T`` gives the
    receptive field and ``form=strided``; a dynamic ``T`` needs ``receptive_field`` and means ``dilated``.
    The engine is validated on construction: anything that is not a lifter (a detector, a pose model) raises
    :class:`ModelError` naming the file and what was expected.
    """

    def __init__(self, engine: Engine, spec: LifterSpec | None = None) -> None:
        self.engine = engine
        self.source = str(getattr(engine, "path", "") or "<lifter engine>")
        self.input_name, self.output_name, derived = self._validate(engine)
        self.spec = spec or derived
        # a fixed batch dimension of the engine (each call then gets exactly that many windows), else None
        self.static_batch = next((_static(s.shape[0]) for s in engine.inputs if s.name == self.input_name), None)

    def _validate(self, engine: Engine) -> Tuple[str, str, LifterSpec]:
        src = self.source
        meta = {str(k): str(v) for k, v in (getattr(engine, "metadata", None) or {}).items()}
        family = meta.get("family", "tcn").strip().lower()
        if family not in LIFTER_FAMILIES:
            raise ModelError(
                f"{src}: metadata family={family!r}; a lifter must be one of {LIFTER_FAMILIES} "
                "(was a detector or 2D pose model passed as the lifter?)"
            )
        inputs = list(getattr(engine, "inputs", ()) or ())
        outputs = list(getattr(engine, "outputs", ()) or ())
        if not inputs or not outputs:
            raise ModelError(f"{src}: the lifter engine declares no inputs/outputs")
        named = [s for s in inputs if s.name == "keypoints"]
        if named:
            spec_in = named[0]
        elif len(inputs) == 1:
            spec_in = inputs[0]
        else:
            raise ModelError(f"{src}: expected one lifter input named 'keypoints' (N, T, 17, 2|3), got "
                             f"{[s.describe() for s in inputs]}")
        shape = tuple(spec_in.shape)
        expected = "an input 'keypoints' of shape (N, T, 17, 2|3) float32"
        if len(shape) != 4:
            raise ModelError(f"{src}: expected {expected}, got {spec_in.describe()} "
                             "(is this a lifter model? detectors and 2D pose models take images)")
        j, c = _static(shape[2]), _static(shape[3])
        if (j is not None and j != K) or (c is not None and c not in (2, 3)):
            raise ModelError(f"{src}: expected {expected}, got {spec_in.describe()} "
                             "(is this a lifter model? detectors and 2D pose models take images)")
        if np.dtype(spec_in.dtype) != np.float32:
            raise ModelError(f"{src}: expected {expected}, got dtype {np.dtype(spec_in.dtype).name}")
        spec_out = outputs[0]
        oshape = tuple(spec_out.shape)
        if len(oshape) not in (3, 4) or (_static(oshape[-1]) not in (None, 3)) or (_static(oshape[-2]) not in (None, K)):
            raise ModelError(f"{src}: expected a lifter output (N, F, 17, 3), got {spec_out.describe()}")

        t_static = _static(shape[1])
        rf = _meta_int(meta, "receptive_field", src)
        form = meta.get("form")
        if family == "motionbert":
            form = "seq2seq"
        elif form is None:
            form = "strided" if t_static is not None else "dilated"
        form = form.strip().lower()
        if form not in FORMS:
            raise ModelError(f"{src}: metadata form={form!r}: expected one of {FORMS}")
        if rf is None:
            if t_static is None:
                raise ModelError(f"{src}: the lifter's time axis is dynamic and metadata has no receptive_field")
            rf = t_static
        window = _meta_int(meta, "window", src) or t_static or rf
        if form == "strided" and t_static is not None and t_static != rf:
            raise ModelError(f"{src}: strided lifter with T={t_static} frames but receptive_field={rf}")
        if t_static is not None and t_static != window:
            raise ModelError(f"{src}: static T={t_static} disagrees with metadata window={window}")
        causal = bool(_meta_bool(meta, "causal", src))
        alignment = "seq2seq" if form == "seq2seq" else ("causal" if causal else "center")
        if form == "seq2seq":
            out_frames = window
        elif form == "dilated":
            out_frames = window - rf + 1
        else:
            out_frames = 1
        in_channels = c if c is not None else (_meta_int(meta, "in_channels", src) or (3 if family == "motionbert" else 2))
        order = meta.get("input_joint_order", "h36m").strip().lower()
        try:
            spec = LifterSpec(window=window, receptive_field=rf, family=family, in_channels=in_channels,
                              output_frames=out_frames, alignment=alignment, form=form,
                              input_joint_order=order, dataset=meta.get("dataset", "h36m").strip().lower())
        except ModelError as e:
            raise ModelError(f"{src}: {e}") from None
        return spec_in.name, spec_out.name, spec

    def infer(self, windows: np.ndarray) -> np.ndarray:
        """``(B, T, 17, C)`` -> ``(B, F, 17, 3)`` float32 (``T = window``; a dilated graph accepts ``T >= RF``)."""
        x = np.ascontiguousarray(windows, dtype=np.float32)
        sp = self.spec
        if x.ndim != 4 or x.shape[2:] != (K, sp.in_channels):
            raise InputError(f"lifter windows must be (B, T, {K}, {sp.in_channels}), got {x.shape}")
        t = x.shape[1]
        if (sp.form == "dilated" and t < sp.receptive_field) or (sp.form != "dilated" and t != sp.window):
            raise InputError(f"{self.source}: got a window of {t} frames, the model needs {sp.window}")
        f_expected = t - sp.receptive_field + 1 if sp.form == "dilated" else sp.output_frames
        if x.shape[0] == 0:
            return np.zeros((0, f_expected, K, 3), np.float32)
        # Bounded calls: at most MAX_WINDOWS_PER_CALL windows (an end-of-stream flush can hold hundreds); a static
        # batch dimension gets exactly its size (the last chunk zero-padded).
        static = self.static_batch
        step = static or MAX_WINDOWS_PER_CALL
        parts = []
        for s in range(0, x.shape[0], step):
            part = x[s:s + step]
            n = part.shape[0]
            if static and n < static:
                part = np.concatenate([part, np.zeros((static - n,) + part.shape[1:], np.float32)])
            out = self.engine.run({self.input_name: part})
            y = np.asarray(out[self.output_name] if self.output_name in out else next(iter(out.values())),
                           dtype=np.float32)
            if y.ndim == 3:
                y = y[:, None]
            if y.shape != (part.shape[0], f_expected, K, 3):
                raise ModelError(f"{self.source}: lifter output {y.shape}, expected {(part.shape[0], f_expected, K, 3)}")
            parts.append(y[:n])
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


def as_lifter_model(model: Union[LifterModel, Engine]) -> LifterModel:
    """Wrap an Engine in :class:`EngineLifter`; pass a :class:`LifterModel` through."""
    if isinstance(model, Engine):
        return EngineLifter(model)
    if hasattr(model, "spec") and hasattr(model, "infer"):
        return model
    if hasattr(model, "run") and hasattr(model, "inputs"):
        return EngineLifter(model)  # duck-typed engine
    raise ModelError(f"{model!r} is neither a lifter Engine nor a LifterModel")


# ---------------------------------------------------------------------------------------------------------------
# parity data path: extract_pose_sequence / collate_pose_sequence / codec
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class PoseFrame:
    """The 2D results of one frame, in the lifter's joint order: ``n`` persons."""

    keypoints: np.ndarray  # (n, 17, C) pixels
    track_ids: np.ndarray  # (n,) int64
    bboxes: np.ndarray | None = None  # (n, 4) xyxy
    scores: np.ndarray | None = None  # (n, 17)

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
        if self.keypoints.ndim != 3:
            raise InputError(f"PoseFrame keypoints must be (n, K, C), got {self.keypoints.shape}")
        n = self.keypoints.shape[0]
        self.track_ids = np.asarray(self.track_ids, dtype=np.int64).reshape(-1)
        if self.track_ids.shape != (n,):
            raise InputError(f"PoseFrame track_ids must be ({n},), got {self.track_ids.shape}")
        if self.bboxes is not None:
            self.bboxes = np.asarray(self.bboxes, dtype=np.float32).reshape(-1, 4)
            if len(self.bboxes) != n:
                raise InputError(f"PoseFrame bboxes must be ({n}, 4), got {self.bboxes.shape}")
        if self.scores is not None:
            self.scores = np.asarray(self.scores, dtype=np.float32)
            if self.scores.shape != self.keypoints.shape[:2]:
                raise InputError(f"PoseFrame scores must be {self.keypoints.shape[:2]}, got {self.scores.shape}")

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])


def sequence_context(seq_len: int, causal: bool) -> Tuple[int, int]:
    """``(frames_left, frames_right)`` of mmpose's window rule."""
    if seq_len < 1:
        raise InputError(f"seq_len must be >= 1, got {seq_len}")
    if causal:
        return seq_len - 1, 0
    half = (seq_len - 1) // 2
    return half, half


def window_indices(num_frames: int, frame_idx: int, *, seq_len: int, causal: bool = False, step: int = 1
                   ) -> np.ndarray:
    """Indices into a history of ``num_frames`` frames that mmpose's ``extract_pose_sequence`` picks.

    Python integer semantics throughout (floor division, slicing), so the demo's 1-based call
    ``frame_idx = num_frames`` (Q1) gives exactly the demo's window: one extra right-pad copy of the newest frame
    and the past shifted by one slot.
    """
    if num_frames < 1:
        raise InputError("extract_pose_sequence needs a non-empty history")
    if step < 1:
        raise InputError(f"step must be >= 1, got {step}")
    fl, fr = sequence_context(seq_len, causal)
    n, i = int(num_frames), int(frame_idx)
    pad_left = max(0, fl - i // step)
    pad_right = max(0, fr - (n - 1 - i) // step)
    start = max(i % step, i - fl * step)
    end = min(n - (n - 1 - i) % step, i + fr * step + 1)
    mid = range(*slice(start, end, step).indices(n))
    return np.array([0] * pad_left + list(mid) + [n - 1] * pad_right, dtype=np.int64)


def extract_pose_sequence(history: Sequence[Any], frame_idx: int, *, seq_len: int, causal: bool = False,
                          step: int = 1) -> List[Any]:
    """mmpose's ``extract_pose_sequence``: the list of (references to) history elements in the window."""
    return [history[int(j)] for j in window_indices(len(history), frame_idx, seq_len=seq_len, causal=causal,
                                                    step=step)]


@dataclass
class WindowArrays:
    """A window of frames stacked into padded arrays (the layout of the lift fixtures' ``seq_*`` arrays).

    ``keypoints`` ``(T, M, 17, C)`` and ``bboxes`` ``(T, M, 4)`` are NaN-padded, ``track_ids`` ``(T, M)`` is
    -1-padded, ``valid`` marks real rows, ``num_persons`` ``(T,)``; ``M`` = the largest person count.
    """

    keypoints: np.ndarray
    bboxes: np.ndarray
    track_ids: np.ndarray
    valid: np.ndarray
    num_persons: np.ndarray
    scores: np.ndarray


def stack_window(window: Sequence[PoseFrame]) -> WindowArrays:
    """Stack a list of :class:`PoseFrame` into padded :class:`WindowArrays`."""
    t = len(window)
    if t == 0:
        raise InputError("empty window")
    counts = np.array([len(f) for f in window], dtype=np.int64)
    m = int(counts.max())
    c = next((f.keypoints.shape[2] for f in window if len(f)), 2)
    kp = np.full((t, m, K, c), np.nan, np.float32)
    bb = np.full((t, m, 4), np.nan, np.float32)
    sc = np.full((t, m, K), np.nan, np.float32)
    ids = np.full((t, m), -1, np.int64)
    valid = np.arange(m)[None, :] < counts[:, None]
    # Frames are usually references to a few distinct history entries: fill each distinct one once.
    first_pos: Dict[int, int] = {}
    for pos, fr in enumerate(window):
        if len(fr) == 0:
            continue
        key = id(fr)
        if key in first_pos:
            src = first_pos[key]
            kp[pos], bb[pos], sc[pos], ids[pos] = kp[src], bb[src], sc[src], ids[src]
            continue
        first_pos[key] = pos
        n = len(fr)
        kp[pos, :n] = fr.keypoints
        ids[pos, :n] = fr.track_ids
        if fr.bboxes is not None:
            bb[pos, :n] = fr.bboxes
        if fr.scores is not None:
            sc[pos, :n] = fr.scores
    return WindowArrays(kp, bb, ids, valid, counts, sc)


def collate_pose_sequence(track_ids: np.ndarray, valid: np.ndarray, keypoints: np.ndarray, target: int, *,
                          mmpose_right_edge: bool = True) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """mmpose's ``collate_pose_sequence`` (with track ids), vectorised over persons and frames (lifter.md §5.5).

    Inputs are padded window arrays (:class:`WindowArrays` layout): ``track_ids`` ``(T, M)``, ``valid``
    ``(T, M)``, ``keypoints`` ``(T, M, 17, C)``. The persons are the target frame's, in its row order.
    Returns ``(rows (N,), track_ids (N,), sequences (N, T, 17, C) float32)``.

    Per person: the target frame holds its own keypoints; other frames take the first row with the same id
    (id -1 is matched like any other id). Leftwards from the target, the first frame without the id and
    everything before it repeat the earliest contiguous found frame. Rightwards, with ``mmpose_right_edge``
    the first missing frame and everything after it are **zero** (mmpose's bug, Q9); otherwise they repeat the
    last contiguous found frame.
    """
    ids_w = np.asarray(track_ids)
    t_len, _ = ids_w.shape
    rows = np.flatnonzero(valid[target])
    tids = ids_w[target, rows]
    n = rows.size
    c = keypoints.shape[-1]
    if n == 0:
        return rows, tids, np.zeros((0, t_len, K, c), np.float32)
    eq = (ids_w[None, :, :] == tids[:, None, None]) & valid[None, :, :]  # (N, T, M)
    found = eq.any(axis=-1)
    first = eq.argmax(axis=-1)  # first matching row per frame (garbage where not found)
    seq = keypoints[np.arange(t_len)[None, :], first].astype(np.float32)  # (N, T, K, C)
    seq[:, target] = keypoints[target, rows]
    src = np.broadcast_to(np.arange(t_len), (n, t_len)).copy()
    # left: largest f < target with the id missing -> frames [0, f] repeat frame f + 1
    miss_l = ~found[:, :target]
    has_l = miss_l.any(axis=1)
    lf = (np.where(has_l, target - 1 - np.argmax(miss_l[:, ::-1], axis=1), -1) if target > 0
          else np.full(n, -1))  # a one-frame window (seq_len 1) has no left part
    left_fill = np.arange(t_len)[None, :] <= lf[:, None]
    src = np.where(left_fill, (lf + 1)[:, None], src)
    # right: smallest f > target with the id missing -> frames [f, T) are zero (mmpose) or repeat frame f - 1
    miss_r = ~found[:, target + 1:]
    has_r = miss_r.any(axis=1)
    rf = (np.where(has_r, target + 1 + np.argmax(miss_r, axis=1), t_len) if target + 1 < t_len
          else np.full(n, t_len))
    right_fill = np.arange(t_len)[None, :] >= rf[:, None]
    if not mmpose_right_edge:
        src = np.where(right_fill, (rf - 1)[:, None], src)
    seq = seq[np.arange(n)[:, None], src]
    if mmpose_right_edge:
        seq[right_fill] = 0.0
    return rows, tids, seq


def to_tcn_layout(sequences: np.ndarray) -> np.ndarray:
    """``(N, T, 17, C)`` -> mmpose's TCN input ``(N, 17*C, T)`` (channel ``C*joint + coord``)."""
    s = np.asarray(sequences)
    n, t = s.shape[:2]
    return np.ascontiguousarray(s.reshape(n, t, -1).transpose(0, 2, 1))


def from_tcn_layout(model_input: np.ndarray, channels: int = 2) -> np.ndarray:
    """Inverse of :func:`to_tcn_layout`: ``(N, 17*C, T)`` -> ``(N, T, 17, C)``."""
    x = np.asarray(model_input)
    n, _, t = x.shape
    return np.ascontiguousarray(x.transpose(0, 2, 1).reshape(n, t, -1, channels))


@dataclass
class MMPoseLiftInput:
    """What mmpose's ``inference_pose_lifter_model`` builds from a window, before the network."""

    rows: np.ndarray  # (N,) rows of the target frame, i.e. the output order
    track_ids: np.ndarray  # (N,)
    sequences: np.ndarray  # (N, T, 17, 2) pixels after norm_pose_2d (or raw) and collate
    model_input: np.ndarray  # (N, T, 17, 2) codec-normalised, engine layout; to_tcn_layout() gives (N, 34, T)
    target: int


def mmpose_model_input(window: Union[Sequence[PoseFrame], WindowArrays], *, image_size_arg: Tuple[float, float],
                       norm_pose_2d: bool = True, bbox_center: Sequence[float] | None = H36M_BBOX_CENTER,
                       bbox_scale: float | None = H36M_BBOX_SCALE, causal: bool = False,
                       mmpose_right_edge: bool = True) -> MMPoseLiftInput:
    """``inference_pose_lifter_model`` up to the network input, exactly (lifter.md §5.4-5.6).

    ``image_size_arg`` is what mmpose receives as ``image_size`` and reads as ``(w, h)``; the demo passes
    ``frame.shape[:2] = (H, W)`` (Q2; use :func:`codec_frame_size`). ``bbox_center=None`` reproduces mmpose's
    fallback for metadata without ``stats_info`` (mean box of the window, every reference counted; computed in
    float64 here, unreachable with the official configs).
    """
    wa = window if isinstance(window, WindowArrays) else stack_window(window)
    t_len = wa.keypoints.shape[0]
    target = t_len - 1 if causal else t_len // 2
    kp = wa.keypoints[..., :2]
    if norm_pose_2d:
        boxes = wa.bboxes
        if np.isnan(boxes[wa.valid]).any():
            raise InputError("norm_pose_2d needs the box of every person in the window")
        if bbox_center is None or bbox_scale is None:
            vb = boxes[wa.valid].astype(np.float64)
            bbox_center = ((vb[:, 0] + vb[:, 2]) / 2, (vb[:, 1] + vb[:, 3]) / 2)
            bbox_center = (float(np.mean(bbox_center[0])), float(np.mean(bbox_center[1])))
            bbox_scale = float(np.mean(np.maximum(vb[:, 2] - vb[:, 0], vb[:, 3] - vb[:, 1])))
        with np.errstate(invalid="ignore"):
            kp = _norm_pose_2d(kp, boxes, bbox_center, bbox_scale)
    rows, tids, seq = collate_pose_sequence(wa.track_ids, wa.valid, kp, target, mmpose_right_edge=mmpose_right_edge)
    w, h = image_size_arg
    model_input = normalize_screen_coordinates(seq, w, h) if len(seq) else seq.astype(np.float32)
    return MMPoseLiftInput(rows, tids, seq, model_input, target)


class MMPoseHistory:
    """The demo's ``pose_est_results_list``, bounded (Q4): only frames a window can still reach are kept.

    Frames are numbered 0, 1, ... in arrival order. ``window(frame_idx)`` returns what
    ``extract_pose_sequence(full_history, frame_idx, ...)`` would; it raises if that needs a dropped frame
    (increase ``lookahead`` to keep future frames for centred/offline windows). ``frame_idx = num_frames``
    reproduces the demo's 1-based call (Q1).
    """

    def __init__(self, seq_len: int, *, causal: bool = False, step: int = 1, lookahead: int = 0) -> None:
        self.seq_len, self.causal, self.step = int(seq_len), bool(causal), int(step)
        fl, fr = sequence_context(self.seq_len, self.causal)
        self.maxlen = fl * self.step + 1 + max(0, int(lookahead))
        self._frames: Deque[PoseFrame] = deque(maxlen=self.maxlen)
        self._count = 0

    def append(self, frame: PoseFrame) -> None:
        self._frames.append(frame)
        self._count += 1

    @property
    def num_frames(self) -> int:
        """Frames appended so far (the demo's 1-based frame number of the newest frame)."""
        return self._count

    def __len__(self) -> int:
        return len(self._frames)

    def window(self, frame_idx: int) -> List[PoseFrame]:
        idx = window_indices(self._count, frame_idx, seq_len=self.seq_len, causal=self.causal, step=self.step)
        first = self._count - len(self._frames)
        if idx.size and int(idx.min()) < first:
            raise InputError(
                f"window for frame {frame_idx} needs frame {int(idx.min())}, but only frames >= {first} are kept "
                f"(history of {self.maxlen}; pass a larger lookahead)"
            )
        return [self._frames[int(j) - first] for j in idx]


# ---------------------------------------------------------------------------------------------------------------
# offline (whole sequence) lifting
# ---------------------------------------------------------------------------------------------------------------


def lift_offline(model: Union[LifterModel, Engine], sequences: np.ndarray, *, batch_windows: int = 256
                 ) -> np.ndarray:
    """Lift whole tracks at once: ``(B, T, 17, C)`` codec-normalised 2D -> ``(B, T, 17, 3)`` raw camera-frame 3D.

    Each sequence is edge-padded by the model's left/right context (VideoPose3D's ``UnchunkedGenerator``).
    A dilated TCN runs once over the padded sequence (every intermediate column computed once); other forms
    run every window, ``batch_windows`` windows per engine call.
    """
    m = as_lifter_model(model)
    sp = m.spec
    x = np.asarray(sequences, dtype=np.float32)
    if x.ndim != 4 or x.shape[2:] != (K, sp.in_channels):
        raise InputError(f"sequences must be (B, T, {K}, {sp.in_channels}), got {x.shape}")
    b, t = x.shape[:2]
    if t == 0 or b == 0:
        return np.zeros((b, t, K, 3), np.float32)
    padded = np.pad(x, ((0, 0), (sp.frames_left, sp.frames_right), (0, 0), (0, 0)), mode="edge")
    if sp.form == "dilated":
        return m.infer(padded)[:, sp.output_index: sp.output_index + t]
    wins = np.lib.stride_tricks.sliding_window_view(padded, sp.window, axis=1)  # (B, T, 17, C, W)
    wins = np.moveaxis(wins, -1, 2).reshape(b * t, sp.window, K, sp.in_channels)
    out = np.empty((b * t, K, 3), np.float32)
    for s in range(0, b * t, batch_windows):
        out[s: s + batch_windows] = m.infer(wins[s: s + batch_windows])[:, sp.output_index]
    return out.reshape(b, t, K, 3)


# ---------------------------------------------------------------------------------------------------------------
# the streaming Lifter
# ---------------------------------------------------------------------------------------------------------------


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


@dataclass
class _Pool:
    """Ring-buffer pool: slot ``s`` holds one track's last ``W`` frames at positions ``frame % W``."""

    window: int
    channels: int
    capacity: int = 0
    norm: np.ndarray = field(init=False)  # (S, W, 17, C) model input
    kp2d: np.ndarray = field(init=False)  # (S, W, 17, 2) pixels
    sc2d: np.ndarray = field(init=False)  # (S, W, 17)
    observed: np.ndarray = field(init=False)  # (S, W) bool: real observation at that frame
    track: np.ndarray = field(init=False)  # (S,) track id, -1 = free
    last_real: np.ndarray = field(init=False)  # (S,) frame of the last real observation
    missing: np.ndarray = field(init=False)  # (S,) consecutive missing frames
    ended: np.ndarray = field(init=False)  # (S,) bool
    floor: np.ndarray = field(init=False)  # (S,) running lowest Z (rebase="track")

    def __post_init__(self) -> None:
        self._alloc(max(1, self.capacity))

    def _alloc(self, cap: int) -> None:
        w, c = self.window, self.channels
        old = None if not hasattr(self, "norm") else (self.norm, self.kp2d, self.sc2d, self.observed, self.track,
                                                       self.last_real, self.missing, self.ended, self.floor)
        self.norm = np.zeros((cap, w, K, c), np.float32)
        self.kp2d = np.zeros((cap, w, K, 2), np.float32)
        self.sc2d = np.zeros((cap, w, K), np.float32)
        self.observed = np.zeros((cap, w), bool)
        self.track = np.full(cap, -1, np.int64)
        self.last_real = np.zeros(cap, np.int64)
        self.missing = np.zeros(cap, np.int64)
        self.ended = np.zeros(cap, bool)
        self.floor = np.full(cap, np.inf, np.float32)
        if old is not None:
            n = old[0].shape[0]
            for dst, src in zip((self.norm, self.kp2d, self.sc2d, self.observed, self.track, self.last_real,
                                 self.missing, self.ended, self.floor), old):
                dst[:n] = src
        self.capacity = cap

    def take(self, count: int) -> np.ndarray:
        free = np.flatnonzero(self.track < 0)
        if free.size < count:
            self._alloc(max(2 * self.capacity, self.capacity + count - free.size))
            free = np.flatnonzero(self.track < 0)
        return free[:count]

    def release(self, slots: np.ndarray) -> None:
        self.track[slots] = -1
        self.observed[slots] = False
        self.ended[slots] = False
        self.missing[slots] = 0
        self.floor[slots] = np.inf


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
    :meth:`end_track` ends tracks).
    """

    def __init__(self, model: Union[LifterModel, Engine], *, mode: str = "default", online: bool = False,
                 norm_pose_2d: bool = True, bbox_center: Sequence[float] = H36M_BBOX_CENTER,
                 bbox_scale: float = H36M_BBOX_SCALE, keypoint_source: str = "h36m",
                 frame_size: Tuple[float, float] | None = None, rebase: str = "frame", postprocess: bool = True,
                 max_missing: int | None = 30, initial_tracks: int = 8) -> None:
        _check_mode(mode)
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
        self._history = MMPoseHistory(sp.window, causal=sp.alignment == "causal")
        self._pool = _Pool(sp.window, sp.in_channels, initial_tracks)
        self._slot_of: Dict[int, int] = {}
        self._t = -1  # internal frame counter of the current stream (0-based)
        self._index0 = 0  # caller frame index of internal frame 0
        self._warned_boxes = False

    # -- public API ------------------------------------------------------------------------------------------
    @property
    def latency(self) -> int:
        """Frames between an input frame and its output (0 online, the model's right context otherwise)."""
        return 0 if self.online else self.spec.frames_right

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
        keep = ids >= 0
        if not keep.all():
            logger.debug("lifter: %d persons without a track id (< 0) are not lifted", int((~keep).sum()))
            kp, ids, sc = kp[keep], ids[keep], sc[keep]
            bb = None if bb is None else bb[keep]
        if np.unique(ids).size != ids.size:
            raise InputError(f"track ids must be unique within a frame, got {ids.tolist()}")
        pool, t, w = self._pool, self._t, self.spec.window
        pos = t % w
        norm = self._normalize(kp, sc, bb, fsize)

        # slots: existing tracks, then new ones (first frame replicated over the whole ring: left edge)
        slots = np.array([self._slot_of.get(int(i), -1) for i in ids], np.int64)
        new = slots < 0
        if new.any():
            fresh = pool.take(int(new.sum()))
            slots[new] = fresh
            for s, tid in zip(fresh, ids[new]):
                self._slot_of[int(tid)] = int(s)
            pool.track[fresh] = ids[new]
            pool.norm[fresh] = norm[new][:, None]
            pool.kp2d[fresh] = kp[new][:, None]
            pool.sc2d[fresh] = sc[new][:, None]
            pool.observed[fresh] = False
            pool.floor[fresh] = np.inf
        # present tracks: write this frame
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

        if self.online:
            frame = self._emit_online(slots, ids)
            self._free(np.flatnonzero((pool.track >= 0) & pool.ended))
            return [frame]
        e = t - self.spec.frames_right
        out = [] if e < 0 else [self._emit_exact([e], last=t)[0]]
        done = (pool.track >= 0) & pool.ended & (pool.last_real <= max(e, -1))
        self._free(np.flatnonzero(done))
        return out

    def _emit_online(self, slots: np.ndarray, ids: np.ndarray) -> LiftedFrame:
        sp, t, w = self.spec, self._t, self.spec.window
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
        sp, pool, w = self.spec, self._pool, self.spec.window
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
        first = max(0, t - self.spec.frames_right + 1)
        return self._emit_exact(list(range(first, t + 1)), last=t)


__all__ = [
    "MODES",
    "LifterSpec",
    "LifterModel",
    "EngineLifter",
    "as_lifter_model",
    "codec_frame_size",
    "PoseFrame",
    "WindowArrays",
    "MMPoseLiftInput",
    "MMPoseHistory",
    "sequence_context",
    "window_indices",
    "extract_pose_sequence",
    "stack_window",
    "collate_pose_sequence",
    "to_tcn_layout",
    "from_tcn_layout",
    "mmpose_model_input",
    "lift_offline",
    "LiftedFrame",
    "Lifter",
]
