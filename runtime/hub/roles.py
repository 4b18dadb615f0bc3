"""The three model roles of the pipeline, one home for their names.

``Role.value`` is the name the zoo uses (``models.json``, ``pose3d-rt models list --role``, config summaries);
:attr:`Role.label` is the wording of messages; :attr:`Role.flag` is the ``run`` flag that takes the model;
:meth:`Role.parse` accepts every spelling users and callers pass today (``"det"``, ``"2D pose model"``, ...).
"""
from __future__ import annotations

from enum import Enum
from typing import Dict, Optional, Union

from ..errors import InputError


class Role(str, Enum):
    """A model role. A ``str`` subclass: ``Role.POSE2D == "pose2d"``, and ``str(role)`` / f-strings give the value."""

    DETECTOR = "detector"
    POSE2D = "pose2d"
    LIFTER = "lifter"

    def __str__(self) -> str:
        return self.value

    @property
    def label(self) -> str:
        """How messages name the role: ``detector``, ``2D pose model``, ``lifter``."""
        return _LABELS[self]

    @property
    def flag(self) -> str:
        """The ``pose3d-rt run`` flag that takes this model: ``--det``, ``--pose2d``, ``--lifter``."""
        return _FLAGS[self]

    @classmethod
    def parse(cls, role: Union[str, Role]) -> Role:
        """The role named by ``role`` (any accepted spelling, case-insensitive); :class:`InputError` otherwise."""
        if isinstance(role, Role):
            return role
        key = str(role).strip().lower()
        if key not in _SPELLINGS:
            raise InputError(f"unknown model role {role!r}; expected one of {', '.join(r.value for r in cls)}")
        return _SPELLINGS[key]


#: Model family (ONNX metadata ``family``, checkpoint family of :mod:`pose3d_rt.export.checkpoint`) -> its role.
FAMILY_ROLES: Dict[str, Role] = {
    "rtmdet": Role.DETECTOR, "rtmpose": Role.POSE2D, "tcn": Role.LIFTER, "videopose3d_original": Role.LIFTER,
    "videopose3d": Role.LIFTER, "motionbert": Role.LIFTER, "motionbert_original": Role.LIFTER,
}


def role_of_family(family: str) -> Optional[Role]:
    """The role of a model ``family`` (case-insensitive), or None for a family this table does not know."""
    return FAMILY_ROLES.get(str(family).strip().lower())


_LABELS: Dict[Role, str] = {Role.DETECTOR: "detector", Role.POSE2D: "2D pose model", Role.LIFTER: "lifter"}
_FLAGS: Dict[Role, str] = {Role.DETECTOR: "--det", Role.POSE2D: "--pose2d", Role.LIFTER: "--lifter"}
_SPELLINGS: Dict[str, Role] = {
    "detector": Role.DETECTOR, "det": Role.DETECTOR, "person detector": Role.DETECTOR,
    "pose2d": Role.POSE2D, "2d": Role.POSE2D, "pose": Role.POSE2D, "2d pose model": Role.POSE2D,
    "pose estimator": Role.POSE2D,
    "lifter": Role.LIFTER, "pose3d": Role.LIFTER, "3d": Role.LIFTER, "pose lifter": Role.LIFTER,
}

__all__ = ["Role", "FAMILY_ROLES", "role_of_family"]
