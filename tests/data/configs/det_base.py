# ruff: noqa
# Hand-written test config: a one-stage detector, structured like an mmdet config (values are made up).
_base_ = ['./_base_/runtime.py']

img_size = 512
base_lr = 0.002

model = dict(
    type='ToyDetector',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[101.5, 112.25, 120.0],
        std=[55.0, 56.5, 57.25],
        bgr_to_rgb=False,
        batch_augments=None),
    backbone=dict(type='ToyNet', deepen_factor=1, widen_factor=1.0),
    neck=dict(type='ToyPAFPN', in_channels=[128, 256, 512], out_channels=128),
    bbox_head=dict(type='ToyHead', num_classes=80, in_channels=128, exp_on_reg=True),
    test_cfg=dict(
        nms_pre=20000,
        min_bbox_size=0,
        score_thr=0.002,
        nms=dict(type='nms', iou_threshold=0.7),
        max_per_img=250),
)

test_pipeline = [
    dict(type='LoadImageFromFile', file_client_args={{_base_.file_client_args}}),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='Pad', size=(img_size, img_size), pad_val=dict(img=(110, 110, 110))),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'scale_factor')),
]

val_dataloader = dict(
    batch_size=4,
    dataset=dict(type='CocoDataset', data_root='data/toy/', pipeline=test_pipeline))
test_dataloader = val_dataloader

stage2_epochs = 10
train_cfg = dict(
    max_epochs=max_epochs,
    dynamic_intervals=[(max_epochs - stage2_epochs, 1)])

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=base_lr, weight_decay=0.05))

param_scheduler = [
    dict(type='LinearLR', start_factor=1.0e-5, by_epoch=False, begin=0, end=500),
    dict(
        type='CosineAnnealingLR',
        eta_min=base_lr * 0.05,
        begin=max_epochs // 2,
        end=max_epochs,
        T_max=-(-max_epochs // 3)),
]
