"""``pose3d-rt inferencer``: mmpose's ``demo/inferencer_demo.py`` (``MMPoseInferencer`` with ``--pose3d``) without
mmlab.

- :mod:`.models` -- the Inferencer's model flags (mmpose aliases, config paths, ``--X-weights``) -> hub arguments;
- :mod:`.stage2d` -- its 2D stage rules: class filter, +1-pixel box NMS, whole-image box, fresh ids (I1, I4);
- :mod:`.mmpose_mode` -- :class:`InferencerMMPose`, ``mode="mmpose"``: the Inferencer number for number;
- :mod:`.build` -- the engines for either mode (default mode is the normal pipeline with a MotionBERT lifter);
- :mod:`.outputs` / :mod:`.runner` -- inputs, ``--pred-out-dir`` JSON and ``--vis-out-dir`` drawings.
"""
from .build import EngineOptions, build_default, build_mmpose
from .mmpose_mode import InferencerMMPose, InferencerOptions
from .models import InferencerModels, inferencer_models
from .runner import InferencerSummary, OutputOptions, run_inferencer
from .stage2d import Boxes2D, fresh_track_ids, select_boxes

__all__ = [
    "EngineOptions", "build_default", "build_mmpose", "InferencerMMPose", "InferencerOptions", "InferencerModels",
    "inferencer_models", "InferencerSummary", "OutputOptions", "run_inferencer", "Boxes2D", "fresh_track_ids",
    "select_boxes",
]
