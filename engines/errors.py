"""Exception types shared by every layer (defined here, at the lowest layer, so engines/ imports nothing above it).

Every error a user can cause (a bad file, a bad flag, a bad frame) is raised as one of these, with a message
that names the file or argument and what was expected. The CLI prints the message on one line and exits 2.
"""
from __future__ import annotations


class Pose3DError(Exception):
    """Base class of every error pose3d-rt raises on purpose."""


class ModelError(Pose3DError, ValueError):
    """A model file is missing, unreadable, or not what its role needs (wrong inputs/outputs/family)."""


class BackendUnavailableError(Pose3DError, RuntimeError):
    """A requested backend/provider (CUDA, TensorRT, torch) is not installed or has no device."""


class EngineInputError(Pose3DError, ValueError):
    """Arrays or arguments given to an engine do not fit the network (wrong/missing input name, rank, static dim,
    dtype) or the backend (unknown device string)."""
