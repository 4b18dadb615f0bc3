"""From config fields to pipeline options: runtime/mmconfig/options.py (``pipeline_options``, ``model_mismatches``)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from pose3d_rt.mmconfig import ModelConfig, load_optional, model_mismatches, pipeline_options
from test_configs import DATA


def _configs(**kw) -> dict:
    return {"detector": kw.get("det"), "pose2d": kw.get("pose"), "lifter": kw.get("lift")}


def _pipe(input_hw=(640, 640), pose_size=(192, 256), receptive_field=243):
    """The three attributes ``model_mismatches`` reads from a ``Pose3DPipeline``."""
    spec = None if receptive_field is None else SimpleNamespace(receptive_field=receptive_field)
    return SimpleNamespace(detector=SimpleNamespace(input_hw=input_hw), pose2d=SimpleNamespace(input_size=pose_size),
                           lifter_spec=spec)


# ---------------------------------------------------------------------------------------------------------------
# pipeline_options
# ---------------------------------------------------------------------------------------------------------------


def test_no_configs_give_no_options():
    assert pipeline_options(_configs(), None) == {}
    assert pipeline_options({}, True) == {}


def test_detector_fields_map_to_det_options():
    det = ModelConfig(role="detector", score_thr=0.3, nms_iou_threshold=0.65, nms_pre=1000, max_per_img=100,
                      input_size=(640, 640))
    assert pipeline_options(_configs(det=det), None) == {
        "det_score_thr": 0.3, "det_nms_iou_thr": 0.65, "det_nms_pre": 1000, "det_max_per_img": 100}


def test_detector_fields_the_config_does_not_set_are_left_out():
    det = ModelConfig(role="detector", score_thr=0.5)
    assert pipeline_options(_configs(det=det), None) == {"det_score_thr": 0.5}


@pytest.mark.parametrize("config_flip", [True, False])
def test_flip_test_comes_from_the_pose_config_when_the_user_gave_no_flag(config_flip):
    pose = ModelConfig(role="pose2d", flip_test=config_flip)
    assert pipeline_options(_configs(pose=pose), None) == {"flip_test": config_flip}


@pytest.mark.parametrize("flag", [True, False])
def test_the_users_flip_test_flag_wins_over_the_config(flag):
    for config_flip in (True, False):
        pose = ModelConfig(role="pose2d", flip_test=config_flip)
        assert "flip_test" not in pipeline_options(_configs(pose=pose), flag)


def test_lifter_causal_is_passed_on():
    assert pipeline_options(_configs(lift=ModelConfig(role="lifter", causal=True)), None) == {"causal": True}
    assert pipeline_options(_configs(lift=ModelConfig(role="lifter", causal=False)), None) == {"causal": False}
    assert pipeline_options(_configs(lift=ModelConfig(role="lifter")), None) == {}


def test_options_from_the_test_configs():
    configs = {"detector": load_optional(DATA / "det_child.py", "detector"),
               "pose2d": load_optional(DATA / "pose_simcc.py", "pose2d"),
               "lifter": load_optional(DATA / "lift_causal.py", "lifter")}
    det = configs["detector"]
    opts = pipeline_options(configs, None)
    assert opts["det_score_thr"] == det.score_thr and opts["det_nms_iou_thr"] == det.nms_iou_threshold
    assert opts["causal"] is True
    if configs["pose2d"].flip_test is not None:
        assert opts["flip_test"] is configs["pose2d"].flip_test


# ---------------------------------------------------------------------------------------------------------------
# model_mismatches
# ---------------------------------------------------------------------------------------------------------------


def test_configs_that_agree_with_the_models_give_no_message():
    configs = _configs(det=ModelConfig(role="detector", source="d.py", input_size=(640, 480)),
                       pose=ModelConfig(role="pose2d", source="p.py", input_size=(192, 256)),
                       lift=ModelConfig(role="lifter", source="l.py", seq_len=243))
    assert model_mismatches(configs, _pipe(input_hw=(480, 640))) == []
    assert model_mismatches(_configs(), _pipe()) == []


def test_detector_input_size_mismatch_names_the_config_and_both_sizes():
    det = ModelConfig(role="detector", source="det.py", input_size=(320, 320))
    assert model_mismatches(_configs(det=det), _pipe(input_hw=(480, 640))) == [
        "detector config det.py says input size 320x320 but the model takes 640x480; using the model's"]


def test_pose_input_size_mismatch():
    pose = ModelConfig(role="pose2d", source="pose.py", input_size=(288, 384))
    assert model_mismatches(_configs(pose=pose), _pipe(pose_size=(192, 256))) == [
        "pose config pose.py says input size (288, 384) but the model takes (192, 256); using the model's"]


def test_pose_model_without_an_input_size_is_not_checked():
    pose = ModelConfig(role="pose2d", source="pose.py", input_size=(288, 384))
    assert model_mismatches(_configs(pose=pose), _pipe(pose_size=None)) == []


def test_lifter_seq_len_against_the_receptive_field():
    lift = ModelConfig(role="lifter", source="lift.py", seq_len=27)
    assert model_mismatches(_configs(lift=lift), _pipe(receptive_field=9)) == [
        "lifter config lift.py says 27 frames but the checkpoint's receptive field is 9; using 9"]


def test_lifter_seq_len_of_one_falls_back_to_the_kernel_receptive_field():
    lift = ModelConfig(role="lifter", source="lift.py", seq_len=1, receptive_field=81)
    assert model_mismatches(_configs(lift=lift), _pipe(receptive_field=81)) == []
    msgs = model_mismatches(_configs(lift=lift), _pipe(receptive_field=243))
    assert msgs == ["lifter config lift.py says 81 frames but the checkpoint's receptive field is 243; using 243"]


def test_lifter_is_not_checked_without_a_lifter_or_a_window():
    lift = ModelConfig(role="lifter", source="lift.py", seq_len=27)
    assert model_mismatches(_configs(lift=lift), _pipe(receptive_field=None)) == []
    assert model_mismatches(_configs(lift=ModelConfig(role="lifter")), _pipe(receptive_field=9)) == []


def test_every_mismatch_is_reported_in_role_order():
    configs = _configs(det=ModelConfig(role="detector", source="d.py", input_size=(320, 320)),
                       pose=ModelConfig(role="pose2d", source="p.py", input_size=(288, 384)),
                       lift=ModelConfig(role="lifter", source="l.py", seq_len=27))
    msgs = model_mismatches(configs, _pipe())
    assert [m.split(" ", 1)[0] for m in msgs] == ["detector", "pose", "lifter"]


def test_mismatches_with_a_real_pipeline():
    """The attributes read are those of ``Pose3DPipeline`` (fake models, receptive field 9)."""
    from pose3d_rt.pipeline import Pose3DPipeline

    from benchmarks.fakes import LinearLifter, ScriptedDetector, TemplatePose, walking_boxes

    pipe = Pose3DPipeline(ScriptedDetector(walking_boxes(1, 320), 320), TemplatePose(), LinearLifter(9))
    bad = model_mismatches({"lifter": ModelConfig(role="lifter", source="lift.py", seq_len=27)}, pipe)
    assert len(bad) == 1 and "lift.py says 27 frames" in bad[0] and "receptive field is 9" in bad[0]
    assert model_mismatches({"lifter": ModelConfig(role="lifter", source="ok.py", seq_len=9)}, pipe) == []
