# ruff: noqa
# Hand-written test config: a shorter, causal variant of lift_tcn.py.
_base_ = './lift_tcn.py'

model = dict(backbone=dict(num_blocks=2, kernel_sizes=(3, 3, 3), causal=True))
val_dataloader = dict(dataset=dict(seq_len=27, causal=True, seq_step=2))
test_dataloader = val_dataloader
