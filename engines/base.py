"""The one small interface every backend implements: named numpy inputs -> named numpy outputs."""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

Dim = Union[int, str, None]  # an int for a static dim, a name (or None) for a dynamic one


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
        return not isinstance(self.shape[axis], int) or self.shape[axis] < 0

    def describe(self) -> str:
        dims = ",".join(str(d) if isinstance(d, int) and d >= 0 else (d or "?") for d in self.shape)
        return f"{self.name}[{dims}]:{np.dtype(self.dtype).name}"


@dataclass
class Engine(abc.ABC):
    """One network on one backend.

    ``engine(inputs)`` / ``engine.run(inputs)`` takes ``{name: array}`` (or a single array for single-input
    networks) and returns ``{name: array}`` for every output, in the order of ``outputs``.
    ``metadata`` holds the model's embedded key/value metadata (ONNX ``metadata_props``, or the JSON header of
    a TensorRT engine); it is empty for files that carry none.
    """

    path: str
    inputs: Sequence[TensorSpec] = field(default_factory=tuple)
    outputs: Sequence[TensorSpec] = field(default_factory=tuple)
    metadata: Dict[str, str] = field(default_factory=dict)

    @abc.abstractmethod
    def run(self, inputs: Union[np.ndarray, Mapping[str, np.ndarray]]) -> Dict[str, np.ndarray]:
        ...

    def __call__(self, inputs: Union[np.ndarray, Mapping[str, np.ndarray]]) -> Dict[str, np.ndarray]:
        return self.run(inputs)

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
