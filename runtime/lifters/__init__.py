"""2D -> 3D lifting: the lifter interface, the VideoPose3D codec, the mmpose-parity path and the streaming Lifter.

One file per concern:

- :mod:`~pose3d_rt.lifters.base`: the lifter interface (:class:`LifterSpec`, the :class:`LifterModel` protocol),
  the engine adapter :class:`EngineLifter` (the spec read from the model metadata), :func:`lift_offline`;
- :mod:`~pose3d_rt.lifters.codec`: the VideoPose3D codec (``norm_pose_2d``, screen normalisation, the frame size
  the codec uses, the 3D post-processing and rebase);
- :mod:`~pose3d_rt.lifters.mmpose_parity`: the data path of mmpose's ``body3d_pose_lifter_demo.py``, bit for bit
  (history, window, collate);
- :mod:`~pose3d_rt.lifters.streaming`: the streaming :class:`Lifter` (``mode="default"`` ring buffers, exact or
  online; ``mode="mmpose"`` over the parity path) and its :class:`LiftedFrame` results.

A new lifter family (MotionBERT next) is a new file here behind the :class:`LifterModel` interface; see
:mod:`~pose3d_rt.lifters.base`.
"""
from .base import MODES, EngineLifter, LifterModel, LifterSpec, as_lifter_model, lift_offline
from .codec import codec_frame_size
from .streaming import LiftedFrame, Lifter

__all__ = [
    "MODES",
    "LifterSpec",
    "LifterModel",
    "EngineLifter",
    "as_lifter_model",
    "lift_offline",
    "codec_frame_size",
    "LiftedFrame",
    "Lifter",
]
