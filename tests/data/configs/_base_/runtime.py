# ruff: noqa
# Hand-written test config (mmengine style) for tests/test_configs.py: the shared "runtime" base.
default_scope = 'toyscope'
max_epochs = 100
file_client_args = dict(backend='disk')

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=25),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2),
)
train_cfg = dict(by_epoch=True)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9),
    clip_grad=None)
visualizer = dict(type='ToyVisualizer', name='vis')
log_level = 'INFO'
