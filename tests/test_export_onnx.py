"""Official-layout checkpoints -> torch modules (strict, bit-exact) -> ONNX (onnxruntime parity, metadata)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import FIXTURES, requires_torch

pytestmark = requires_torch

DET_MEAN = np.array([103.53, 116.28, 123.675], np.float32)
DET_STD = np.array([57.375, 57.12, 58.395], np.float32)
POSE_MEAN = np.array([123.675, 116.28, 103.53], np.float32)
POSE_STD = np.array([58.395, 57.12, 57.375], np.float32)


def _det_input(name, image):
    d = np.load(FIXTURES / "det" / name / f"{image}.npz")
    return d, ((d["pipeline_uint8"].astype(np.float32) - DET_MEAN[:, None, None]) / DET_STD[:, None, None])[None]


def _pose_input(name, case):
    d = np.load(FIXTURES / "pose" / name / f"{case}.npz")
    crop = d["crop_uint8"] if d["crop_uint8"].ndim == 4 else d["crop_uint8"][None]
    return d, ((crop[:, ::-1].astype(np.float32) - POSE_MEAN[:, None, None]) / POSE_STD[:, None, None])


def _rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def _manifest(name):
    return json.loads((FIXTURES / "weights" / f"{name}.manifest.json").read_text())


@pytest.mark.parametrize("name,family", [("rtmdet_m_person", "rtmdet"), ("rtmdet_nano_person", "rtmdet"),
                                         ("rtmpose_m_body8_256x192", "rtmpose"),
                                         ("rtmpose_t_body8_256x192", "rtmpose")])
def test_strict_load_keys_shapes_params_and_torch_parity(name, family, checkpoints):
    import torch
    from pose3d_rt.export.checkpoint import load_checkpoint
    from pose3d_rt.export.models import rtmdet, rtmpose

    mod = rtmdet if family == "rtmdet" else rtmpose
    sd, _ = load_checkpoint(checkpoints[name])
    model, variant = mod.load_model(sd)
    man = _manifest(name)
    want = {e["key"]: tuple(e["shape"]) for e in man["state_dict"]}
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert got == want
    assert sum(p.numel() for p in model.parameters()) == man["param_count"]
    assert mod.detect_variant(sd) == variant
    with torch.no_grad():
        if family == "rtmdet":
            d, x = _det_input(name, "video_f018")
            outs = model(torch.from_numpy(x))
            refs = [d[f"cls_score_l{i}"] for i in range(3)] + [d[f"bbox_pred_l{i}"] for i in range(3)]
        else:
            d, x = _pose_input(name, "video_f003__det")
            outs = model(torch.from_numpy(np.ascontiguousarray(x)))
            refs = [d["simcc_x"], d["simcc_y"]]
    # Measured here (AMD EPYC, AVX-512, torch 2.13): 0, bit-exact, for all four (fixtures: torch 2.14.1). On a CPU
    # whose kernels sum in another order it is not 0; the size of that is what float64 torch gives here (a
    # different summation of the same network): RTMDet-m 2.4e-6, nano 3.0e-5, RTMPose-m 2.8e-6, t 1.2e-5. The bounds
    # are ~2.5x those. A wrong layer or key mapping is off by O(1).
    bound = {"rtmdet_m_person": 6e-6, "rtmdet_nano_person": 8e-5, "rtmpose_m_body8_256x192": 8e-6,
             "rtmpose_t_body8_256x192": 3e-5}[name]
    for o, r in zip(outs, refs):
        assert _rel(o.numpy(), r) <= bound, (_rel(o.numpy(), r), bound)


def test_wrong_family_and_wrong_variant_are_clear_errors(checkpoints):
    from pose3d_rt.engines.errors import ModelError
    from pose3d_rt.export.checkpoint import load_checkpoint
    from pose3d_rt.export.models import rtmdet, rtmpose

    sd, _ = load_checkpoint(checkpoints["rtmpose_t_body8_256x192"])
    with pytest.raises(ModelError, match="looks like a rtmpose model"):
        rtmdet.load_model(sd)
    with pytest.raises(ModelError, match="rtmpose-m-256x192 does not match") as e:
        rtmpose.load_model(sd, arch="rtmpose-m-256x192")
    assert "shape mismatches" in str(e.value)
    bad = dict(sd)
    bad["head.cls_x.weight"] = bad["head.cls_x.weight"][:100]
    with pytest.raises(ModelError, match="no RTMPose variant matches"):
        rtmpose.detect_variant(bad)


@pytest.fixture(scope="module")
def exported(checkpoints, onnx_models, tmp_path_factory):
    from pose3d_rt.export import export_onnx

    out = tmp_path_factory.mktemp("onnx")
    paths = dict(onnx_models)
    for name in ("videopose3d_27f_supv", "videopose3d_243f_supv_cpn_ft"):
        paths[name + ":dilated"] = export_onnx(checkpoints[name], out / f"{name}_dilated.onnx", form="dilated")
    return paths


def _session(path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name", ["rtmpose_m_body8_256x192", "rtmpose_t_body8_256x192"])
@pytest.mark.parametrize("batch", [1, 4])
def test_rtmpose_onnx_matches_mmpose(exported, name, batch):
    d, x = _pose_input(name, "video_f018__gt")
    x = np.ascontiguousarray(np.resize(x, (batch,) + x.shape[1:]))
    refx = np.resize(d["simcc_x"], (batch,) + d["simcc_x"].shape[1:])
    refy = np.resize(d["simcc_y"], (batch,) + d["simcc_y"].shape[1:])
    sx, sy = _session(exported[name]).run(["simcc_x", "simcc_y"], {"input": x})
    # Measured here (AMD EPYC, AVX-512, ORT 1.32), max of batch 1 / 4: RTMPose-m 3.2e-6, t 1.1e-5 (over all pose
    # fixtures: 5.0e-6, 2.0e-5).
    bound = {"rtmpose_m_body8_256x192": 1e-5, "rtmpose_t_body8_256x192": 3e-5}[name]
    assert _rel(sx, refx) <= bound and _rel(sy, refy) <= bound, (_rel(sx, refx), _rel(sy, refy))


@pytest.mark.parametrize("name", ["videopose3d_27f_supv", "videopose3d_243f_supv_cpn_ft"])
@pytest.mark.parametrize("batch", [1, 4])
def test_tcn_onnx_matches_mmpose_both_forms(exported, name, batch):
    from pose3d_rt.lifters.mmpose_parity import from_tcn_layout

    d = np.load(FIXTURES / "lift" / name / "gtvideo_f005.npz")
    x = from_tcn_layout(d["norm__model_input"]).astype(np.float32)
    ref = d["norm__raw_output"]
    x, ref = np.resize(x, (batch,) + x.shape[1:]), np.resize(ref, (batch,) + ref.shape[1:])
    # Measured here (AMD EPYC, AVX-512, ORT 1.32), max of batch 1 / 4: strided 3.0e-6 (27f) / 2.2e-6 (243f),
    # dilated 2.6e-6 / 1.5e-6 (over all lift fixtures and both normalisations: 3.2e-6).
    bound = 8e-6
    (y,) = _session(exported[name]).run(None, {"keypoints": x})
    assert y.shape == (batch, 1, 17, 3)
    assert _rel(y[:, 0], ref.reshape(batch, 17, 3)) <= bound
    xd = np.concatenate([x, np.repeat(x[:, -1:], 4, 1)], 1)  # T = RF + 4 -> 5 outputs, the first is the window
    (yd,) = _session(exported[name + ":dilated"]).run(None, {"keypoints": xd})
    assert yd.shape == (batch, 5, 17, 3)
    assert _rel(yd[:, 0], ref.reshape(batch, 17, 3)) <= bound


@pytest.mark.parametrize("name", ["rtmdet_m_person", "rtmdet_nano_person"])
@pytest.mark.parametrize("batch", [1, 4])
def test_rtmdet_onnx_decodes_like_mmdet(exported, name, batch):
    """Boxes/scores vs the numpy decode of mmdet's raw maps (relative box error, absolute score error)."""
    from pose3d_rt.rtmdet import flatten_raw_levels

    d, x = _det_input(name, "video_f018")
    boxes_ref, scores_ref, _ = flatten_raw_levels([d[f"cls_score_l{i}"] for i in range(3)],
                                                  [d[f"bbox_pred_l{i}"] for i in range(3)], (8, 16, 32))
    xb = np.ascontiguousarray(np.resize(x, (batch,) + x.shape[1:]))
    boxes, scores = _session(exported[name]).run(["boxes", "scores"], {"input": xb})
    assert boxes.shape == (batch,) + boxes_ref.shape[1:]
    # Measured here (AMD EPYC, AVX-512, ORT 1.32), batch 1 and 4 alike: RTMDet-m boxes 3.4e-6 relative (3.3e-3 px),
    # scores 2.7e-6; nano boxes 5.8e-6 (2.9e-3 px), scores 2.8e-5 (over all five det fixtures: m 6.1e-6 / 2.7e-6,
    # nano 6.0e-6 / 3.1e-5).
    box_bound, score_bound = {"rtmdet_m_person": (1e-5, 8e-6), "rtmdet_nano_person": (1.5e-5, 8e-5)}[name]
    rel_boxes = _rel(boxes, np.resize(boxes_ref, boxes.shape))
    d_scores = float(np.abs(scores - np.resize(scores_ref, scores.shape)).max())
    assert rel_boxes <= box_bound and d_scores <= score_bound, (rel_boxes, d_scores)


def test_metadata_is_what_the_runtime_reads(exported):
    from pose3d_rt.engines import load_engine
    from pose3d_rt.lifters import EngineLifter
    from pose3d_rt.rtmdet.detector import Detector
    from pose3d_rt.rtmpose.estimator import PoseEstimator

    det = load_engine(str(exported["rtmdet_nano_person"]))
    assert det.metadata["family"] == "rtmdet" and det.metadata["input_size"] == "320,320"
    assert len(det.metadata["source_sha256"]) == 64
    Detector(det)
    pose = load_engine(str(exported["rtmpose_t_body8_256x192"]))
    assert pose.metadata["simcc_split_ratio"] == "2" and pose.metadata["dataset"] == "coco"
    PoseEstimator(pose)
    lift = load_engine(str(exported["videopose3d_243f_supv_cpn_ft"]))
    assert lift.metadata["receptive_field"] == "243" and lift.metadata["form"] == "strided"
    EngineLifter(lift)


def test_in_graph_nms_export_matches_host_nms(checkpoints, exported, tmp_path):
    """``nms=True``: mmdeploy-style dets/labels equal host NMS (no clipping, as mmdeploy) on the decoded export,
    per image of a batch of 2; the runtime Detector consumes the file."""
    from pose3d_rt.boxes import batched_nms
    from pose3d_rt.engines import load_engine
    from pose3d_rt.export import export_onnx
    from pose3d_rt.export.lint import lint_onnx
    from pose3d_rt.rtmdet.detector import Detector

    path = export_onnx(checkpoints["rtmdet_nano_person"], tmp_path / "nms.onnx", nms=True)
    assert lint_onnx(path) == []
    _, x = _det_input("rtmdet_nano_person", "video_f018")
    x2 = np.ascontiguousarray(np.concatenate([x, x[:, :, ::-1]]))
    dets, labels = _session(path).run(["dets", "labels"], {"input": x2})
    boxes, scores = _session(exported["rtmdet_nano_person"]).run(["boxes", "scores"], {"input": x2})
    assert dets.shape == (2, 100, 5) and labels.shape == (2, 100)
    for k in range(2):
        m = scores[k, :, 0] > 0.05
        keep = batched_nms(boxes[k][m], scores[k, :, 0][m], None, iou_thr=0.6, max_num=100)
        n = int((dets[k, :, 4] > 0).sum())
        assert n == len(keep) > 0
        np.testing.assert_allclose(dets[k, :n, :4], boxes[k][m][keep], atol=1e-3)
        np.testing.assert_allclose(dets[k, :n, 4], scores[k, :, 0][m][keep], atol=1e-6)
        assert (labels[k, :n] == 0).all() and (labels[k, n:] == -1).all()
    import cv2

    frame = cv2.imread(str(FIXTURES / "inputs" / "frames" / "frame_018.png"))  # 640x384 -> 320x192, factor 0.5
    res = Detector(load_engine(str(path)))(frame)
    n = int((dets[0, :, 4] > 0.05).sum())
    assert len(res) == n
    np.testing.assert_allclose(res.boxes, dets[0, :n, :4] / 0.5, atol=1e-3)
