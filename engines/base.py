"""The one small interface every backend implements: named numpy inputs -> named numpy outputs.

Also here, because every backend and every runtime stage needs them:

- :meth:`Engine.prepare_inputs` validates what a caller passes (names, rank, static dims, dtype) *before* the
  backend sees it, so a mistake surfaces as :class:`EngineInputError` naming the input and the expected spec
  rather than as a traceback from deep inside onnxruntime or TensorRT;
- :func:`static_dim` and :func:`describe_io` are what every runtime stage (detector, 2D pose, lifter) uses to
  read an engine's tensor specs and to say, in its :class:`ModelError`, what the file it was given looks like
  ("found inputs [input[?,3,640,640]:float32], outputs [dets[?,?,5]:float32, ...]"). Each stage checks its own
  role (the three RTMDet output layouts, the SimCC bins, the lifter window) next to the code that relies on it.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import EngineInputError

Dim = Union[int, str, None]  # an int for a static dim, a name (or None) for a dynamic one
Inputs = Union[np.ndarray, Mapping[str, np.ndarray]]


def static_dim(d: Dim) -> Optional[int]:
    """The size of a static dim (an int ``>= 0``), else ``None`` (a name, ``None``, or TensorRT's ``-1``)."""
    return int(d) if isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0 else None


def _dim_text(d: Dim) -> str:
    s = static_dim(d)
    if s is not None:
        return str(s)
    return str(d) if isinstance(d, str) and d else "?"


def format_shape(shape: Sequence[Dim]) -> str:
    """``(N, 3, 256, 192)``-style text; dynamic dims print their name or ``?``."""
    inner = ", ".join(_dim_text(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape and dtype of one network input or output. Dynamic dims are ``None`` or a symbolic name."""

    name: str
    shape: Tuple[Dim, ...]
    dtype: np.dtype

    @property
    def rank(self) -> int:
        return len(self.shape)

    def is_dynamic(self, axis: int) -> bool:
        return static_dim(self.shape[axis]) is None

    def static_dim(self, axis: int) -> Optional[int]:
        """The size of ``axis`` if it is static, else ``None``."""
        return static_dim(self.shape[axis])

    def describe(self) -> str:
        dims = ",".join(_dim_text(d) for d in self.shape)
        return f"{self.name}[{dims}]:{np.dtype(self.dtype).name}"


# float64 -> float32 is the one narrowing cast done silently (numpy's default dtype is float64); it is refused
# when a finite value does not fit float32. Any other dtype change must be a lossless cast within the same kind
# (int32 -> int64, float16 -> float32, bool -> bool); uint8 images are never silently fed to a float network.
_F32_MAX = float(np.finfo(np.float32).max)


def _coerce_dtype(arr: np.ndarray, want: np.dtype) -> Tuple[Optional[np.ndarray], str]:
    """``(arr as want, "")`` when that is safe, else ``(None, why not)``."""
    have = arr.dtype
    if have == want:
        return arr, ""
    if have == np.float64 and want == np.float32:
        finite = arr[np.isfinite(arr)]
        if finite.size and float(np.abs(finite).max()) > _F32_MAX:
            return None, "values exceed the float32 range"
        return arr.astype(np.float32), ""
    if have.kind == want.kind and np.can_cast(have, want, casting="safe"):
        return arr.astype(want), ""
    if have.kind == "u" and want.kind == "i" and np.can_cast(have, want, casting="safe"):
        return arr.astype(want), ""
    if have.kind in "uib" and want.kind == "f":
        return None, f"convert explicitly, e.g. normalised {want.name} values"
    return None, f"not safely castable to {want.name}"


@dataclass(eq=False)
class Engine(abc.ABC):
    """One network on one backend.

    ``engine(inputs)`` / ``engine.run(inputs)`` takes ``{name: array}`` (or a single array for single-input
    networks) and returns ``{name: array}`` for every output, in the order of ``outputs``.
    ``metadata`` holds the model's embedded key/value metadata (ONNX ``metadata_props``; for a TensorRT engine
    the ``onnx_metadata`` of its header); it is empty for files that carry none.
    Engines compare and hash by identity.
    """

    path: str
    inputs: Sequence[TensorSpec] = field(default_factory=tuple)
    outputs: Sequence[TensorSpec] = field(default_factory=tuple)
    metadata: Dict[str, str] = field(default_factory=dict)

    @abc.abstractmethod
    def run(self, inputs: Inputs) -> Dict[str, np.ndarray]:
        ...

    def __call__(self, inputs: Inputs) -> Dict[str, np.ndarray]:
        return self.run(inputs)

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op for engines that hold nothing
        """Release backend resources (sessions, device buffers). The engine is unusable afterwards."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def input_names(self) -> Tuple[str, ...]:
        return tuple(s.name for s in self.inputs)

    @property
    def output_names(self) -> Tuple[str, ...]:
        return tuple(s.name for s in self.outputs)

    def input_spec(self, name: Optional[str] = None) -> TensorSpec:
        if name is None:
            return self.inputs[0]
        for s in self.inputs:
            if s.name == name:
                return s
        raise KeyError(name)

    def describe(self) -> str:
        """``path: inputs [..] -> outputs [..]`` on one line (for logs and error messages)."""
        return (f"{self.path}: inputs [{', '.join(s.describe() for s in self.inputs)}] -> "
                f"outputs [{', '.join(s.describe() for s in self.outputs)}]")

    def prepare_inputs(self, inputs: Inputs) -> Dict[str, np.ndarray]:
        """Check ``inputs`` against :attr:`inputs` and return ``{name: array}`` in graph order.

        A single array is accepted for a single-input network. Names must match exactly (no missing, no extra),
        ranks and static dims must match, and the dtype must equal the spec's or be safely castable
        (float64 -> float32 when every finite value fits; lossless same-kind casts). Raises
        :class:`EngineInputError` naming the input, the expected spec and what was given.
        """
        specs = list(self.inputs)
        expected = ", ".join(s.describe() for s in specs)
        if isinstance(inputs, Mapping):
            given = dict(inputs)
        else:
            if len(specs) != 1:
                raise EngineInputError(
                    f"{self.path}: a single array was given but the network has {len(specs)} inputs "
                    f"[{expected}]; pass a dict {{name: array}}"
                )
            given = {specs[0].name: inputs}
        names = [s.name for s in specs]
        missing = [n for n in names if n not in given]
        extra = [str(n) for n in given if n not in names]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing input(s) {', '.join(map(repr, missing))}")
            if extra:
                parts.append(f"unknown input name(s) {', '.join(map(repr, extra))}")
            raise EngineInputError(f"{self.path}: {'; '.join(parts)}; the network takes [{expected}]")
        out: Dict[str, np.ndarray] = {}
        for spec in specs:
            value = given[spec.name]
            if not isinstance(value, np.ndarray):
                try:
                    value = np.asarray(value)
                except Exception as exc:  # noqa: BLE001 - any conversion failure is an input error
                    raise EngineInputError(
                        f"{self.path}: input {spec.name!r}: expected an array {spec.describe()}, got "
                        f"{type(value).__name__} ({exc})"
                    ) from None
            want = np.dtype(spec.dtype)
            got = f"got shape {tuple(value.shape)} {value.dtype.name}"
            if value.ndim != spec.rank:
                raise EngineInputError(
                    f"{self.path}: input {spec.name!r}: expected rank {spec.rank} {format_shape(spec.shape)} "
                    f"{want.name}, {got}"
                )
            bad = [ax for ax, d in enumerate(spec.shape)
                   if static_dim(d) is not None and value.shape[ax] != static_dim(d)]
            if bad:
                axes = ", ".join(f"axis {ax} must be {static_dim(spec.shape[ax])}" for ax in bad)
                raise EngineInputError(
                    f"{self.path}: input {spec.name!r}: expected shape {format_shape(spec.shape)} ({axes}), {got}"
                )
            cast, why = _coerce_dtype(value, want)
            if cast is None:
                raise EngineInputError(
                    f"{self.path}: input {spec.name!r}: expected dtype {want.name} "
                    f"{format_shape(spec.shape)}, {got} ({why})"
                )
            out[spec.name] = cast
        return out


def _describe_spec(spec: object) -> str:
    if isinstance(spec, TensorSpec):
        return spec.describe()
    return f"{getattr(spec, 'name', '?')}{list(getattr(spec, 'shape', ()))}"  # a duck-typed engine's spec


def describe_io(engine: object) -> str:
    """``inputs [..], outputs [..]`` of an engine (one :meth:`TensorSpec.describe` per tensor), for messages.

    Works on any object with ``inputs``/``outputs`` sequences of specs, as the runtime stages accept.
    """
    ins = ", ".join(_describe_spec(s) for s in getattr(engine, "inputs", None) or ())
    outs = ", ".join(_describe_spec(s) for s in getattr(engine, "outputs", None) or ())
    return f"inputs [{ins}], outputs [{outs}]"
