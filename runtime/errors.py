"""Exception types of pose3d-rt (see :mod:`pose3d_rt.engines.errors` for the shared base)."""
from __future__ import annotations

from .engines.errors import BackendUnavailableError, ModelError, Pose3DError


class InputError(Pose3DError, ValueError):
    """An input (image, frame, video, folder, URL, array) is missing, unreadable or malformed."""


__all__ = ["Pose3DError", "ModelError", "InputError", "BackendUnavailableError"]
