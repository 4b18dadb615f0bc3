"""Tests of pose3d_rt.export.checkpoint: safe loading of the six rebuilt official-layout checkpoints (content hash
and key order against the fixture manifests), the keypoint_head -> head rename rule, container layouts, family
detection, and refusal of malicious / broken files (the payload must not run)."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, MODELS

torch = pytest.importorskip("torch", reason="checkpoint loading needs the [export] extra (torch)")

from pose3d_rt.engines.errors import ModelError  # noqa: E402
from pose3d_rt.export.checkpoint import (  # noqa: E402
    FAMILIES,
    detect_family,
    file_sha256,
    load_checkpoint,
)


def _build_checkpoint_module():
    spec = importlib.util.spec_from_file_location("build_checkpoint", FIXTURES / "build_checkpoint.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


BC = _build_checkpoint_module()

EXPECTED_FAMILY = {
    "rtmdet_m_person": "rtmdet",
    "rtmdet_nano_person": "rtmdet",
    "rtmpose_m_body8_256x192": "rtmpose",
    "rtmpose_t_body8_256x192": "rtmpose",
    "videopose3d_243f_supv_cpn_ft": "tcn",
    "videopose3d_27f_supv": "tcn",
}


def _manifest(name: str) -> dict:
    with open(FIXTURES / "weights" / f"{name}.manifest.json") as fh:
        return json.load(fh, object_pairs_hook=OrderedDict)


def _expected_key(stored_key: str, root_version: int) -> str:
    """mmpose 1.x BasePoseEstimator pre-hook: rename keypoint_head -> head when the root version is < 2."""
    return stored_key.replace("keypoint_head", "head") if root_version < 2 else stored_key


# ------------------------------------------------------------------------------------------ the six files --
@pytest.mark.parametrize("name", MODELS)
def test_fixture_checkpoint_loads_with_manifest_content(checkpoints, name):
    man = _manifest(name)
    root_version = dict(man["state_dict_metadata"])[""]["version"]
    sd, meta = load_checkpoint(checkpoints[name])

    stored_keys = [e["key"] for e in man["state_dict"]]
    assert list(sd) == [_expected_key(k, root_version) for k in stored_keys]
    for ent in man["state_dict"]:
        t = sd[_expected_key(ent["key"], root_version)]
        assert tuple(t.shape) == tuple(ent["shape"]) and str(t.dtype).replace("torch.", "") == ent["dtype"]
    # canonical content hash, over the keys as stored in the file (i.e. before the rename)
    arrays = OrderedDict((k, sd[_expected_key(k, root_version)].numpy()) for k in stored_keys)
    assert BC.state_dict_sha256(arrays) == man["sha256"]["state_dict"]

    assert not hasattr(sd, "_metadata")
    loader = meta["loader"]
    assert loader["format"] == "mmengine"
    assert loader["root_version"] == root_version
    assert loader["renamed"] == sum("keypoint_head" in k for k in stored_keys)
    assert set(man["meta_keys"]) <= set(meta)
    if name.startswith("videopose3d"):
        assert loader["renamed"] == 2 and "head.conv.weight" in sd and "keypoint_head.conv.weight" not in sd


def test_rtmpose_meta_numpy_arrays_come_back(checkpoints):
    """The RTMPose meta pickles numpy arrays (dataset_meta): they load under the allow-list, values intact."""
    _, meta = load_checkpoint(checkpoints["rtmpose_t_body8_256x192"])
    want = BC.load_meta("rtmpose_t_body8_256x192")["dataset_meta"]
    got = meta["dataset_meta"]
    arrays = [k for k, v in want.items() if isinstance(v, np.ndarray)]
    assert arrays, "fixture meta is expected to contain numpy arrays"
    for k in arrays:
        assert got[k].dtype == want[k].dtype
        np.testing.assert_array_equal(got[k], want[k])


@pytest.mark.parametrize("name", MODELS)
def test_detect_family_of_fixtures(checkpoints, name):
    sd, _ = load_checkpoint(checkpoints[name])
    assert detect_family(sd) == EXPECTED_FAMILY[name]


def test_file_sha256_matches_manifest_for_zip_files(checkpoints):
    for name in ("videopose3d_27f_supv", "videopose3d_243f_supv_cpn_ft"):
        path = checkpoints[name]
        digest = file_sha256(path, chunk=4096)
        assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    # the zip bytes are stable only for the torch that wrote the manifest; compare when it is the same torch
    man = _manifest("videopose3d_27f_supv")
    if torch.__version__ == man["produced_with"]["torch"]:
        assert file_sha256(checkpoints["videopose3d_27f_supv"]) == man["sha256"]["pth"]


# --------------------------------------------------------------------------------------- rename / layouts --
def _save_sd(path: Path, sd: OrderedDict, root_version, container: str = "mmengine", zipfmt: bool = True) -> Path:
    if root_version is not None:
        sd._metadata = OrderedDict([("", {"version": root_version})])
    obj = {"meta": {"epoch": 3}, "state_dict": sd} if container == "mmengine" else (
        {"model_pos": sd, "epoch": 80, "lr": 1e-5, "model_traj": None} if container == "original" else sd)
    torch.save(obj, path, _use_new_zipfile_serialization=zipfmt)
    return path


def _small_sd():
    return OrderedDict([
        ("module.backbone.expand_conv.conv.weight", torch.arange(6.0).reshape(2, 1, 3)),
        ("module.keypoint_head.conv.weight", torch.ones(3, 2, 1)),
        ("module.keypoint_head.conv.bias", torch.zeros(3)),
        ("data_preprocessor.mean", torch.zeros(3)),
    ])


@pytest.mark.parametrize("version,renamed", [(None, True), (0, True), (1, True), (2, False), (3, False)])
def test_keypoint_head_rename_follows_root_version(tmp_path, version, renamed):
    sd, meta = load_checkpoint(_save_sd(tmp_path / "c.pth", _small_sd(), version))
    head = "head" if renamed else "keypoint_head"
    assert list(sd) == ["backbone.expand_conv.conv.weight", f"{head}.conv.weight", f"{head}.conv.bias"]
    np.testing.assert_array_equal(sd["backbone.expand_conv.conv.weight"].numpy(), np.arange(6.0).reshape(2, 1, 3))
    assert meta["loader"]["renamed"] == (2 if renamed else 0)
    assert meta["loader"]["stripped_module_prefix"] is True
    assert meta["loader"]["dropped"] == ["data_preprocessor.mean"]
    assert meta["loader"]["root_version"] == version
    assert meta["epoch"] == 3
    if renamed:
        assert detect_family(sd) == "tcn"


def test_original_videopose3d_container_and_bare_state_dict(tmp_path):
    sd = OrderedDict([("expand_conv.weight", torch.ones(4, 34, 3)), ("layers_conv.0.weight", torch.ones(4, 4, 3)),
                      ("shrink.weight", torch.ones(51, 4, 1)), ("shrink.bias", torch.ones(51))])
    got, meta = load_checkpoint(_save_sd(tmp_path / "orig.bin", OrderedDict(sd), None, "original", zipfmt=False))
    assert list(got) == list(sd) and meta["loader"]["format"] == "videopose3d_original"
    assert meta["epoch"] == 80 and meta["lr"] == 1e-5 and meta["loader"]["has_model_traj"] is False
    assert detect_family(got) == "videopose3d_original"

    got, meta = load_checkpoint(_save_sd(tmp_path / "bare.pth", OrderedDict(sd), None, "bare"))
    assert list(got) == list(sd) and meta["loader"]["format"] == "bare"


def test_numpy1_spelled_globals_are_accepted(tmp_path):
    """Files written under numpy 1.x pickle ``numpy.core.multiarray._reconstruct``; they must load under numpy 2."""
    meta = {"dataset_meta": {"sigmas": np.array([0.1, 0.2], np.float32), "colors": np.array([[1, 2]], np.uint8),
                             "best": np.float64(0.5)}}
    path = tmp_path / "np.pth"
    torch.save({"meta": meta, "state_dict": OrderedDict(w=torch.ones(2, 2))}, path,
               _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    core = b"numpy._core.multiarray" if b"numpy._core.multiarray" in data else b"numpy.core.multiarray"
    for spelling in (b"numpy._core.multiarray", b"numpy.core.multiarray"):
        p = tmp_path / f"np_{spelling.decode()}.pth"
        p.write_bytes(data.replace(core, spelling))  # protocol-2 GLOBAL opcodes are newline-terminated text
        sd, m = load_checkpoint(p)
        np.testing.assert_array_equal(m["dataset_meta"]["sigmas"], meta["dataset_meta"]["sigmas"])
        assert m["dataset_meta"]["colors"].dtype == np.uint8
        assert m["dataset_meta"]["best"] == 0.5
        np.testing.assert_array_equal(sd["w"].numpy(), np.ones((2, 2)))


# ------------------------------------------------------------------------------------------ refused files --
class _Payload:
    """Pickles as ``os.system("touch <marker>")``: runs on an unsafe load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


class _Arbitrary:
    def __init__(self) -> None:
        self.x = 1


@pytest.mark.skipif(sys.platform == "win32", reason="payload uses touch")
@pytest.mark.parametrize("zipfmt", [True, False], ids=["zip", "legacy"])
def test_malicious_pickle_refused_without_executing(tmp_path, zipfmt):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": OrderedDict(w=torch.ones(1)), "meta": {"x": _Payload(marker)}}, path,
               _use_new_zipfile_serialization=zipfmt)
    with pytest.raises(ModelError) as ei:
        load_checkpoint(path)
    msg = str(ei.value)
    assert str(path) in msg and "refused to unpickle" in msg and "system" in msg
    assert "checkpoints may only contain tensors, numpy arrays and plain containers" in msg
    assert not marker.exists()
    # control: the payload is live (an unsafe load would have run it), so the assertion above can fail
    torch.load(path, map_location="cpu", weights_only=False)
    assert marker.exists()


def test_arbitrary_class_refused(tmp_path):
    path = tmp_path / "cls.pth"
    torch.save({"state_dict": OrderedDict(w=torch.ones(1)), "meta": {"obj": _Arbitrary()}}, path)
    with pytest.raises(ModelError, match=r"refused to unpickle .*_Arbitrary: checkpoints may only contain"):
        load_checkpoint(path)


@pytest.mark.parametrize("name", ["videopose3d_27f_supv", "rtmdet_nano_person"], ids=["zip", "legacy"])
@pytest.mark.parametrize("frac", [0.5, 0.01])
def test_truncated_checkpoint(checkpoints, tmp_path, name, frac):
    data = checkpoints[name].read_bytes()
    path = tmp_path / f"{name}_cut.pth"
    path.write_bytes(data[: int(len(data) * frac)])
    with pytest.raises(ModelError, match=r"truncated or corrupt") as ei:
        load_checkpoint(path)
    assert str(path) in str(ei.value)


def test_not_a_checkpoint_missing_directory_empty(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("this is not a checkpoint\n" * 20)
    with pytest.raises(ModelError, match="not a readable PyTorch checkpoint") as ei:
        load_checkpoint(text)
    assert str(text) in str(ei.value)

    png = tmp_path / "image.pth"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    with pytest.raises(ModelError, match=str(png)):
        load_checkpoint(png)

    with pytest.raises(ModelError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "missing.pth")
    with pytest.raises(ModelError, match="is a directory"):
        load_checkpoint(tmp_path)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(ModelError, match="empty"):
        load_checkpoint(empty)


def test_checkpoint_without_state_dict(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.ones(2)], path)
    with pytest.raises(ModelError, match="no state dict found"):
        load_checkpoint(path)
    path = tmp_path / "opt.pth"
    torch.save({"optimizer": {"lr": 0.1}, "epoch": 1}, path)
    with pytest.raises(ModelError, match=r"no state dict found.*'epoch', 'optimizer'"):
        load_checkpoint(path)


def test_detect_family_unknown_lists_families():
    sd = OrderedDict((f"layer{i}.weight", torch.zeros(1)) for i in range(10))
    with pytest.raises(ModelError) as ei:
        detect_family(sd)
    msg = str(ei.value)
    for fam in FAMILIES:
        assert fam in msg
    assert "bbox_head.rtm_cls" in msg and "layers_conv" in msg and "layer0.weight" in msg
    assert "layer9.weight" not in msg  # only the first few keys are listed
    # a TCN backbone without its head is not a TCN
    with pytest.raises(ModelError):
        detect_family({"backbone.expand_conv.conv.weight": torch.zeros(1)})
