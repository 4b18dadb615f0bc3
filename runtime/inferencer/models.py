"""The Inferencer's model arguments -> zoo aliases, paths and URLs the hub resolves, plus what their configs say.

``inferencer_demo.py`` takes each model as ``--X NAME`` (an alias of mmpose's metafiles, a model name, or a config
path) with an optional ``--X-weights W``. mmpose resolves them through its metafiles (docs/spec/inferencer.md §1);
here:

- ``--X-weights W`` given: ``W`` is the model (a path, a URL or a zoo alias); ``--X``, if it is a ``.py`` file, is
  read as that model's config (safely, :mod:`pose3d_rt.mmconfig`; a config that is not on disk is skipped with a
  warning, as ``pose3d-rt demo`` does);
- else ``--X`` is mmpose's alias (``human3d``; ``human``/``body``/``body17`` for RTMPose-m body8), a zoo alias, or a
  config path or model name whose stem is the ``config`` of a zoo entry (mmpose's metafile rule) -> that entry;
- not given: ``--pose3d`` is ``human3d``; ``--pose2d`` is ``human`` (what ``Pose3DInferencer`` uses); the
  detector is mmpose's default for body models, RTMDet-m person with ``cat_ids = (0,)`` (which then overrides
  ``--det-cat-ids``, as in mmpose); ``--det-model whole_image`` means no detector (the whole image is the box).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

from ..errors import InputError, Pose3DError
from ..hub import Role, check
from ..hub.registry import list_models, lookup
from ..mmconfig import ModelConfig, load_optional

log = logging.getLogger(__name__)

__all__ = ["InferencerModels", "MMPOSE_ALIASES", "WHOLE_IMAGE", "inferencer_models", "model_for"]

#: mmpose metafile aliases of the Inferencer -> zoo aliases
MMPOSE_ALIASES: Dict[Role, Dict[str, str]] = {
    Role.LIFTER: {"human3d": "human3d"},
    Role.POSE2D: {"human": "rtmpose-m", "body": "rtmpose-m", "body17": "rtmpose-m"},
    Role.DETECTOR: {},
}
DEFAULTS: Dict[Role, str] = {Role.LIFTER: "human3d", Role.POSE2D: "human", Role.DETECTOR: "rtmdet-m-person"}
DEFAULT_DET_CAT_IDS: Tuple[int, ...] = (0,)
WHOLE_IMAGE = ("whole_image", "whole-image")
FLAGS: Dict[Role, Tuple[str, str]] = {Role.LIFTER: ("--pose3d", "--pose3d-weights"),
                                      Role.POSE2D: ("--pose2d", "--pose2d-weights"),
                                      Role.DETECTOR: ("--det-model", "--det-weights")}


@dataclass
class InferencerModels:
    """The three models as hub arguments (``detector`` None: no detector), the class ids kept, the configs read
    (``{role value: ModelConfig or None}``) and the flag that named each model (for errors)."""

    detector: Optional[str]
    pose2d: str
    lifter: str
    det_cat_ids: Tuple[int, ...]
    configs: Dict[str, Optional[ModelConfig]] = field(default_factory=dict)
    flags: Dict[Role, str] = field(default_factory=dict)


def _by_config_stem(name: str, role: Role) -> Optional[str]:
    stem = Path(name).name
    stem = stem[:-3] if stem.endswith(".py") else stem
    for entry in list_models(role):
        if entry.config and Path(entry.config).stem == stem:
            return entry.alias
    return None


def model_for(name: Optional[str], weights: Optional[str], role: Role) -> Tuple[str, Optional[str], str]:
    """(hub argument, config path or None, the flag it came from) for one role; see the module docstring."""
    flag, wflag = FLAGS[role]
    config = name if name is not None and str(name).endswith(".py") else None
    if weights:
        return str(weights), config, wflag
    text = DEFAULTS[role] if name is None else str(name)
    alias = MMPOSE_ALIASES[role].get(text.strip().lower())
    if alias is None and lookup(text) is not None:
        alias = text
    if alias is None:
        alias = _by_config_stem(text, role)  # a config path or a model name (mmpose's metafile rule)
    if alias is None and config is None and Path(text).exists():
        return text, None, flag  # a checkpoint, an ONNX file or an engine given as the model itself
    if alias is None:
        raise InputError(f"{flag} {text}: not an mmpose alias ({', '.join(MMPOSE_ALIASES[role]) or '-'}), a zoo "
                         f"alias, a model file or the config of a zoo model; give its checkpoint with {wflag}")
    return alias, config, flag


def inferencer_models(pose3d: Optional[str] = None, pose3d_weights: Optional[str] = None,
                      pose2d: Optional[str] = None, pose2d_weights: Optional[str] = None,
                      det_model: Optional[str] = None, det_weights: Optional[str] = None,
                      det_cat_ids: Optional[Sequence[int]] = None) -> InferencerModels:
    """Resolve the Inferencer's model flags without network access (typos and wrong roles fail here, naming the
    flag), and read the configs given as ``.py`` files."""
    out: Dict[Role, Optional[str]] = {}
    configs: Dict[str, Optional[ModelConfig]] = {}
    flags: Dict[Role, str] = {}
    cat_ids = tuple(int(c) for c in det_cat_ids) if det_cat_ids is not None else DEFAULT_DET_CAT_IDS
    for role, name, weights in ((Role.LIFTER, pose3d, pose3d_weights), (Role.POSE2D, pose2d, pose2d_weights),
                                (Role.DETECTOR, det_model, det_weights)):
        if role is Role.DETECTOR and name is not None and str(name).strip().lower() in WHOLE_IMAGE:
            out[role], configs[role.value] = None, None
            continue
        if role is Role.DETECTOR and name is None and not weights:
            cat_ids = DEFAULT_DET_CAT_IDS  # mmpose: the default detector's cat_ids override --det-cat-ids
        arg, config, flag = model_for(name, weights, role)
        try:
            check(arg, role)
        except Pose3DError as exc:
            raise type(exc)(f"{flag}: {exc}") from None
        out[role], flags[role] = arg, flag
        configs[role.value] = load_optional(config, role.value) if config else None
    if not cat_ids:
        raise InputError("--det-cat-ids: give at least one class id")
    return InferencerModels(out[Role.DETECTOR], str(out[Role.POSE2D]), str(out[Role.LIFTER]), cat_ids, configs,
                            flags)
