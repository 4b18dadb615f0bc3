"""The lifter interface: what a 2D -> 3D lifting network is to the rest of the code.

A lifter is anything with a :class:`LifterSpec` and ``infer(windows)`` (:class:`LifterModel`): a batch of windows of
codec-normalised 2D poses ``(B, window, 17, in_channels)`` in, ``(B, output_frames, 17, 3)`` camera-frame 3D out.
The spec describes the network by its window length, input channels (2 = x, y; 3 = x, y, score), output frames per
window and alignment (``center`` / ``causal`` / ``seq2seq``); the streaming :class:`~pose3d_rt.lifters.Lifter`
and :func:`lift_offline` only ever talk to a network through it.

- The VideoPose3D TCN is one configuration: strided (``W = RF`` frames in, 1 frame out) or dilated (``T >= RF``
  in, ``T - RF + 1`` out).
- A sequence-to-sequence lifter such as MotionBERT (243 frames of (x, y, score) in, 243 frames of 3D out) is
  another: ``LifterSpec(family="motionbert", window=243, receptive_field=243, in_channels=3, output_frames=243,
  alignment="seq2seq")``. The Lifter feeds it the same centred 243-frame windows (with the score channel filled
  from its ring buffer) and reads the output frame at the window's target position (:attr:`LifterSpec.output_index`).

:class:`EngineLifter` is the adapter from an exported model (ONNX Runtime / TensorRT / OpenVINO
:class:`~pose3d_rt.engines.Engine`) to this interface: it checks that the engine is a lifter and reads its spec
from the model metadata (``family``, ``receptive_field``, ``causal``, ``form``, ... ; docs/MMPOSE_BEHAVIOUR.md,
ONNX metadata); ``family=motionbert`` selects the seq2seq spec.

Adding a lifter family (MotionBERT is the next one, ``lifters/motionbert.py``; docs/MMPOSE_BEHAVIOUR.md,
MotionBERT): add its name to :data:`LIFTER_FAMILIES`, and write a :class:`LifterModel` for it, typically an
:class:`EngineLifter` plus what the family adds beyond the shared window handling: its own output decode (root
zeroing, scaling by the codec's ``w/2``) and optional flip averaging, per-frame functions applied to the model
output. :func:`as_lifter_model` is where an engine is turned into a LifterModel.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, Optional, Protocol, Tuple, Union

import numpy as np

from ..engines.base import Engine, TensorSpec, static_dim
from ..engines.errors import ModelError
from ..errors import InputError
from ..keypoint_sets import H36M_NUM_KEYPOINTS
from ..metadata import meta_bool, meta_int

#: Lifter modes: ``default`` (corrected, the product) and ``mmpose`` (the demo's numbers, quirks included).
MODES = ("default", "mmpose")
LIFTER_FAMILIES = ("tcn", "motionbert")
ALIGNMENTS = ("center", "causal", "seq2seq")
FORMS = ("strided", "dilated", "seq2seq", "stream")
K = H36M_NUM_KEYPOINTS

#: Largest number of windows sent to a lifter engine in one call (bounds memory on long flushes).
MAX_WINDOWS_PER_CALL = 64


def check_mode(mode: str) -> None:
    """Raise :class:`InputError` unless ``mode`` is one of :data:`MODES`."""
    if mode not in MODES:
        raise InputError(f"lifter mode must be one of {MODES}, got {mode!r}")


@dataclass(frozen=True)
class LifterSpec:
    """What the :class:`~pose3d_rt.lifters.Lifter` needs to know about a lifting network.

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


# ---------------------------------------------------------------------------------------------------------------
# the engine adapter: checks an engine is a lifter, reads its spec from the metadata
# ---------------------------------------------------------------------------------------------------------------


def _check_family(meta: Dict[str, str], src: str) -> str:
    family = meta.get("family", "tcn").strip().lower()
    if family not in LIFTER_FAMILIES:
        raise ModelError(
            f"{src}: metadata family={family!r}; a lifter must be one of {LIFTER_FAMILIES} "
            "(was a detector or 2D pose model passed as the lifter?)"
        )
    return family


def _lifter_tensors(engine: Engine, src: str) -> Tuple[TensorSpec, TensorSpec]:
    """The engine's keypoints input ``(N, T, 17, 2|3)`` float32 and its 3D output ``(N, [F,] 17, 3)``."""
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
    j, c = static_dim(shape[2]), static_dim(shape[3])
    if (j is not None and j != K) or (c is not None and c not in (2, 3)):
        raise ModelError(f"{src}: expected {expected}, got {spec_in.describe()} "
                         "(is this a lifter model? detectors and 2D pose models take images)")
    if np.dtype(spec_in.dtype) != np.float32:
        raise ModelError(f"{src}: expected {expected}, got dtype {np.dtype(spec_in.dtype).name}")
    spec_out = outputs[0]
    oshape = tuple(spec_out.shape)
    if len(oshape) not in (3, 4) or (static_dim(oshape[-1]) not in (None, 3)) or (static_dim(oshape[-2]) not in (None, K)):
        raise ModelError(f"{src}: expected a lifter output (N, F, 17, 3), got {spec_out.describe()}")
    return spec_in, spec_out


def _form_and_window(meta: Dict[str, str], family: str, t_static: int | None, src: str) -> Tuple[str, int, int]:
    """``(form, receptive_field, window)`` from the metadata and the static time axis ``T`` (or None)."""
    rf = meta_int(meta, "receptive_field", src)
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
    window = meta_int(meta, "window", src) or t_static or rf
    if form == "strided" and t_static is not None and t_static != rf:
        raise ModelError(f"{src}: strided lifter with T={t_static} frames but receptive_field={rf}")
    if t_static is not None and t_static != window:
        raise ModelError(f"{src}: static T={t_static} disagrees with metadata window={window}")
    return form, rf, window


def _spec_from_metadata(meta: Dict[str, str], family: str, t_static: int | None, c_static: int | None,
                        src: str) -> LifterSpec:
    form, rf, window = _form_and_window(meta, family, t_static, src)
    causal = bool(meta_bool(meta, "causal", src))
    alignment = "seq2seq" if form == "seq2seq" else ("causal" if causal else "center")
    if form == "seq2seq":
        out_frames = window
    elif form == "dilated":
        out_frames = window - rf + 1
    else:
        out_frames = 1
    in_channels = c_static if c_static is not None else (
        meta_int(meta, "in_channels", src) or (3 if family == "motionbert" else 2))
    order = meta.get("input_joint_order", "h36m").strip().lower()
    try:
        return LifterSpec(window=window, receptive_field=rf, family=family, in_channels=in_channels,
                          output_frames=out_frames, alignment=alignment, form=form,
                          input_joint_order=order, dataset=meta.get("dataset", "h36m").strip().lower())
    except ModelError as e:
        raise ModelError(f"{src}: {e}") from None


class EngineLifter:
    """:class:`LifterModel` over an :class:`~pose3d_rt.engines.Engine` (ONNX Runtime / TensorRT / OpenVINO).

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
        self.static_batch = next((static_dim(s.shape[0]) for s in engine.inputs if s.name == self.input_name), None)

    def _validate(self, engine: Engine) -> Tuple[str, str, LifterSpec]:
        src = self.source
        meta = {str(k): str(v) for k, v in (getattr(engine, "metadata", None) or {}).items()}
        family = _check_family(meta, src)
        spec_in, spec_out = _lifter_tensors(engine, src)
        spec = _spec_from_metadata(meta, family, static_dim(spec_in.shape[1]), static_dim(spec_in.shape[3]), src)
        return spec_in.name, spec_out.name, spec

    def infer(self, windows: np.ndarray) -> np.ndarray:
        """``(B, T, 17, C)`` -> ``(B, F, 17, 3)`` float32 (``T = window``; a dilated graph accepts ``T >= RF``, a
        seq2seq graph (MotionBERT) ``1 <= T <= window`` with ``F = T``: its ``temp_embed`` has ``window`` rows, so a
        longer clip is refused here with a one-line :class:`InputError` instead of failing inside the engine)."""
        x = np.ascontiguousarray(windows, dtype=np.float32)
        sp = self.spec
        if x.ndim != 4 or x.shape[2:] != (K, sp.in_channels):
            raise InputError(f"lifter windows must be (B, T, {K}, {sp.in_channels}), got {x.shape}")
        if sp.form == "stream":
            raise InputError(f"{self.source}: a stream-form lifter is stepped frame by frame, not given windows "
                             "(pose3d_rt.lifters.Lifter does that)")
        t = x.shape[1]
        if sp.form == "seq2seq" and not 1 <= t <= sp.window:
            raise InputError(f"{self.source}: got a clip of {t} frames; this {sp.family} lifter takes 1 to "
                             f"{sp.window} frames (metadata window={sp.window})")
        if (sp.form == "dilated" and t < sp.receptive_field) or (sp.form not in ("dilated", "seq2seq")
                                                                 and t != sp.window):
            raise InputError(f"{self.source}: got a window of {t} frames, the model needs {sp.window}")
        f_expected = t - sp.receptive_field + 1 if sp.form == "dilated" else (t if sp.form == "seq2seq"
                                                                               else sp.output_frames)
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
    if sp.form == "stream":
        from .tcn_stream import StreamingTCNEngine

        return StreamingTCNEngine(m.engine).lift_offline(x)
    padded = np.pad(x, ((0, 0), (sp.frames_left, sp.frames_right), (0, 0), (0, 0)), mode="edge")
    if sp.form == "dilated":
        return m.infer(padded)[:, sp.output_index: sp.output_index + t]
    wins = np.lib.stride_tricks.sliding_window_view(padded, sp.window, axis=1)  # (B, T, 17, C, W)
    wins = np.moveaxis(wins, -1, 2).reshape(b * t, sp.window, K, sp.in_channels)
    out = np.empty((b * t, K, 3), np.float32)
    for s in range(0, b * t, batch_windows):
        out[s: s + batch_windows] = m.infer(wins[s: s + batch_windows])[:, sp.output_index]
    return out.reshape(b, t, K, 3)


__all__ = [
    "MODES",
    "LIFTER_FAMILIES",
    "ALIGNMENTS",
    "FORMS",
    "MAX_WINDOWS_PER_CALL",
    "check_mode",
    "tracked_persons",
    "LifterSpec",
    "LifterModel",
    "EngineLifter",
    "as_lifter_model",
    "lift_offline",
]

def tracked_persons(kp: np.ndarray, ids: np.ndarray, sc: np.ndarray, bb: Optional[np.ndarray]
                    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """The persons of a frame that have a track id (>= 0): what a streaming lifter buffers. Track ids must be
    unique within a frame (:class:`InputError` otherwise)."""
    keep = ids >= 0
    if not keep.all():
        logging.getLogger("pose3d_rt.lifters").debug("lifter: %d persons without a track id (< 0) are not lifted",
                                                     int((~keep).sum()))
        kp, ids, sc = kp[keep], ids[keep], sc[keep]
        bb = None if bb is None else bb[keep]
    if np.unique(ids).size != ids.size:
        raise InputError(f"track ids must be unique within a frame, got {ids.tolist()}")
    return kp, ids, sc, bb
