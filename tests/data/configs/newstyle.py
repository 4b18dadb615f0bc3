# ruff: noqa
# Hand-written test config in mmengine's "new" (lazy import) style.
from mmengine.config import read_base

with read_base():
    from .newstyle_base import *
    from ._base_.runtime import max_epochs as epochs

from toy_package.codecs import ToyCodec

codec = dict(type=ToyCodec, input_size=(160, 224))
train_cfg.update(max_epochs=epochs * 2)
model = dict(type='ToyPose', head=dict(out_channels=num_keypoints, decoder=codec))
