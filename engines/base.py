"""The one small interface every backend implements: named numpy inputs -> named numpy outputs.

Also here, because every backend and every runtime stage needs them:

- :meth:`Engine.prepare_inputs` validates what a caller passes (names, rank, static dims, dtype) *before* the
  backend sees it, so a mistake surfaces as :class:`EngineInputError` naming the input and the expected spec
  rather than as a traceback from deep inside onnxruntime or TensorRT;
- :func:`check_signature` / :class:`Signature` let a runtime stage state what kind of network it needs ("1 input
  (N, 3, H, W), outputs simcc_x, simcc_y") and refuse anything else with a :class:`ModelError` that says what
  the file looks like instead ("looks like a detector").
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import EngineInputError, ModelError

Dim = Union[int, str, None]  # an int for a static dim, a name (or None) for a dynamic one
Inputs = Union[np.ndarray, Mapping[str, np.ndarray]]




def _static_dim(d: Dim) -> Optional[int]:
    return int(d) if isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0 else None


def _dim_text(d: Dim) -> str:
    s = _static_dim(d)
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
        return _static_dim(self.shape[axis]) is None

    def static_dim(self, axis: int) -> Optional[int]:
        """The size of ``axis`` if it is static, else ``None``."""
        return _static_dim(self.shape[axis])

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
                   if _static_dim(d) is not None and value.shape[ax] != _static_dim(d)]
            if bad:
                axes = ", ".join(f"axis {ax} must be {_static_dim(spec.shape[ax])}" for ax in bad)
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


# --------------------------------------------------------------------------------------------------------------
# Role checking: does an engine look like the network a runtime stage needs?

Key = Union[str, int]  # a tensor name, or a position in graph order


@dataclass(frozen=True)
class TensorPattern:
    """What a stage needs of one tensor: a rank or a shape pattern, and optionally the allowed dtypes.

    In ``shape``, an int must equal the model's dim when the model's dim is static (a dynamic model dim is
    accepted, it can take that value); ``None`` or a name (``"N"``, ``"H"``) matches anything.
    """

    shape: Union[int, Tuple[Dim, ...]]
    dtypes: Optional[Tuple[np.dtype, ...]] = None

    @property
    def rank(self) -> int:
        return self.shape if isinstance(self.shape, int) else len(self.shape)

    def describe(self) -> str:
        text = f"rank {self.shape}" if isinstance(self.shape, int) else format_shape(self.shape)
        if self.dtypes:
            text += " " + "|".join(np.dtype(d).name for d in self.dtypes)
        return text

    def mismatch(self, spec: TensorSpec) -> Optional[str]:
        """Why ``spec`` does not fit (short text), or ``None`` when it does."""
        if spec.rank != self.rank:
            return f"rank {spec.rank}, expected {self.rank}"
        if not isinstance(self.shape, int):
            for ax, (want, have) in enumerate(zip(self.shape, spec.shape)):
                w, h = _static_dim(want), _static_dim(have)
                if w is not None and h is not None and w != h:
                    return f"axis {ax} is {h}, expected {w}"
        if self.dtypes and np.dtype(spec.dtype) not in {np.dtype(d) for d in self.dtypes}:
            return f"dtype {np.dtype(spec.dtype).name}, expected {'|'.join(np.dtype(d).name for d in self.dtypes)}"
        return None


PatternLike = Union[int, Sequence[Dim], TensorPattern]


def _as_pattern(p: PatternLike) -> TensorPattern:
    if isinstance(p, TensorPattern):
        return p
    if isinstance(p, (int, np.integer)):
        return TensorPattern(int(p))
    return TensorPattern(tuple(p))


def _find(specs: Sequence[TensorSpec], key: Key) -> Optional[TensorSpec]:
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return specs[key] if -len(specs) <= key < len(specs) else None
    return next((s for s in specs if s.name == key), None)


def _key_text(key: Key) -> str:
    return f"#{key}" if isinstance(key, (int, np.integer)) else str(key)


@dataclass(frozen=True)
class Signature:
    """The inputs/outputs a role needs: ``{name or position: rank | shape pattern | TensorPattern}``.

    ``n_inputs`` / ``n_outputs`` pin the counts (``None`` = at least as many as the patterns reference).
    ``description`` is the human text used in messages (default: built from the patterns).
    """

    inputs: Mapping[Key, PatternLike] = field(default_factory=dict)
    outputs: Mapping[Key, PatternLike] = field(default_factory=dict)
    n_inputs: Optional[int] = None
    n_outputs: Optional[int] = None
    description: Optional[str] = None

    def describe(self) -> str:
        if self.description:
            return self.description
        parts = []
        for what, pats, n in (("inputs", self.inputs, self.n_inputs), ("outputs", self.outputs, self.n_outputs)):
            items = ", ".join(f"{_key_text(k)} {_as_pattern(p).describe()}" for k, p in pats.items())
            count = f"{n} " if n is not None else ""
            if items or n is not None:
                parts.append(f"{count}{what} [{items}]" if items else f"{count}{what}")
        return "; ".join(parts) or "any network"

    def mismatch(self, engine: Engine) -> Optional[str]:
        """Why ``engine`` does not fit (short text), or ``None`` when it does."""
        for what, specs, pats, n in (("input", list(engine.inputs), self.inputs, self.n_inputs),
                                     ("output", list(engine.outputs), self.outputs, self.n_outputs)):
            if n is not None and len(specs) != n:
                return f"{len(specs)} {what}(s), expected {n}"
            for key, pat in pats.items():
                spec = _find(specs, key)
                if spec is None:
                    return f"no {what} {_key_text(key)}"
                why = _as_pattern(pat).mismatch(spec)
                if why is not None:
                    return f"{what} {spec.name!r}: {why}"
        return None

    def matches(self, engine: Engine) -> bool:
        return self.mismatch(engine) is None


def describe_io(engine: Engine) -> str:
    """``inputs [..], outputs [..]`` of an engine, for messages."""
    return (f"inputs [{', '.join(s.describe() for s in engine.inputs)}], "
            f"outputs [{', '.join(s.describe() for s in engine.outputs)}]")


def check_signature(engine: Engine, role: str, inputs: Optional[Mapping[Key, PatternLike]] = None,
                    outputs: Optional[Mapping[Key, PatternLike]] = None, *, n_inputs: Optional[int] = None,
                    n_outputs: Optional[int] = None, description: Optional[str] = None,
                    others: Optional[Mapping[str, Signature]] = None) -> None:
    """Raise :class:`ModelError` unless ``engine`` has the inputs/outputs the ``role`` needs.

    ``others`` maps other role names to their signatures, so the message can say what the file *is*::

        check_signature(engine, "pose", {0: ("N", 3, "H", "W")}, {"simcc_x": 3, "simcc_y": 3}, n_inputs=1,
                        description="1 input (N, 3, H, W), outputs simcc_x, simcc_y",
                        others={"detector": Signature(outputs={"dets": 3, "labels": 2})})
        # ModelError: det.onnx: not a pose model: expected 1 input (N, 3, H, W), outputs simcc_x, simcc_y;
        #   found inputs [input[?,3,640,640]:float32], outputs [dets[?,?,5]:float32, labels[?,?]:int64]
        #   (no output simcc_x; looks like a detector model)

    The embedded metadata ``family`` (if any) is also named in the message.
    """
    sig = Signature(dict(inputs or {}), dict(outputs or {}), n_inputs, n_outputs, description)
    why = sig.mismatch(engine)
    if why is None:
        return
    hints = [why]
    looks = [name for name, other in (others or {}).items() if other.matches(engine)]
    if looks:
        hints.append(f"looks like a {' or '.join(looks)} model")
    family = (getattr(engine, "metadata", None) or {}).get("family")
    if family:
        hints.append(f"metadata family={family!r}")
    raise ModelError(
        f"{getattr(engine, 'path', '<engine>')}: not a {role} model: expected {sig.describe()}; "
        f"found {describe_io(engine)} ({'; '.join(hints)})"
    )
