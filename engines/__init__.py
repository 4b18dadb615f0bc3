"""Backends: run one network on one backend behind :class:`~pose3d_rt.engines.base.Engine`.

``load_engine(path, device="cpu", threads=None)`` opens ``.onnx`` files on ONNX Runtime (CPU, CUDA or TensorRT
execution provider) and pose3d-rt ``.engine`` files on native TensorRT. Backends import onnxruntime / tensorrt /
pycuda lazily, so importing this package is cheap and never needs a GPU package.
"""
from .base import (
    Engine,
    EngineInputError,
    TensorSpec,
    describe_io,
    static_dim,
)
from .errors import BackendUnavailableError, ModelError, Pose3DError
from .loader import CHECKPOINT_SUFFIXES, ENGINE_SUFFIXES, load_engine
from .onnxruntime import OrtEngine
from .tensorrt import TrtEngine

__all__ = [
    "Engine",
    "TensorSpec",
    "EngineInputError",
    "describe_io",
    "static_dim",
    "load_engine",
    "OrtEngine",
    "TrtEngine",
    "ENGINE_SUFFIXES",
    "CHECKPOINT_SUFFIXES",
    "ModelError",
    "Pose3DError",
    "BackendUnavailableError",
]
