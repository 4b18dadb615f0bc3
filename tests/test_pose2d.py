"""PoseEstimator end to end with fake engines that serve the mmpose reference SimCC outputs."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Union

import cv2
import numpy as np
import pytest
from conftest import FIXTURE_IMAGES
from pose3d_rt.engines import Engine, TensorSpec
from pose3d_rt.errors import InputError, ModelError
from pose3d_rt.keypoint_sets import COCO17, H36M17
from pose3d_rt.rtmdet import Detector
from pose3d_rt.rtmpose.estimator import PoseEstimator, Poses2D, parse_pose_engine
from pose3d_rt.rtmpose.topdown import RTMPOSE_MEAN_RGB, RTMPOSE_STD_RGB, crop_to_image

from benchmarks.fakes import TEMPLATE_CROP_XY, ScriptedDetector, TemplatePose

FIXTURES = Path(__file__).resolve().parent / "fixtures"
IMAGES = FIXTURE_IMAGES
POSE_FILES = sorted((FIXTURES / "pose").glob("*/*.npz"))
MEAN = np.asarray(RTMPOSE_MEAN_RGB, np.float32)
STD = np.asarray(RTMPOSE_STD_RGB, np.float32)
log = logging.getLogger(__name__)


def _ids(p: Path) -> str:
    return f"{p.parent.name}/{p.stem}"


def _specs(batch=None, h=256, w=192, k=17, wx=384, wy=512, names=("simcc_x", "simcc_y")):
    return ((TensorSpec("input", (batch, 3, h, w), np.dtype(np.float32)),),
            (TensorSpec(names[0], (batch, k, wx), np.dtype(np.float32)),
             TensorSpec(names[1], (batch, k, wy), np.dtype(np.float32))))


class FixtureEngine(Engine):
    """Serves a reference file's raw SimCC: it checks that every call's input rows are, bit for bit, the
    reference crops (normalised as mmpose) or their horizontal flips, and answers with the matching outputs."""

    def __init__(self, data: Mapping[str, np.ndarray], metadata: Optional[Dict[str, str]] = None,
                 batch=None, names=("simcc_x", "simcc_y")):
        ins, outs = _specs(batch, names=names)
        super().__init__(path="fixture-rtmpose.onnx", inputs=ins, outputs=outs, metadata=metadata or {})
        crop = (data["crop_uint8"][:, ::-1].astype(np.float32) - MEAN[:, None, None]) / STD[:, None, None]
        self.rows = np.concatenate([crop, crop[..., ::-1]])
        self.sx = np.concatenate([data["simcc_x"], data["simcc_x_flipinput"]])
        self.sy = np.concatenate([data["simcc_y"], data["simcc_y_flipinput"]])
        self.names = names
        self.calls: List[int] = []
        self.zero_rows = 0

    def run(self, inputs: Union[np.ndarray, Mapping[str, np.ndarray]]) -> Dict[str, np.ndarray]:
        x = inputs if isinstance(inputs, np.ndarray) else inputs["input"]
        assert x.dtype == np.float32 and x.flags.c_contiguous
        self.calls.append(x.shape[0])
        idx = []
        for row in x:
            if not row.any():  # padding row of a static-batch call
                self.zero_rows += 1
                idx.append(0)
                continue
            hit = np.flatnonzero((self.rows == row[None]).all(axis=(1, 2, 3)))
            assert hit.size >= 1, "engine input is not a reference crop (or its flip) bit for bit"
            idx.append(hit[0])
        idx = np.asarray(idx)
        return {self.names[0]: self.sx[idx], self.names[1]: self.sy[idx]}


def _load(path: Path):
    d = dict(np.load(path))
    img = cv2.imread(str(FIXTURES / IMAGES[path.stem.split("__")[0]]), cv2.IMREAD_COLOR)
    return d, img


@pytest.mark.parametrize("path", POSE_FILES, ids=_ids)
def test_pose_estimator_flip_test_matches_mmpose(path):
    d, img = _load(path)
    eng = FixtureEngine(d)
    est = PoseEstimator(eng, flip_test=True, whole_image_if_empty=True)
    poses = est(img, d["bboxes_in"])
    n = len(d["bboxes_out"])
    assert eng.calls == [2 * n]  # originals and flips in one call
    assert isinstance(poses, Poses2D) and len(poses) == n
    assert poses.keypoints.dtype == np.float32 and poses.scores.dtype == np.float32
    np.testing.assert_array_equal(poses.boxes, d["bboxes_out"])
    err = np.abs(poses.keypoints - d["keypoints"]).max()
    err_s = np.abs(poses.scores - d["keypoint_scores"]).max()
    log.info("%s: PoseEstimator keypoints max err %.3g px, scores %.3g", _ids(path), err, err_s)
    assert err <= 1e-3 and err_s <= 1e-5


def test_pose_estimator_chunks_large_batches_and_static_batch():
    path = FIXTURES / "pose/rtmpose_m_body8_256x192/video_f003__det.npz"
    d, img = _load(path)
    n = len(d["bboxes_in"])
    assert n >= 3  # enough persons for several calls of each kind below
    eng = FixtureEngine(d)
    poses = PoseEstimator(eng, flip_test=True, max_batch=2)(img, d["bboxes_in"])
    assert eng.calls == [2] * n  # one person + its flip per call
    np.testing.assert_allclose(poses.keypoints, d["keypoints"], atol=1e-3)
    eng = FixtureEngine(d)
    poses = PoseEstimator(eng, flip_test=True, max_batch=5)(img, d["bboxes_in"])
    assert eng.calls == [4] * (n // 2) + [2] * (n % 2)  # two persons + their flips per call
    np.testing.assert_allclose(poses.keypoints, d["keypoints"], atol=1e-3)
    # a static batch of 3: calls padded with zero rows, padding outputs dropped
    eng = FixtureEngine(d, batch=3)
    est = PoseEstimator(eng, flip_test=False, max_batch=64)
    assert est.max_batch == 3
    poses = est(img, d["bboxes_in"])
    assert eng.calls == [3] * -(-n // 3) and eng.zero_rows == -n % 3
    kc = np.stack([d["simcc_x"].argmax(-1), d["simcc_y"].argmax(-1)], -1) / 2.0
    np.testing.assert_allclose(poses.keypoints, crop_to_image(kc, d["input_center"], d["input_scale"], (192, 256)),
                               atol=1e-4)


def test_pose_estimator_without_flip_uses_plain_outputs():
    path = FIXTURES / "pose/rtmpose_t_body8_256x192/video_f018__gt.npz"
    d, img = _load(path)
    eng = FixtureEngine(d, names=("output", "onnx::Gemm_1"))  # generic names: output order is used
    poses = PoseEstimator(eng)(img, d["bboxes_in"])
    assert eng.calls == [len(d["bboxes_in"])]
    sx, sy = d["simcc_x"], d["simcc_y"]
    score = np.minimum(sx.max(-1), sy.max(-1))
    kc = np.stack([sx.argmax(-1), sy.argmax(-1)], -1).astype(np.float64)
    kc[score <= 0] = -1
    kc /= 2.0
    s, c = d["input_scale"].astype(np.float64)[:, None], d["input_center"].astype(np.float64)[:, None]
    expected = kc / np.array([192.0, 256.0]) * s + c - s / 2
    np.testing.assert_allclose(poses.keypoints, expected, atol=1e-3)
    np.testing.assert_array_equal(poses.scores, score)


def test_template_engine_closed_form():
    eng = TemplatePose()
    est = PoseEstimator(eng)
    assert est.input_size == (192, 256) and est.dataset is COCO17 and est.dataset_name == "coco"
    img = np.zeros((480, 640, 3), np.uint8)
    boxes = np.array([[100, 50, 220, 410], [300, 100, 500, 200]], np.float32)
    poses = est(img, boxes)
    bins = np.round(TEMPLATE_CROP_XY * 2.0) / 2.0
    # closed form of the whole geometry: centre, padded scale, aspect fix, crop -> image
    for i, (x1, y1, x2, y2) in enumerate(boxes.astype(np.float64)):
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        sw, sh = (x2 - x1) * 1.25, (y2 - y1) * 1.25
        sw, sh = (sw, sw / 0.75) if sw > sh * 0.75 else (sh * 0.75, sh)
        expected = np.stack([bins[:, 0] / 192 * sw + cx - sw / 2, bins[:, 1] / 256 * sh + cy - sh / 2], -1)
        np.testing.assert_allclose(poses.keypoints[i], expected, atol=1e-3)
    np.testing.assert_allclose(poses.scores, 0.9, rtol=1e-6)


def test_empty_boxes_and_whole_image_option():
    img = np.zeros((100, 80, 3), np.uint8)
    est = PoseEstimator(TemplatePose())
    for empty in (None, np.zeros((0, 4), np.float32), [], np.zeros((0, 5))):
        p = est(img, empty)
        assert len(p) == 0 and p.keypoints.shape == (0, 17, 2) and p.scores.shape == (0, 17)
    sx, sy = PoseEstimator(TemplatePose(), flip_test=True).forward(np.zeros((0, 3, 256, 192), np.float32))
    assert sx.shape == (0, 17, 384) and sy.shape == (0, 17, 512)
    p = PoseEstimator(TemplatePose(), whole_image_if_empty=True)(img, None)
    np.testing.assert_array_equal(p.boxes, [[0, 0, 80, 100]])
    assert p.keypoints.shape == (1, 17, 2)
    # detector rows with a score column are accepted (first 4 columns)
    p = est(img, np.array([[10, 10, 50, 90, 0.9]], np.float32))
    np.testing.assert_array_equal(p.boxes, [[10, 10, 50, 90]])


@pytest.mark.parametrize("frame, match", [
    (np.zeros((10, 10, 3), np.float32), "uint8"),
    (np.zeros((10, 10, 2), np.uint8), r"\(H, W, 3\)"),
    (np.zeros((10, 10, 5), np.uint8), r"\(H, W, 3\)"),
    (np.zeros((0, 10, 3), np.uint8), "empty"),
    ([[1, 2, 3]], "numpy array"),
])
def test_bad_frames(frame, match):
    est = PoseEstimator(TemplatePose())
    with pytest.raises(InputError, match=match) as e:
        est(frame, np.array([[0, 0, 5, 5]], np.float32))
    assert isinstance(e.value, ValueError)


@pytest.mark.parametrize("hw", [(1, 1), (1, 2000), (2000, 1), (5, 5), (16, 16), (2000, 3), (3, 2000)])
@pytest.mark.parametrize("flip_test", [False, True])
def test_degenerate_frames_through_detector_and_pose(hw, flip_test):
    """Frames a pixel wide, a single row, smaller than a crop or around the detector stride run through the
    detector and pose stages: the detector keeps what it finds (the zero-area box is dropped by the decoder),
    the pose stage gives every box a pose, a zero-area one included."""
    rows = np.array([[0, 0, 320, 320, 0.9], [10, 10, 10, 10, 0.8], [0, 0, 1, 1, 0.7]], np.float32)
    detector = Detector(ScriptedDetector(lambda n: rows, 320))
    est = PoseEstimator(TemplatePose(), flip_test=flip_test)
    frame = np.random.default_rng(2).integers(0, 256, hw + (3,), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dets = detector(frame)
        boxes = np.concatenate([dets.boxes, [[1, 1, 1, 1]]])
        poses = est(frame, boxes)
        whole = PoseEstimator(TemplatePose(), whole_image_if_empty=True)(frame, None)
    assert len(dets) == 2 and np.isfinite(dets.boxes).all() and (dets.boxes[:, 2:] > dets.boxes[:, :2]).all()
    assert poses.keypoints.shape == (3, 17, 2) and np.isfinite(poses.keypoints).all()
    np.testing.assert_array_equal(whole.boxes, [[0, 0, hw[1], hw[0]]])


def test_bad_boxes():
    est = PoseEstimator(TemplatePose())
    with pytest.raises(InputError, match="boxes"):
        est(np.zeros((10, 10, 3), np.uint8), np.zeros((2, 3), np.float32))


class SpecEngine(Engine):
    def run(self, inputs):  # pragma: no cover - never run
        raise AssertionError


def _engine(ins, outs, metadata=None, path="model.onnx"):
    return SpecEngine(path=path, inputs=ins, outputs=outs, metadata=metadata or {})


def test_engine_validation_errors():
    f32 = np.dtype(np.float32)
    det = _engine((TensorSpec("input", (1, 3, 640, 640), f32),),
                  (TensorSpec("dets", (1, None, 5), f32), TensorSpec("labels", (1, None), np.dtype(np.int64))),
                  path="rtmdet.onnx")
    with pytest.raises(ModelError, match="rtmdet.onnx.*got a detector with outputs dets, labels"):
        PoseEstimator(det)
    ins, outs = _specs(wx=380)
    with pytest.raises(ModelError, match=r"model.onnx.*disagree \(x: 380/192 = 1.979\d*, y: 512/256 = 2\)"):
        PoseEstimator(_engine(ins, outs))
    with pytest.raises(ModelError, match="model.onnx.*384 x-bins and 512 y-bins"):
        PoseEstimator(_engine(ins, outs, {"simcc_split_ratio": "2"}))
    ins, outs = _specs(h=None, w=None)
    with pytest.raises(ModelError, match="dynamic H/W"):
        PoseEstimator(_engine(ins, outs))
    ins, outs = _specs()
    with pytest.raises(ModelError, match="family"):
        PoseEstimator(_engine(ins, outs, {"family": "tcn"}))
    with pytest.raises(ModelError, match="disagrees"):
        PoseEstimator(_engine(ins, outs, {"input_size": "384,288"}))
    with pytest.raises(ModelError, match="mpii"):
        PoseEstimator(_engine(ins, outs, {"dataset": "mpii"}))
    with pytest.raises(ModelError, match="17 keypoints but dataset 'h36m'|has 17"):
        PoseEstimator(_engine(*_specs(k=26), {"dataset": "coco"}))
    with pytest.raises(ModelError, match="channel_order"):
        PoseEstimator(_engine(ins, outs, {"channel_order": "rgba"}))
    one_out = _engine(ins, outs[:1])
    with pytest.raises(ModelError, match="2 outputs"):
        PoseEstimator(one_out)
    with pytest.raises(ModelError, match="flip_test needs"):
        PoseEstimator(_engine(*_specs(k=26)), flip_test=True)
    with pytest.raises(ModelError, match=r"model.onnx: a tensor has a zero-size dimension; found inputs \[input"):
        PoseEstimator(_engine(*_specs(k=0)))


def test_metadata_defaults_and_overrides():
    # an mmdeploy file: static H, W, no metadata
    ins, outs = _specs()
    cfg = parse_pose_engine(_engine(ins, outs))
    assert cfg.input_size == (192, 256) and cfg.split_ratio == 2.0 and cfg.dataset is COCO17
    assert cfg.mean == RTMPOSE_MEAN_RGB and cfg.std == RTMPOSE_STD_RGB and cfg.channel_order == "rgb"
    assert cfg.output_x == "simcc_x" and cfg.static_batch is None and cfg.normalize
    # 384x288 input, split ratio 3 inferred from the output width
    ins, outs = _specs(h=384, w=288, wx=864, wy=1152)
    cfg = parse_pose_engine(_engine(ins, outs))
    assert cfg.input_size == (288, 384) and cfg.split_ratio == 3.0
    # dynamic H/W but metadata, explicit dataset, BGR network order
    ins, outs = _specs(h=None, w=None, wx=None, wy=None)
    meta = {"family": "rtmpose", "input_size": "256,192", "simcc_split_ratio": "2.0", "dataset": "h36m",
            "channel_order": "bgr", "mean": "1,2,3", "std": "4,5,6", "normalize_in_graph": "1"}
    cfg = parse_pose_engine(_engine(ins, outs, meta))
    assert cfg.input_size == (192, 256) and cfg.dataset is H36M17 and cfg.channel_order == "bgr"
    assert cfg.mean == (1, 2, 3) and cfg.std == (4, 5, 6) and not cfg.normalize
    # swapped output order resolved by name
    ins, outs = _specs()
    cfg = parse_pose_engine(_engine(ins, outs[::-1]))
    assert cfg.output_x == "simcc_x" and cfg.output_y == "simcc_y"


def test_bgr_channel_order_feeds_bgr_planes():
    seen = {}

    class Capture(TemplatePose):
        def run(self, inputs):
            seen["x"] = inputs["input"].copy()
            return super().run(inputs)

    eng = Capture()
    eng.metadata = {**eng.metadata, "channel_order": "bgr", "mean": "0,0,0", "std": "1,1,1"}
    img = np.zeros((64, 48, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 10, 20, 30  # B, G, R
    PoseEstimator(eng)(img, np.array([[0, 0, 48, 64]], np.float32))
    centre = seen["x"][0, :, 128, 96]
    np.testing.assert_array_equal(centre, [10, 20, 30])


def test_wrong_output_shape_at_run_time():
    class Liar(TemplatePose):
        def run(self, inputs):
            out = super().run(inputs)
            return {"simcc_x": out["simcc_x"][:, :, :100], "simcc_y": out["simcc_y"]}

    with pytest.raises(ModelError, match="simcc_x has shape"):
        PoseEstimator(Liar())(np.zeros((20, 20, 3), np.uint8), np.array([[0, 0, 10, 10]], np.float32))


def test_poses2d_validates_itself():
    with pytest.raises(ValueError, match="keypoints"):
        Poses2D(np.zeros((2, 17, 3)), np.zeros((2, 17)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="scores"):
        Poses2D(np.zeros((2, 17, 2)), np.zeros((2, 16)), np.zeros((2, 4)))
    p = Poses2D(np.zeros((1, 17, 2), np.float64), np.zeros((1, 17)), [[0, 0, 1, 1]])
    assert p.keypoints.dtype == np.float32 and len(p) == 1 and p.num_keypoints == 17


def test_constructor_overrides_and_options():
    est = PoseEstimator(TemplatePose(), split_ratio=4.0, input_size=(192, 256), dataset="coco")
    assert est.config.split_ratio == 4.0
    with pytest.raises(ModelError, match=r"input_size \(288, 384\)"):
        PoseEstimator(TemplatePose(), input_size=(288, 384))
    with pytest.raises(InputError, match="max_batch"):
        PoseEstimator(TemplatePose(), max_batch=0)
    with pytest.raises(InputError, match="warp_method"):
        PoseEstimator(TemplatePose(), warp_method="cubic")
    with pytest.raises(ModelError, match="needs an Engine"):
        PoseEstimator(object())
