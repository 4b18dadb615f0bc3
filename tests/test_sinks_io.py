"""Frame sources (probing, errors) and the streaming predictions JSON (valid after every frame)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import FIXTURES
from pose3d_rt.errors import InputError
from pose3d_rt.io.sinks import PredictionWriter, h36m_meta_info, json_instances, to_jsonable
from pose3d_rt.io.sources import FrameSource, open_source
from pose3d_rt.results import FrameResult

VIDEO = FIXTURES / "inputs" / "synthetic_video.avi"


def _result(keypoints_3d, frame_index: int = 0) -> FrameResult:
    n = len(keypoints_3d)
    return FrameResult(frame_index, np.zeros((n, 4)), np.ones(n), np.arange(n), np.zeros((n, 17, 2)),
                       np.ones((n, 17)), keypoints_3d)


def test_meta_info_equals_the_demo_json():
    ref = json.loads((FIXTURES / "e2e" / "video_default" / "results_synthetic_video.json").read_text())["meta_info"]
    ours = json.loads(json.dumps(to_jsonable(h36m_meta_info())))
    assert ours == ref
    assert list(ours) == list(ref)  # key order as written by the demo


def test_writer_is_valid_json_after_every_frame(tmp_path):
    path = tmp_path / "results_x.json"
    w = PredictionWriter(path, h36m_meta_info())
    assert json.loads(path.read_text())["instance_info"] == []
    kp = np.arange(2 * 17 * 3, dtype=np.float32).reshape(2, 17, 3) / 7
    for i in range(3):
        w.write_frame(i + 1, json_instances(_result(kp[: i % 3]), "mmpose"))
        doc = json.loads(path.read_text())  # valid at every frame boundary, without close()
        assert [r["frame_id"] for r in doc["instance_info"]] == list(range(1, i + 2))
    # no close(): simulate a crash; the file is still complete
    doc = json.loads(path.read_text())
    assert len(doc["instance_info"][2]["instances"]) == 2
    np.testing.assert_array_equal(np.array(doc["instance_info"][2]["instances"][1]["keypoints"], np.float32), kp[1])
    assert doc["instance_info"][2]["instances"][0]["keypoint_scores"] == [1.0] * 17
    w.close()


def test_writer_flat_layout_for_images(tmp_path):
    path = tmp_path / "r.json"
    with PredictionWriter(path, {"dataset_name": "h36m"}, flat=True) as w:
        w.write_frame(0, json_instances(_result(np.zeros((3, 17, 3))), "mmpose"))
    doc = json.loads(path.read_text())
    assert isinstance(doc["instance_info"], list) and len(doc["instance_info"]) == 3
    assert set(doc["instance_info"][0]) == {"keypoints", "keypoint_scores"}


def test_video_source_decodes_every_frame_with_the_reference_md5():
    import hashlib

    ref = json.loads((FIXTURES / "inputs" / "inputs.json").read_text())
    with open_source(VIDEO) as src:
        assert (src.info.kind, src.info.width, src.info.height, src.info.total_frames) == ("video", 640, 384, 64)
        frames = list(src)
    assert len(frames) == 64
    md5s = _find_md5_list(ref)
    if md5s:
        assert [hashlib.md5(f.tobytes()).hexdigest() for f in frames] == md5s
    png = cv2.imread(str(FIXTURES / "inputs" / "frames" / "frame_018.png"))
    np.testing.assert_array_equal(frames[18], png)


def _find_md5_list(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if "md5" in k.lower() and isinstance(v, list) and len(v) == 64:
                return v
            r = _find_md5_list(v)
            if r:
                return r
    return None


def test_image_and_folder_sources(tmp_path):
    src = open_source(FIXTURES / "inputs" / "still_portrait_480x640.png")
    assert (src.info.kind, src.info.width, src.info.height) == ("image", 480, 640)
    assert len(list(src)) == 1
    folder = tmp_path / "seq"
    folder.mkdir()
    for i in (2, 0, 1):
        cv2.imwrite(str(folder / f"f{i}.png"), np.full((8, 10, 3), i * 40, np.uint8))
    src = open_source(folder)
    assert src.info.kind == "folder" and src.info.total_frames == 3
    assert [int(f[0, 0, 0]) for f in src] == [0, 40, 80]  # sorted by name


@pytest.mark.parametrize("case", ["missing", "empty_folder", "corrupt_video", "zero_bytes", "bad_array"])
def test_bad_sources_raise_clear_errors(tmp_path, case):
    if case == "missing":
        spec, needle = tmp_path / "nope.mp4", "no such file"
    elif case == "empty_folder":
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "notes.txt").write_text("x")
        spec, needle = tmp_path / "d", "contains no images"
    elif case == "corrupt_video":
        spec = tmp_path / "bad.mp4"
        spec.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
        needle = "bad.mp4"
    elif case == "zero_bytes":
        spec = tmp_path / "empty.avi"
        spec.write_bytes(b"")
        needle = "empty file"
    else:
        spec, needle = np.zeros((4, 4), np.float32), "image array: dtype float32 .* is not uint8"
    with pytest.raises(InputError, match=needle):
        open_source(spec)


def test_truncated_video_keeps_the_frames_before_the_break(tmp_path):
    data = VIDEO.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    with open_source(cut) as src:
        n = sum(1 for _ in src)
    assert 0 < n < 64


def test_from_frames_source():
    frames = (np.full((4, 6, 3), i, np.uint8) for i in range(5))
    src = FrameSource.from_frames(frames, 6, 4, total_frames=5)
    assert [int(f[0, 0, 0]) for f in src] == [0, 1, 2, 3, 4]
    assert src.frames_read == 5


# -- the one per-person schema ----------------------------------------------------------------------------------
def _two_persons(lifted: bool = True) -> FrameResult:
    kp3 = np.arange(2 * 17 * 3, dtype=np.float32).reshape(2, 17, 3) / 3
    kp3[1] = np.nan  # not lifted (yet)
    return FrameResult(4, [[1, 2, 30, 40], [5, 6, 70, 80]], [0.9, 0.5], [3, 8],
                       np.arange(2 * 17 * 2, dtype=np.float32).reshape(2, 17, 2) / 7,
                       np.linspace(0, 1, 34, dtype=np.float32).reshape(2, 17), kp3 if lifted else None, (640, 480))


def test_every_writer_takes_its_fields_from_the_one_schema(tmp_path):
    from pose3d_rt.io.sinks import NpzSpill
    from pose3d_rt.results import DICT_FIELDS, FIELDS, JSON_FIELDS, NPZ_FIELDS, TRACK_FIELDS

    res = _two_persons()
    keys = {mode: [FIELDS[n].json_key for n in JSON_FIELDS[mode]] for mode in JSON_FIELDS}
    assert keys["mmpose"] == ["keypoints", "keypoint_scores"]  # the demo's instance, in the demo's order
    assert keys["default"] == ["keypoints", "keypoint_scores", "track_id", "bbox", "bbox_score", "keypoints_2d",
                               "keypoint_scores_2d"]
    for mode in JSON_FIELDS:
        assert [list(inst) for inst in json_instances(res, mode)] == [keys[mode]] * 2
    assert list(res.to_dict()["persons"][0]) == [FIELDS[n].json_key for n in DICT_FIELDS]
    assert list(_two_persons(lifted=False).to_dict()["persons"][0]) == [FIELDS[n].json_key for n in TRACK_FIELDS]
    spill = NpzSpill(tmp_path / "r.npz")
    spill.add(res)
    spill.save()
    npz = np.load(tmp_path / "r.npz")
    assert list(npz.keys()) == ["frame_index", *NPZ_FIELDS]
    for name in NPZ_FIELDS:
        f = FIELDS[name]
        assert npz[name].dtype == f.dtype and npz[name].ndim == 1 + len(f.shape), name
        np.testing.assert_array_equal(npz[name], res.columns([name])[name])
    assert npz["frame_index"].tolist() == [4, 4]


def test_the_instances_written_per_mode():
    res = _two_persons()
    mm = json_instances(res, "mmpose")
    assert mm[0]["keypoints"][1] == res.keypoints_3d[0, 1].astype(np.float64).tolist()
    assert mm[0]["keypoint_scores"] == [1.0] * 17
    default = json_instances(res, "default")
    assert default[1]["track_id"] == 8 and isinstance(default[1]["track_id"], int)
    assert default[1]["bbox"] == [5.0, 6.0, 70.0, 80.0] and default[0]["bbox_score"] == float(np.float32(0.9))
    assert default[0]["keypoints_2d"] == res.keypoints_2d[0].astype(np.float64).tolist()
    assert json.loads(json.dumps(to_jsonable(default)))[1]["keypoints"][0] == [None, None, None]  # NaN -> null
    assert res.to_dict()["persons"][1]["keypoints"] is None  # the API: a person not lifted has no 3D
    no_lifter = _two_persons(lifted=False)
    assert json_instances(no_lifter, "mmpose")[0]["keypoints"] == [[0.0] * 3] * 17  # what the old demo run wrote
    assert np.isnan(json_instances(no_lifter, "default")[0]["keypoints"]).all()


def test_write_result_uses_the_modes_frame_ids(tmp_path):
    res = _two_persons()
    for mode, frame_id in (("mmpose", 5), ("default", 4)):
        with PredictionWriter(tmp_path / f"{mode}.json", {}, mode=mode) as w:
            w.write_result(res)
        rec = json.loads((tmp_path / f"{mode}.json").read_text())["instance_info"][0]
        assert rec["frame_id"] == frame_id and rec["instances"] == json.loads(
            json.dumps(to_jsonable(json_instances(res, mode))))


# -- atomic writes -----------------------------------------------------------------------------------------------
def test_atomic_path_replaces_the_target_or_leaves_it_alone(tmp_path):
    from pose3d_rt.io.atomic import atomic_path, write_text_atomic

    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(".") and tmp.suffix == ".txt"
            tmp.write_text("half")
            raise RuntimeError("writer died")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    assert write_text_atomic(target, "new") == target
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_image_writer_is_atomic_and_errors_are_one_line(tmp_path):
    from pose3d_rt.io.sinks import write_image

    write_image(tmp_path / "x.png", np.full((4, 5, 3), 9, np.uint8))
    assert cv2.imread(str(tmp_path / "x.png")).shape == (4, 5, 3)
    with pytest.raises(InputError, match=r"x\.nope: cannot write the image"):
        write_image(tmp_path / "x.nope", np.zeros((4, 5, 3), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]
