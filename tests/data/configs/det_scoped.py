# ruff: noqa
# Hand-written test config: one base lives in another package (scope prefix), one is local.
_base_ = ['mmdet::toy/toy-detector_s_coco.py', './_base_/runtime.py']

model = dict(
    bbox_head=dict(num_classes=1),
    test_cfg=dict(score_thr=0.3, nms=dict(type='nms', iou_threshold=0.45)))
test_pipeline = [
    dict(type='LoadImageFromFile', file_client_args={{_base_.file_client_args}}),
    dict(type='Resize', scale=416, keep_ratio=False),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
