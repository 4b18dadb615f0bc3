"""pose3d-rt: two-stage 3D human pose estimation without mmlab.

The runtime (this package) is pure numpy + OpenCV; networks run behind :mod:`pose3d_rt.engines`;
torch is only used by :mod:`pose3d_rt.export`, which is imported lazily.
"""
from ._version import __version__
from .errors import InputError, ModelError, Pose3DError

__all__ = ["__version__", "Pose3DError", "ModelError", "InputError"]
