"""2D -> 3D lifting: the lifter interface, the VideoPose3D codec, the mmpose-parity path and the streaming Lifter.

One file per concern:

- :mod:`~pose3d_rt.lifters.base`: the lifter interface (:class:`LifterSpec`, the :class:`LifterModel` protocol),
  the engine adapter :class:`EngineLifter` (the spec read from the model metadata), :func:`lift_offline`;
- :mod:`~pose3d_rt.lifters.codec`: the VideoPose3D codec (``norm_pose_2d``, screen normalisation, the frame size
  the codec uses, the 3D post-processing and rebase);
- :mod:`~pose3d_rt.lifters.mmpose_parity`: the data path of mmpose's ``body3d_pose_lifter_demo.py``, bit for bit
  (history, window, collate);
- :mod:`~pose3d_rt.lifters.streaming`: the streaming :class:`Lifter` (``mode="default"`` ring buffers, exact or
  online; ``mode="mmpose"`` over the parity path) and its :class:`LiftedFrame` results;
- :mod:`~pose3d_rt.lifters.motionbert`: MotionBERT's codec, flip test and decode (mmpose's numbers),
  :class:`MotionBERTModel` and :func:`lift_single_frames` (the Inferencer's T = 1 path);
- :mod:`~pose3d_rt.lifters.motionbert_stream`: :class:`MotionBERTLifter`, per-track clips of up to 243 frames or
  online windows, behind the Lifter interface; :func:`make_lifter` picks the lifter class from the model family.

A new lifter family is a new file here behind the :class:`LifterModel` interface; see
:mod:`~pose3d_rt.lifters.base`.
"""
from .base import MODES, EngineLifter, LifterModel, LifterSpec, as_lifter_model, lift_offline
from .codec import codec_frame_size
from .motionbert import MotionBERTModel, lift_single_frames
from .motionbert_stream import MotionBERTLifter, make_lifter
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
    "MotionBERTModel",
    "MotionBERTLifter",
    "lift_single_frames",
    "make_lifter",
]
