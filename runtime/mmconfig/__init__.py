"""OpenMMLab config files read without mmengine and without executing them.

- :func:`load_config` -- a ``.py`` config (and its bases) as a plain dict (:mod:`.loader`, over the safe evaluator
  of :mod:`.evaluator`, :mod:`.statements` and :mod:`.values`);
- :func:`summarize` / :func:`load_optional` -- the fields of one model role as a :class:`ModelConfig`
  (:mod:`.summary`);
- :func:`pipeline_options` / :func:`model_mismatches` -- what the configs mean for ``Pose3DPipeline``
  (:mod:`.options`).
"""
from .loader import load_config
from .options import model_mismatches, pipeline_options
from .summary import ModelConfig, load_optional, summarize

__all__ = ["load_config", "load_optional", "summarize", "ModelConfig", "pipeline_options", "model_mismatches"]
