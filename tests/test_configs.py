"""Static reading of OpenMMLab (mmengine) Python configs: runtime/mmconfig/ (loader, evaluator, summary).

The config files under tests/data/configs/ are hand-written imitations of the structure of real OpenMMLab configs
(values invented). Broken ones (syntax error, cyclic bases) are written to tmp_path by the tests.
"""
from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest
from pose3d_rt.errors import ConfigError, Pose3DError
from pose3d_rt.mmconfig import ModelConfig, load_config, load_optional, summarize
from pose3d_rt.mmconfig.summary import dataset_name

DATA = Path(__file__).resolve().parent / "data" / "configs"
LOGGER = "pose3d_rt.mmconfig"  # the parent of the loggers of every mmconfig module


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------------------
# load_config: literals and expressions
# ---------------------------------------------------------------------------------------------------------------


def test_literals_and_arithmetic(tmp_path):
    path = write(tmp_path, "lit.py", """
        a = 3
        b = -a
        c = 256 * 2
        d = c // 10
        e = (1.5, -2, None, True, False, 'x')
        f = [a, b, [c]]
        g = {'k': a, 'n': {'m': e[1]}}
        h = dict(x=1, y=dict(z=a + 0.5))
        i = 'ab' + "cd"
        j = 2 ** 10 - 1
        k = a if a > 2 else 0
        m = e[:2]
        n = tuple([s // 32 for s in (192, 256)])
        o = {**g, 'extra': not False}
        p = dict(h, w=min(4, 2), r=round(2.6))
        q = f'{i}-{a:02d}'
    """)
    cfg = load_config(path)
    assert cfg["a"] == 3 and cfg["b"] == -3
    assert cfg["c"] == 512 and cfg["d"] == 51
    assert cfg["e"] == (1.5, -2, None, True, False, "x") and isinstance(cfg["e"], tuple)
    assert cfg["f"] == [3, -3, [512]]
    assert cfg["g"] == {"k": 3, "n": {"m": -2}}
    assert cfg["h"] == {"x": 1, "y": {"z": 3.5}}
    assert cfg["i"] == "abcd"
    assert cfg["j"] == 1023
    assert cfg["k"] == 3
    assert cfg["m"] == (1.5, -2)
    assert cfg["n"] == (6, 8)
    assert cfg["o"] == {"k": 3, "n": {"m": -2}, "extra": True}
    assert cfg["p"] == {"x": 1, "y": {"z": 3.5}, "w": 2, "r": 3}
    assert cfg["q"] == "abcd-03"


def test_later_assignment_wins_and_aug_assign(tmp_path):
    path = write(tmp_path, "re.py", """
        x = 1
        y = x + 1
        x = 10
        x += 5
        model = dict(a=1, b=dict(c=2))
        model['b']['c'] = 3
        model.d = y
        first, second = 7, 8
    """)
    cfg = load_config(path)
    assert cfg["x"] == 15 and cfg["y"] == 2
    assert cfg["model"] == {"a": 1, "b": {"c": 3}, "d": 2}
    assert (cfg["first"], cfg["second"]) == (7, 8)


def test_unresolvable_names_are_absent_and_never_raise(caplog):
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        cfg = load_config(DATA / "unresolved.py")
    # known values survive
    assert cfg["batch"] == 16
    assert cfg["scaled"] == 33
    assert cfg["label"] == "16-033"
    # only the entries that depend on a call are dropped from a dict
    assert cfg["model"] == {"type": "Foo", "backbone": {"width": 64}}
    # everything bound by import/def/for, or depending on them, or mutated by an unknown method, is absent
    for name in ("os", "helper", "data_root", "ann_file", "workers", "sizes", "make", "made", "i", "loop_var", "extra"):
        assert name not in cfg, name
    assert "unresolved.py:6" in caplog.text and "data_root" in caplog.text


def test_no_code_is_executed(tmp_path):
    marker = tmp_path / "executed"
    path = write(tmp_path, "evil.py", f"""
        import os
        open({str(marker)!r}, 'w').write('x')
        __import__('os').system('touch {marker}')
        value = (lambda: open({str(marker)!r}, 'w'))()
        safe = 1
    """)
    cfg = load_config(path)
    assert cfg == {"safe": 1}
    assert not marker.exists()


def test_huge_values_are_refused_not_built(tmp_path):
    path = write(tmp_path, "big.py", """
        a = 'x' * 10 ** 9
        b = 10 ** 10 ** 10
        c = [0] * 100000000
        d = '%0999999999d' % 1
        ok = 2 ** 20
    """)
    assert load_config(path) == {"ok": 2 ** 20}


def test_odd_but_valid_python_does_not_crash(tmp_path):
    path = write(tmp_path, "odd.py", """
        a = {(1, [2]): 3}
        b = dict([([1], 2)])
        c = 1 < 'x'
        d = -'x'
        e = [1, 2][5]
        f = dict(k=[1][3], ok=1)
        g = undefined_name + 1
        with open('x') as fh:
            h = fh.read()
        class K:
            attr = 1
        lst = [1, 2]
        lst.append(3)
        ok = 1
    """)
    assert load_config(path) == {"f": {"ok": 1}, "ok": 1}


# ---------------------------------------------------------------------------------------------------------------
# load_config: _base_ inheritance
# ---------------------------------------------------------------------------------------------------------------


def test_base_merge_is_recursive():
    cfg = load_config(DATA / "det_child.py")
    model = cfg["model"]
    # child keys override, sibling keys from the base survive (two levels of inheritance)
    assert model["backbone"] == {"type": "ToyNet", "deepen_factor": 0.33, "widen_factor": 1.0}
    assert model["bbox_head"] == {"type": "ToyHead", "num_classes": 1, "in_channels": 128, "exp_on_reg": True}
    assert model["test_cfg"] == {
        "nms_pre": 20000, "min_bbox_size": 0, "score_thr": 0.04,
        "nms": {"type": "nms", "iou_threshold": 0.55}, "max_per_img": 50,
    }
    # from the grand-parent runtime base, partly overridden
    assert cfg["default_hooks"]["logger"] == {"type": "LoggerHook", "interval": 10}
    assert cfg["default_hooks"]["checkpoint"]["max_keep_ckpts"] == 2
    assert cfg["default_scope"] == "toyscope"
    assert cfg["max_epochs"] == 100


def test_delete_replaces_instead_of_merging():
    cfg = load_config(DATA / "det_child.py")
    assert cfg["model"]["neck"] == {"type": "ToyFPN", "out_channels": 64}  # no in_channels from det_base
    # det_base.py replaces the runtime's SGD optimizer wrapper wholesale
    assert cfg["optim_wrapper"] == {"type": "OptimWrapper",
                                    "optimizer": {"type": "AdamW", "lr": 0.002, "weight_decay": 0.05}}
    assert "_delete_" not in repr(cfg)


def test_child_alias_merges_onto_base_value():
    # det_child: ``test_dataloader = val_dataloader`` holds only the metainfo; merged onto det_base's loader
    cfg = load_config(DATA / "det_child.py")
    ds = cfg["test_dataloader"]["dataset"]
    assert ds["metainfo"] == {"classes": ("person",)}
    assert ds["type"] == "CocoDataset" and ds["data_root"] == "data/toy/"
    assert [s["type"] for s in ds["pipeline"]] == ["LoadImageFromFile", "Resize", "Pad", "PackDetInputs"]
    assert cfg["test_dataloader"]["batch_size"] == 4


def test_names_from_bases_and_base_references():
    cfg = load_config(DATA / "det_base.py")
    # max_epochs comes from _base_/runtime.py
    assert cfg["train_cfg"] == {"by_epoch": True, "max_epochs": 100, "dynamic_intervals": [(90, 1)]}
    sched = cfg["param_scheduler"][1]
    assert sched["begin"] == 50 and sched["end"] == 100 and sched["T_max"] == 34
    assert sched["eta_min"] == pytest.approx(0.0001)
    # {{_base_.file_client_args}}
    assert cfg["test_pipeline"][0] == {"type": "LoadImageFromFile", "file_client_args": {"backend": "disk"}}
    assert cfg["test_pipeline"][1] == {"type": "Resize", "scale": (512, 512), "keep_ratio": True}
    assert "_base_" not in cfg


def test_base_attribute_reference(tmp_path):
    write(tmp_path, "b.py", "model = dict(head=dict(k=5))\nlst = [1, 2]\n")
    path = write(tmp_path, "c.py", """
        _base_ = './b.py'
        k2 = _base_.model.head.k * 2
        first = {{_base_.lst}}[0]
    """)
    cfg = load_config(path)
    assert cfg["k2"] == 10 and cfg["first"] == 1
    assert cfg["model"] == {"head": {"k": 5}}


def test_several_bases_and_dict_replacing_scalar(tmp_path):
    write(tmp_path, "sub/one.py", "a = 1\nshared = dict(x=1)\n")
    write(tmp_path, "two.py", "b = 2\nscalar = 5\n")
    path = write(tmp_path, "sub/child.py", """
        _base_ = ['./one.py', '../two.py']
        shared = dict(y=2)
        scalar = dict(now='a dict')
        c = a + b
    """)
    cfg = load_config(path)
    assert cfg == {"a": 1, "b": 2, "c": 3, "shared": {"x": 1, "y": 2}, "scalar": {"now": "a dict"}}


def test_scoped_base_is_skipped_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        cfg = load_config(DATA / "det_scoped.py")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "mmdet::toy/toy-detector_s_coco.py" in warnings[0].getMessage()
    assert "det_scoped.py" in warnings[0].getMessage()
    # the local base and the file's own values are still there
    assert cfg["default_scope"] == "toyscope"
    assert cfg["model"] == {"bbox_head": {"num_classes": 1},
                            "test_cfg": {"score_thr": 0.3, "nms": {"type": "nms", "iou_threshold": 0.45}}}


def test_missing_local_base_is_skipped_with_a_warning(tmp_path, caplog):
    path = write(tmp_path, "c.py", "_base_ = './nowhere/b.py'\nx = 1\n")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert load_config(path) == {"x": 1}
    assert "./nowhere/b.py" in caplog.text


def test_unresolved_base_reference_in_child_is_absent(tmp_path):
    path = write(tmp_path, "c.py", """
        _base_ = 'mmdet::x/y.py'
        pipeline = [dict(type='Load', args={{_base_.file_client_args}}), dict(type='Resize', scale=320)]
    """)
    cfg = load_config(path)
    assert cfg["pipeline"] == [{"type": "Load"}, {"type": "Resize", "scale": 320}]


def test_cycle_is_an_error_naming_the_files(tmp_path):
    write(tmp_path, "cycle_a.py", "_base_ = './cycle_b.py'\na = 1\n")
    write(tmp_path, "cycle_b.py", "_base_ = ['./cycle_c.py']\nb = 1\n")
    write(tmp_path, "cycle_c.py", "_base_ = './cycle_a.py'\nc = 1\n")
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path / "cycle_a.py")
    msg = str(exc.value)
    assert "cyclic" in msg
    for name in ("cycle_a.py", "cycle_b.py", "cycle_c.py"):
        assert name in msg


def test_self_base_is_a_cycle(tmp_path):
    path = write(tmp_path, "me.py", "_base_ = './me.py'\n")
    with pytest.raises(ConfigError, match="me.py -> .*me.py"):
        load_config(path)


def test_diamond_bases_are_not_a_cycle(tmp_path):
    write(tmp_path, "root.py", "r = 1\n")
    write(tmp_path, "left.py", "_base_ = './root.py'\nl = 2\n")
    write(tmp_path, "right.py", "_base_ = './root.py'\nrr = 3\n")
    path = write(tmp_path, "top.py", "_base_ = ['./left.py', './right.py']\n")
    assert load_config(path) == {"r": 1, "l": 2, "rr": 3}


# ---------------------------------------------------------------------------------------------------------------
# load_config: errors and new-style configs
# ---------------------------------------------------------------------------------------------------------------


def test_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, "broken.py", """
        a = 1
        model = dict(
            type='X',
            depth=50,,
        )
    """)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert f"{path}:5" in str(exc.value)
    assert isinstance(exc.value, Pose3DError) and isinstance(exc.value, ValueError)


def test_syntax_error_in_a_base_names_the_base(tmp_path):
    write(tmp_path, "bad_base.py", "x = (\n")
    path = write(tmp_path, "child.py", "_base_ = './bad_base.py'\n")
    with pytest.raises(ConfigError, match=r"bad_base\.py:1"):
        load_config(path)


def test_missing_or_wrong_kind_of_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.py")
    with pytest.raises(ConfigError, match="README.txt"):
        load_config(DATA / "README.txt")
    with pytest.raises(ConfigError, match="directory"):
        load_config(DATA)
    binary = tmp_path / "bin.py"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match="bin.py"):
        load_config(binary)


def test_new_style_read_base_config():
    cfg = load_config(DATA / "newstyle.py")
    # names from ``with read_base(): from .newstyle_base import *`` and ``... import max_epochs as epochs``
    assert cfg["num_keypoints"] == 17 and cfg["epochs"] == 100
    # ``train_cfg.update(...)`` is applied
    assert cfg["train_cfg"] == {"by_epoch": True, "val_interval": 5, "max_epochs": 200}
    # ``type=ToyCodec`` (an imported class) cannot be known: that key alone is absent
    assert cfg["codec"] == {"input_size": (160, 224)}
    assert cfg["model"] == {"type": "ToyPose", "head": {"out_channels": 17, "decoder": {"input_size": (160, 224)}}}
    assert "read_base" not in cfg and "ToyCodec" not in cfg


def test_new_style_with_unknown_package_base_does_not_crash(tmp_path, caplog):
    path = write(tmp_path, "ns.py", """
        from mmengine.config import read_base
        with read_base():
            from toypkg.configs._base_.default_runtime import *
            from .missing_local import thing
        value = 3
    """)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert load_config(path) == {"value": 3}
    assert "toypkg.configs._base_.default_runtime" in caplog.text
    assert ".missing_local" in caplog.text


# ---------------------------------------------------------------------------------------------------------------
# summarize
# ---------------------------------------------------------------------------------------------------------------


def test_summarize_detector():
    path = DATA / "det_child.py"
    mc = summarize(load_config(path), "detector", source=path)
    assert isinstance(mc, ModelConfig)
    assert mc.role == "detector" and mc.source == str(path)
    assert mc.input_size == (512, 512) and mc.keep_ratio is True
    assert mc.pad_size == (512, 512) and mc.pad_value == 110.0
    assert mc.score_thr == 0.04
    assert mc.nms_iou_threshold == 0.55 and mc.nms_type == "nms"
    assert mc.max_per_img == 50 and mc.nms_pre == 20000 and mc.min_bbox_size == 0
    assert mc.mean == (101.5, 112.25, 120.0) and mc.std == (55.0, 56.5, 57.25) and mc.bgr_to_rgb is False
    assert mc.num_classes == 1 and mc.classes == ("person",)
    assert mc.dataset == "coco" and mc.dataset_type == "CocoDataset"
    assert mc.model_type == "ToyDetector" and mc.backbone_type == "ToyNet"
    # fields of the other roles stay unknown
    assert mc.seq_len is None and mc.simcc_split_ratio is None and mc.receptive_field is None


def test_summarize_detector_with_scoped_base_keeps_what_is_known(caplog):
    mc = summarize(load_config(DATA / "det_scoped.py"), "detector")
    assert mc.input_size == (416, 416)  # scale=416 -> square
    assert mc.keep_ratio is False
    assert mc.score_thr == 0.3 and mc.nms_iou_threshold == 0.45 and mc.num_classes == 1
    assert mc.mean is None and mc.max_per_img is None and mc.source is None


def test_summarize_pose2d():
    mc = summarize(load_config(DATA / "pose_simcc.py"), "pose2d")
    assert mc.input_size == (288, 384)
    assert mc.simcc_split_ratio == 2.5
    assert mc.codec_type == "SimCCLabel"
    assert mc.flip_test is False
    assert mc.num_keypoints == 21
    assert mc.dataset == "coco"  # metainfo.from_file of the training dataset
    assert mc.dataset_type == "CombinedDataset"
    assert mc.mean == (120.5, 115.0, 100.25) and mc.std == (60.0, 59.5, 58.0) and mc.bgr_to_rgb is True
    assert mc.bbox_padding == 1.3
    assert mc.model_type == "TopdownPoseEstimator"


def test_summarize_pose2d_fallbacks(tmp_path):
    # no codec: the size comes from the test pipeline; the dataset from ``dataset_type``
    path = write(tmp_path, "old.py", """
        dataset_type = 'Human36mDataset'
        model = dict(head=dict(type='Heatmap', out_channels=17))
        val_pipeline = [dict(type='GetBBoxCenterScale'), dict(type='TopdownAffine', input_size=(256, 320))]
        val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
    """)
    mc = summarize(load_config(path), "pose2d")
    assert mc.input_size == (256, 320)
    assert mc.dataset == "h36m" and mc.dataset_type == "Human36mDataset"
    assert mc.bbox_padding == 1.25  # GetBBoxCenterScale's default
    assert mc.flip_test is None and mc.simcc_split_ratio is None


def test_summarize_lifter():
    mc = summarize(load_config(DATA / "lift_tcn.py"), "lifter")
    assert mc.kernel_sizes == (3, 3, 3, 3, 3)
    assert mc.receptive_field == 243
    assert mc.seq_len == 243
    assert mc.causal is False and mc.backbone_causal is None
    assert mc.seq_step is None  # not set: the caller uses 1
    assert mc.pad_video_seq is True
    assert mc.keypoint_2d_src == "detection"
    assert mc.in_channels == 34 and mc.stem_channels == 512 and mc.num_blocks == 4
    assert mc.use_stride_conv is True
    assert mc.codec_type == "VideoPoseLifting"
    assert mc.num_keypoints == 17
    assert mc.zero_center is True and mc.root_index == 0 and mc.remove_root is False
    assert mc.dataset == "h36m"
    assert mc.flip_test is None and mc.mean is None


def test_summarize_lifter_child_overrides():
    mc = summarize(load_config(DATA / "lift_causal.py"), "lifter")
    assert mc.kernel_sizes == (3, 3, 3) and mc.receptive_field == 27 and mc.num_blocks == 2
    assert mc.seq_len == 27 and mc.seq_step == 2
    assert mc.causal is True and mc.backbone_causal is True
    assert mc.in_channels == 34  # inherited


def test_summarize_lifter_motionbert_like(tmp_path):
    path = write(tmp_path, "mb.py", """
        val_codec = dict(type='MotionBERTLabel', num_keypoints=17, concat_vis=True, rootrel=True)
        model = dict(
            type='PoseLifter',
            backbone=dict(type='DSTFormer', in_channels=3, seq_len=81),
            head=dict(type='MotionRegressionHead', decoder=val_codec),
            test_cfg=dict(flip_test=True))
    """)
    mc = summarize(load_config(path), "lifter")
    assert mc.codec_type == "MotionBERTLabel" and mc.concat_vis is True and mc.rootrel is True
    assert mc.seq_len == 81  # no dataset: the backbone's
    assert mc.flip_test is True
    assert mc.kernel_sizes is None and mc.receptive_field is None


def test_summarize_rejects_unknown_role():
    with pytest.raises(ValueError, match="role"):
        summarize({}, "tracker")


def test_summarize_empty_config_is_all_unknown():
    mc = summarize({}, "lifter")
    assert mc.known() == {"role": "lifter"}


@pytest.mark.parametrize(
    "value, expected",
    [
        ("CocoDataset", "coco"),
        ("Human36mDataset", "h36m"),
        ("configs/_base_/datasets/coco.py", "coco"),
        ("configs/_base_/datasets/h36m.py", "h36m"),
        ("mmpose.CocoWholeBodyDataset", "coco_wholebody"),
        ("MyFancyDataset", "my_fancy"),
        (None, None),
        ("", None),
    ],
)
def test_dataset_name(value, expected):
    assert dataset_name(value) == expected


# ---------------------------------------------------------------------------------------------------------------
# load_optional
# ---------------------------------------------------------------------------------------------------------------


def test_load_optional_missing_path_warns_and_returns_none(tmp_path, caplog):
    missing = tmp_path / "configs" / "rtmpose-m.py"
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert load_optional(missing, "pose2d") is None
    assert len(caplog.records) == 1
    msg = caplog.records[0].getMessage()
    assert str(missing) in msg
    assert "not found locally; using the checkpoint's own metadata" in msg


def test_load_optional_none_is_silent(caplog):
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        assert load_optional(None, "detector") is None
    assert not caplog.records


def test_load_optional_existing_config():
    mc = load_optional(str(DATA / "lift_tcn.py"), "lifter")
    assert mc is not None and mc.receptive_field == 243 and mc.source == str(DATA / "lift_tcn.py")


def test_load_optional_not_a_python_config():
    with pytest.raises(ConfigError, match="README.txt"):
        load_optional(DATA / "README.txt", "detector")


def test_load_optional_broken_config_raises(tmp_path):
    path = write(tmp_path, "b.py", "x = [1,\n")
    with pytest.raises(ConfigError, match=r"b\.py:1"):
        load_optional(path, "detector")


def test_load_optional_rejects_unknown_role(tmp_path):
    with pytest.raises(ValueError):
        load_optional(tmp_path / "x.py", "segmenter")
