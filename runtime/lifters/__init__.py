"""2D -> 3D lifting: the lifter interface, the VideoPose3D codec, the streaming :class:`Lifter`."""
from .streaming import LiftedFrame, Lifter, LifterSpec

__all__ = ["LiftedFrame", "Lifter", "LifterSpec"]
