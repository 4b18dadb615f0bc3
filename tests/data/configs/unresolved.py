# ruff: noqa
# Hand-written test config: names that cannot be known without executing the file.
import os
from toy_package.helpers import helper

data_root = os.environ.get('TOY_DATA', 'data/')
ann_file = data_root + 'annotations.json'
workers = helper(4)
batch = 16
scaled = batch * 2 + 1
sizes = [batch, helper(1)]
model = dict(
    type='Foo',
    backbone=dict(depth=helper(50), width=64),
    pretrained=os.path.join('a', 'b'))


def make():
    return 1


made = make()
for i in range(3):
    loop_var = i
extra = dict(a=1)
extra.setdefault('b', 2)
label = f'{batch}-{scaled:03d}'
