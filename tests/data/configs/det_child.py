# ruff: noqa
# Hand-written test config: a "person" variant of det_base.py (dict merge, _delete_, shared dataloader).
_base_ = './det_base.py'

model = dict(
    backbone=dict(deepen_factor=0.33),
    neck=dict(_delete_=True, type='ToyFPN', out_channels=64),
    bbox_head=dict(num_classes=1),
    test_cfg=dict(score_thr=0.04, nms=dict(iou_threshold=0.55), max_per_img=50))

val_dataloader = dict(dataset=dict(metainfo=dict(classes=('person', ))))
test_dataloader = val_dataloader
default_hooks = dict(logger=dict(interval=10))
