"""Every exception type pose3d-rt raises on purpose, in one place.

The base types live in :mod:`pose3d_rt.engines.errors` (the lowest layer, so that ``engines/`` imports nothing
above it) and are re-exported here; the types only the runtime raises are defined here. The CLI prints any
:class:`Pose3DError` as one line ``pose3d-rt: error: ...`` and exits with code 2.

- :class:`Pose3DError` -- base of all of them.
- :class:`ModelError` -- a model file is missing, unreadable or not what its role needs.
- :class:`BackendUnavailableError` -- a requested backend/provider (CUDA, TensorRT, torch) is not available.
- :class:`EngineInputError` -- arrays handed to an engine do not match the network's inputs.
- :class:`InputError` -- an input (image, frame, video, folder, URL, array, option value) is missing or malformed.
- :class:`ConfigError` -- an OpenMMLab config file is unreadable, not a config, invalid or has cyclic bases.
"""
from __future__ import annotations

from .engines.errors import BackendUnavailableError, EngineInputError, ModelError, Pose3DError


class InputError(Pose3DError, ValueError):
    """An input (image, frame, video, folder, URL, array, option value) is missing, unreadable or malformed."""


class ConfigError(Pose3DError, ValueError):
    """An OpenMMLab config file is unreadable, not a Python config, syntactically invalid, or has cyclic bases."""


__all__ = ["Pose3DError", "ModelError", "BackendUnavailableError", "EngineInputError", "InputError", "ConfigError"]
