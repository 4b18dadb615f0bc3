"""The mmpose-parity data path: what ``body3d_pose_lifter_demo.py`` builds before the lifting network, bit for bit.

Used by ``Lifter(mode="mmpose")`` (:mod:`pose3d_rt.lifters.streaming`) and by the tests against the
``tests/fixtures/lift`` reference windows and model inputs. The demo, step by step (docs/MMPOSE_BEHAVIOUR.md,
VideoPose3D, and the quirks Q1, Q2, Q4, Q5, Q9):

1. a bounded history of per-frame results (:class:`MMPoseHistory`, the demo's ``pose_est_results_list``; only the
   frames its window can reach are kept, Q4);
2. the window: :func:`extract_pose_sequence` / :func:`window_indices`, called with the 1-based frame number as
   index (Q1), so the newest frame is repeated into the right half (a frozen future, Q5);
3. ``norm_pose_2d`` onto the lifter dataset's mean box (:func:`pose3d_rt.lifters.codec.norm_pose_2d`);
4. :func:`collate_pose_sequence`: per person of the target frame, its sequence over the window, including the
   zero-replication at a track's right edge (Q9);
5. the codec's screen normalisation with the swapped ``(w, h) = (H, W)`` (Q2; :func:`mmpose_model_input`).

The streaming Lifter then runs the network, rebases per frame and sorts the output by track id.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Deque, Dict, List, Sequence, Tuple, Union

import numpy as np

from ..errors import InputError
from .base import K
from .codec import H36M_BBOX_CENTER, H36M_BBOX_SCALE, normalize_screen_coordinates
from .codec import norm_pose_2d as _norm_pose_2d


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
    """mmpose's ``collate_pose_sequence`` (with track ids), vectorised over persons and frames.

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
    """``inference_pose_lifter_model`` up to the network input, exactly (norm_pose_2d, collate, codec).

    ``image_size_arg`` is what mmpose receives as ``image_size`` and reads as ``(w, h)``; the demo passes
    ``frame.shape[:2] = (H, W)`` (Q2; use :func:`~pose3d_rt.lifters.codec.codec_frame_size`).
    ``bbox_center=None`` reproduces mmpose's fallback for metadata without ``stats_info`` (mean box of the window,
    every reference counted; computed in float64 here, unreachable with the official configs).
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


__all__ = [
    "PoseFrame",
    "sequence_context",
    "window_indices",
    "extract_pose_sequence",
    "WindowArrays",
    "stack_window",
    "collate_pose_sequence",
    "to_tcn_layout",
    "from_tcn_layout",
    "MMPoseLiftInput",
    "mmpose_model_input",
    "MMPoseHistory",
]
