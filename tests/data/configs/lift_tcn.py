# ruff: noqa
# Hand-written test config: a temporal-convolution lifter, structured like a VideoPose3D config (values made up).
_base_ = ['./_base_/runtime.py']

num_joints = 17
codec = dict(
    type='VideoPoseLifting',
    num_keypoints=num_joints,
    zero_center=True,
    root_index=0,
    remove_root=False)

model = dict(
    type='PoseLifter',
    backbone=dict(
        type='TCN',
        in_channels=2 * num_joints,
        stem_channels=512,
        num_blocks=4,
        kernel_sizes=(3, 3, 3, 3, 3),
        dropout=0.25,
        use_stride_conv=True),
    head=dict(type='TemporalRegressionHead', in_channels=512, num_joints=num_joints, decoder=codec))

dataset_type = 'Human36mDataset'
train_dataloader = dict(
    dataset=dict(type=dataset_type, seq_len=243, causal=False, pad_video_seq=True))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        seq_len=3 ** 5,
        causal=False,
        pad_video_seq=True,
        keypoint_2d_src='detection',
        test_mode=True))
test_dataloader = val_dataloader
