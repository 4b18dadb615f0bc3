"""Backends: run one network on one backend behind :class:`~pose3d_rt.engines.base.Engine`."""
from .base import Engine, TensorSpec
from .errors import BackendUnavailableError, ModelError, Pose3DError

__all__ = ["Engine", "TensorSpec", "ModelError", "Pose3DError", "BackendUnavailableError"]
