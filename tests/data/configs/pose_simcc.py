# ruff: noqa
# Hand-written test config: a top-down SimCC pose model, structured like an RTMPose config (values made up).
_base_ = ['./_base_/runtime.py']

codec = dict(
    type='SimCCLabel',
    input_size=(288, 384),
    sigma=(6.0, 6.9),
    simcc_split_ratio=2.5,
    normalize=False,
    use_dark=False)

model = dict(
    type='TopdownPoseEstimator',
    data_preprocessor=dict(
        type='PoseDataPreprocessor',
        mean=[120.5, 115.0, 100.25],
        std=[60.0, 59.5, 58.0],
        bgr_to_rgb=True),
    backbone=dict(_scope_='toydet', type='ToyNeXt', out_indices=(4, )),
    head=dict(
        type='ToyCCHead',
        in_channels=512,
        out_channels=21,
        input_size=codec['input_size'],
        in_featuremap_size=tuple([s // 32 for s in codec['input_size']]),
        simcc_split_ratio=codec['simcc_split_ratio'],
        decoder=codec),
    test_cfg=dict(flip_test=False))

dataset_type = 'CocoDataset'
data_root = 'data/toy/'
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale', padding=1.3),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='PackPoseInputs'),
]
train_dataloader = dict(
    batch_size=32,
    dataset=dict(
        type='CombinedDataset',
        metainfo=dict(from_file='configs/_base_/datasets/coco.py'),
        datasets=[dict(type=dataset_type, data_root=data_root)],
        pipeline=[]))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        ann_file=data_root + 'annotations/val.json',
        bbox_file=f'{data_root}dets/val_dets.json',
        pipeline=val_pipeline))
test_dataloader = val_dataloader
