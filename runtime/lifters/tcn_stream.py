"""The streaming VideoPose3D TCN at run time: an engine exported with ``form=stream`` (see
:mod:`pose3d_rt.export.models.tcn_stream`) stepped over all live tracks, one engine call per chunk of frames.

The step graph takes the new frames of every track, a ``start`` flag per track and one state tensor per layer
(the layer's last ``S`` input columns), and returns the 3D pose of the frame ``R`` frames back (``R`` = right
context: ``RF // 2`` centred, 0 causal) with the new states. Feeding a track's columns in order from its first
frame (``start`` = 1) and, at its end, ``R`` copies of its last frame gives exactly the offline dilated TCN over
the edge-padded track, at one new column per layer and frame (~34 MFLOP for the 243-frame model, against ~1 GFLOP
for a window).

Chunks: the engine call is made every ``chunk`` frames for all live tracks together, so the weights are read once
per ``chunk x tracks`` rows (on CPU a call is bound by reading the 64 MB of weights, not by arithmetic). Results
then come ``R + chunk - 1`` frames after their frame was read, instead of ``R``.
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np

from ..engines.base import Engine, static_dim
from ..engines.errors import ModelError
from ..errors import InputError
from ..keypoint_sets import H36M_NUM_KEYPOINTS as K

#: Frames per engine call of the streaming TCN: ``chunk`` frames x the live tracks share one GEMM per layer, so
#: the weights are read once per chunk. A centred model already delays its results by its right context (121
#: frames at 243), so 16 frames more cost little (measured on 2 cores, 4 tracks, FP32 ONNX Runtime: 0.36 ms per
#: person-frame at 8, 0.32 at 16, 0.27 at 32); a causal model has no delay of its own and keeps chunks of 8.
DEFAULT_CHUNK = 16
CAUSAL_CHUNK = 8


def default_chunk(causal: bool) -> int:
    """The default frames per engine call of a stream-form TCN (:data:`DEFAULT_CHUNK`, :data:`CAUSAL_CHUNK`)."""
    return CAUSAL_CHUNK if causal else DEFAULT_CHUNK


class StreamingTCNEngine:
    """A ``form=stream`` TCN engine behind ``step(x, start, states) -> (y, states)``.

    ``x`` ``(N, T, 17, C)`` codec-normalised 2D of ``T`` consecutive new frames per track, ``start`` ``(N,)``
    (True where the track begins with ``x[:, 0]``), ``states`` one ``(N, S_l, C_l)`` array per layer.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.source = str(getattr(engine, "path", "") or "<lifter engine>")
        meta = getattr(engine, "metadata", None) or {}
        names = [s.name for s in engine.inputs]
        self.state_names = sorted((n for n in names if n.startswith("state_in_")), key=lambda n: int(n[9:]))
        # a 1-frame TCN has no temporal layers: no states, and its export drops the then unused `start` input
        self.takes_start = "start" in names
        expected = ["keypoints"] + (["start"] if self.takes_start else []) + self.state_names
        if names != expected or (self.state_names and not self.takes_start):
            raise ModelError(f"{self.source}: a stream-form lifter takes keypoints, start, state_in_0.., got {names}")
        self.shapes: List[Tuple[int, int]] = []
        for spec in engine.inputs[len(names) - len(self.state_names):]:
            s, c = static_dim(spec.shape[1]), static_dim(spec.shape[2])
            if s is None or c is None:
                raise ModelError(f"{self.source}: state input {spec.describe()} needs static (history, channels)")
            self.shapes.append((s, c))
        try:
            self.right_context = int(meta.get("right_context", ""))
        except ValueError:
            raise ModelError(f"{self.source}: a stream-form lifter needs the right_context metadata") from None
        self.in_channels = static_dim(engine.inputs[0].shape[3]) or 2

    def new_states(self, rows: int) -> List[np.ndarray]:
        return [np.zeros((rows, s, c), np.float32) for s, c in self.shapes]

    def step(self, x: np.ndarray, start: np.ndarray, states: List[np.ndarray]
             ) -> Tuple[np.ndarray, List[np.ndarray]]:
        x = np.ascontiguousarray(x, np.float32)
        if x.ndim != 4 or x.shape[2:] != (K, self.in_channels) or x.shape[1] < 1:
            raise InputError(f"{self.source}: stream input must be (N, T>=1, {K}, {self.in_channels}), got {x.shape}")
        feed = {"keypoints": x}
        if self.takes_start:
            feed["start"] = np.asarray(start, np.float32).reshape(-1)
        feed.update({name: np.ascontiguousarray(s) for name, s in zip(self.state_names, states)})
        out = self.engine.run(feed)
        y = np.asarray(out["keypoints_3d"], np.float32)
        if y.shape != x.shape[:2] + (K, 3):
            raise ModelError(f"{self.source}: stream output {y.shape}, expected {x.shape[:2] + (K, 3)}")
        return y, [np.asarray(out[n.replace("state_in_", "state_out_")], np.float32) for n in self.state_names]

    def lift_offline(self, sequences: np.ndarray) -> np.ndarray:
        """Whole tracks ``(B, T, 17, C)`` -> ``(B, T, 17, 3)``: the track, then ``R`` copies of its last frame."""
        r = self.right_context
        x = np.concatenate([sequences, np.repeat(sequences[:, -1:], r, axis=1)], axis=1)
        y, _ = self.step(x, np.ones(len(x), np.float32), self.new_states(len(x)))
        return y[:, r:]


class StreamStates:
    """The per-slot layer states of a ring-buffer pool (grown with it), and the chunk bookkeeping."""

    def __init__(self, model: StreamingTCNEngine, capacity: int, chunk: int = DEFAULT_CHUNK) -> None:
        if chunk < 1:
            raise InputError(f"stream chunk must be >= 1 frame, got {chunk}")
        self.model = model
        self.chunk = int(chunk)
        self.states = model.new_states(capacity)
        self.born = np.zeros(capacity, np.int64)  # internal frame at which each slot's track began
        self.next_frame = 0  # first internal frame not yet fed to the engine

    def grow(self, capacity: int) -> None:
        n = self.born.shape[0]
        if capacity > n:
            self.states = [np.concatenate([s, np.zeros((capacity - n,) + s.shape[1:], np.float32)])
                           for s in self.states]
            self.born = np.concatenate([self.born, np.zeros(capacity - n, np.int64)])

    def due(self, t: int) -> bool:
        """True when frames ``next_frame .. t`` fill a chunk."""
        return t - self.next_frame + 1 >= self.chunk

    def run(self, slots: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """Feed ``columns`` ``(len(slots), T, 17, C)`` (frames ``next_frame ..``) for ``slots``; returns the raw 3D
        ``(len(slots), T, 17, 3)`` of frames ``next_frame - R ..`` and advances ``next_frame`` by ``T``."""
        start = self.born[slots] >= self.next_frame
        states = [s[slots] for s in self.states]
        y, new = self.model.step(columns, start, states)
        for s, n in zip(self.states, new):
            s[slots] = n
        self.next_frame += columns.shape[1]
        return y

    def reset(self) -> None:
        self.next_frame = 0


__all__ = ["DEFAULT_CHUNK", "CAUSAL_CHUNK", "default_chunk", "StreamingTCNEngine", "StreamStates"]
