# ruff: noqa
# Hand-written test config: a base for newstyle.py (read via ``with read_base()``).
train_cfg = dict(by_epoch=True, val_interval=5)
num_keypoints = 17
