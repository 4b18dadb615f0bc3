"""Tests of pose3d_rt.export.models.tcn: the VideoPose3D TCN lifter against the fixture checkpoints (keys, shapes,
parameter counts, raw outputs of mmpose's TemporalRegressionHead), strided vs dilated consistency, causal
alignment against an independent numpy reference of docs/MMPOSE_BEHAVIOUR.md, VideoPose3D, variant detection, strict-loading errors, and
the original-VideoPose3D key mapping by round trip through a saved ``{'model_pos': ...}`` file."""
from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES

torch = pytest.importorskip("torch", reason="the TCN module needs the [export] extra (torch)")

from pose3d_rt.engines.errors import ModelError, Pose3DError  # noqa: E402
from pose3d_rt.export.checkpoint import detect_family, load_checkpoint  # noqa: E402
from pose3d_rt.export.models import tcn  # noqa: E402

LIFTERS = {"videopose3d_27f_supv": ("videopose3d_27f", 27), "videopose3d_243f_supv_cpn_ft": ("videopose3d_243f", 243)}


def _manifest(name: str) -> dict:
    with open(FIXTURES / "weights" / f"{name}.manifest.json") as fh:
        return json.load(fh, object_pairs_hook=OrderedDict)


@pytest.fixture(scope="module")
def state_dicts(checkpoints):
    return {name: load_checkpoint(checkpoints[name])[0] for name in LIFTERS}


@pytest.fixture(scope="module")
def models(state_dicts):
    return {name: tcn.load_model(sd)[0] for name, sd in state_dicts.items()}


def _codec_to_nt(x: np.ndarray) -> np.ndarray:
    """mmpose codec input (N, K*2, T), channel 2k+d (docs/MMPOSE_BEHAVIOUR.md, VideoPose3D) -> the module's (N, T, K, 2)."""
    n, c, t = x.shape
    return np.ascontiguousarray(x.reshape(n, c // 2, 2, t).transpose(0, 3, 1, 2))


def _run(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()


# ------------------------------------------------------------------------------------------ fixture lifters --
@pytest.mark.parametrize("name", LIFTERS)
def test_fixture_lifter_keys_shapes_params(models, state_dicts, name):
    man = _manifest(name)
    want = [(e["key"].replace("keypoint_head", "head"), tuple(e["shape"])) for e in man["state_dict"]]
    model = models[name]
    got = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert got == want  # same keys, same order, same shapes
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == man["param_count"]
    variant, rf = LIFTERS[name]
    assert tcn.detect_variant(state_dicts[name]) == variant
    assert model.receptive_field == rf and model.form == "strided" and not model.causal and not model.training
    assert model.input_joint_order == "h36m"
    # BN as mmcv builds it
    bn = model.backbone.expand_conv.bn
    assert bn.eps == 1e-5 and bn.momentum == 0.1 and bn.affine and bn.track_running_stats
    # weights loaded exactly
    for k, v in model.state_dict().items():
        assert torch.equal(v, state_dicts[name][k])


def _lift_cases(name):
    return sorted((FIXTURES / "lift" / name).glob("*.npz"))


@pytest.mark.parametrize("name", LIFTERS)
def test_fixture_parity_raw_output(models, name):
    """Strided model on mmpose's exact TCN input reproduces TemporalRegressionHead.forward, norm on and off."""
    model = models[name]
    dilated, _ = tcn.load_model(model.state_dict(), form="dilated")
    cases = _lift_cases(name)
    assert len(cases) >= 10
    worst = 0.0
    for path in cases:
        z = np.load(path)
        for pre in ("norm__", "nonorm__"):
            x = _codec_to_nt(z[pre + "model_input"])
            ref = z[pre + "raw_output"]
            assert x.shape[1] == model.receptive_field
            out = _run(model, x)
            assert out.shape == (ref.shape[0], 1, 17, 3)
            scale = float(np.abs(ref).max())
            err = float(np.abs(out[:, 0] - ref).max())
            worst = max(worst, err / scale)
            assert err <= 1e-4 * scale, f"{path.name} {pre}: max |d| {err:.3g} (max |ref| {scale:.3g})"
            # decoded prediction = raw output + zero root (docs/MMPOSE_BEHAVIOUR.md, VideoPose3D)
            np.testing.assert_allclose(out[:, 0], z[pre + "pred_keypoints"][:, 0], rtol=0, atol=1e-4 * scale)
            # the dilated form on exactly RF frames gives the same single pose
            outd = _run(dilated, x)
            assert outd.shape == out.shape
            np.testing.assert_allclose(outd, out, rtol=0, atol=1e-5 * scale)
    assert worst <= 1e-4


# ------------------------------------------------------------------------------------- forms and causality --
def _windows(x: np.ndarray, rf: int) -> np.ndarray:
    """(N, T, K, 2) -> (N * (T-rf+1), rf, K, 2), window j = frames [j, j + rf), grouped by sample."""
    n, t = x.shape[:2]
    return np.stack([x[:, j:j + rf] for j in range(t - rf + 1)], axis=1).reshape(n * (t - rf + 1), rf, *x.shape[2:])


@pytest.mark.parametrize("name", LIFTERS)
@pytest.mark.parametrize("causal", [False, True], ids=["centred", "causal"])
def test_dilated_equals_strided_per_window(state_dicts, name, causal):
    sd = state_dicts[name]
    strided, variant = tcn.load_model(sd, form="strided", causal=causal)
    dilated, variant_d = tcn.load_model(sd, form="dilated", causal=causal)
    assert variant == variant_d and dilated.causal is causal
    rf = strided.receptive_field
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, size=(2, rf + 9, 17, 2)).astype(np.float32)
    seq = _run(dilated, x)
    assert seq.shape == (2, 10, 17, 3)
    per_window = _run(strided, _windows(x, rf)).reshape(2, 10, 17, 3)
    scale = float(np.abs(per_window).max())
    np.testing.assert_allclose(seq, per_window, rtol=0, atol=2e-5 * scale)
    # strided fed T = 2 * RF frames returns one pose per non-overlapping window: dilated outputs 0 and RF
    x2 = rng.uniform(-1, 1, size=(1, 2 * rf, 17, 2)).astype(np.float32)
    two = _run(strided, x2)
    assert two.shape == (1, 2, 17, 3)
    np.testing.assert_allclose(two, _run(dilated, x2)[:, [0, rf]], rtol=0, atol=2e-5 * np.abs(two).max())


def _np_reference(sd, x: np.ndarray, causal: bool) -> np.ndarray:
    """Independent float64 numpy implementation of docs/MMPOSE_BEHAVIOUR.md, VideoPose3D, dilated form. x: (N, T, K, 2)."""
    g = {k: v.double().numpy() for k, v in sd.items()}

    def conv_bn_relu(h, prefix, dilation):
        w = g[prefix + ".conv.weight"]  # (O, I, k)
        k = w.shape[2]
        length = h.shape[2] - (k - 1) * dilation
        y = sum(np.einsum("oi,nit->not", w[:, :, j], h[:, :, j * dilation: j * dilation + length]) for j in range(k))
        mean, var = g[prefix + ".bn.running_mean"], g[prefix + ".bn.running_var"]
        y = (y - mean[:, None]) / np.sqrt(var[:, None] + 1e-5) * g[prefix + ".bn.weight"][:, None] \
            + g[prefix + ".bn.bias"][:, None]
        return np.maximum(y, 0.0)

    n, t, kj, c = x.shape
    h = x.astype(np.float64).reshape(n, t, kj * c).transpose(0, 2, 1)
    h = conv_bn_relu(h, "backbone.expand_conv", 1)
    d = g["backbone.expand_conv.conv.weight"].shape[2]
    i = 0
    while f"backbone.tcn_blocks.{i}.conv1.0.conv.weight" in g:
        k = g[f"backbone.tcn_blocks.{i}.conv1.0.conv.weight"].shape[2]
        out = conv_bn_relu(conv_bn_relu(h, f"backbone.tcn_blocks.{i}.conv1.0", d), f"backbone.tcn_blocks.{i}.conv2.0", 1)
        pad = (k - 1) * d // 2
        shift = (k // 2) * d if causal else 0
        h = out + h[:, :, pad + shift: h.shape[2] - pad + shift]
        d *= k
        i += 1
    y = np.einsum("oi,nit->not", g["head.conv.weight"][:, :, 0], h) + g["head.conv.bias"][:, None]
    return y.transpose(0, 2, 1).reshape(n, -1, kj, 3)


@pytest.mark.parametrize("causal", [False, True], ids=["centred", "causal"])
def test_dilated_matches_numpy_reference(state_dicts, causal):
    sd = state_dicts["videopose3d_27f_supv"]
    model, _ = tcn.load_model(sd, form="dilated", causal=causal)
    rng = np.random.default_rng(11)
    x = rng.uniform(-1, 1, size=(3, 40, 17, 2)).astype(np.float32)
    ref = _np_reference(sd, x, causal)
    out = _run(model, x)
    assert out.shape == ref.shape == (3, 14, 17, 3)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-5 * np.abs(ref).max())
    # the causal flag changes the residual alignment, hence the result
    other = _np_reference(sd, x, not causal)
    assert np.abs(other - ref).max() > 1e-2 * np.abs(ref).max()


def test_residual_slices_follow_spec_tables():
    """docs/MMPOSE_BEHAVIOUR.md, VideoPose3D: strided residual [1::3] (centred) / [2::3] (causal); dilated pads 3, 9, 27, 81."""
    for causal, start in ((False, 1), (True, 2)):
        m = tcn.build_model("videopose3d_243f", form="strided", causal=causal)
        assert [(b.start, b.kernel) for b in m.backbone.tcn_blocks] == [(start, 3)] * 4
        assert m.backbone.expand_conv.conv.stride == (3,)
    m = tcn.build_model("videopose3d_243f", form="dilated")
    assert [b.conv1[0].conv.dilation[0] for b in m.backbone.tcn_blocks] == [3, 9, 27, 81]
    assert [(b.start, b.end_trim) for b in m.backbone.tcn_blocks] == [(3, 3), (9, 9), (27, 27), (81, 81)]
    m = tcn.build_model("videopose3d_243f", form="dilated", causal=True)
    assert [(b.start, b.end_trim) for b in m.backbone.tcn_blocks] == [(6, 0), (18, 0), (54, 0), (162, 0)]
    # lengths of the dilated 243 model on 243 frames: 241 -> 235 -> 217 -> 163 -> 1
    lengths = []
    x = torch.zeros(1, 34, 243)
    with torch.no_grad():
        h = m.backbone.expand_conv(x)
        lengths.append(h.shape[2])
        for b in m.backbone.tcn_blocks:
            h = b(h)
            lengths.append(h.shape[2])
    assert lengths == [241, 235, 217, 163, 1]


def test_input_validation(models):
    m = models["videopose3d_27f_supv"]
    with pytest.raises(Pose3DError, match="multiple of 27"):
        m(torch.zeros(1, 28, 17, 2))
    with pytest.raises(Pose3DError, match=r"\(N, T, 17, 2\)"):
        m(torch.zeros(1, 27, 16, 2))
    d = tcn.build_model("videopose3d_27f", form="dilated")
    with pytest.raises(Pose3DError, match="T >= 27"):
        d(torch.zeros(1, 26, 17, 2))
    with pytest.raises(ModelError, match="form"):
        tcn.build_model("videopose3d_27f", form="sideways")


# ---------------------------------------------------------------------------------------- variant detection --
@pytest.mark.parametrize("variant,rf,nkeys", [("videopose3d_1f", 1, 56), ("videopose3d_27f", 27, 32),
                                              ("videopose3d_81f", 81, 44), ("videopose3d_243f", 243, 56)])
def test_detect_variant_official(variant, rf, nkeys):
    m = tcn.build_model(variant)
    sd = m.state_dict()
    assert len(sd) == nkeys
    assert tcn.detect_variant(sd) == variant and m.receptive_field == rf == tcn.VARIANTS[variant].receptive_field
    # causality is a config flag, not a weight: a causal model's weights detect as the same variant
    assert tcn.detect_variant(tcn.build_model(variant, causal=True).state_dict()) == variant
    loaded, name = tcn.load_model(sd, causal=True)
    assert name == variant and loaded.causal


def test_param_counts_of_spec_table():
    counts = {v: sum(p.numel() for p in tcn.build_model(v).parameters()) for v in tcn.VARIANTS}
    assert counts == {"videopose3d_1f": 8_494_131, "videopose3d_27f": 8_555_571,
                      "videopose3d_81f": 12_753_971, "videopose3d_243f": 16_952_371}


def test_custom_architecture_round_trip():
    cfg = tcn.TCNConfig(kernel_sizes=(3, 5, 1), channels=16, in_channels=32, num_joints=16)
    assert cfg.receptive_field == 15 and cfg.dilations == (3, 15)
    m = tcn.build_model(cfg, form="dilated")
    name = tcn.detect_variant(m.state_dict())
    assert name == "tcn_k3-5-1_c16_in32_j16" and tcn.resolve_variant(name) == cfg
    loaded, got = tcn.load_model(m.state_dict(), form="dilated")
    assert got == name
    x = np.random.default_rng(3).normal(size=(2, 20, 16, 2)).astype(np.float32)
    np.testing.assert_array_equal(_run(loaded, x), _run(m, x))
    assert _run(loaded, x).shape == (2, 6, 16, 3)
    with pytest.raises(ModelError, match="odd"):
        tcn.TCNConfig(kernel_sizes=(3, 2))
    with pytest.raises(ModelError, match="unknown TCN variant"):
        tcn.resolve_variant("videopose3d_9000f")


# --------------------------------------------------------------------------------------- loading errors --
def test_load_model_errors(state_dicts, checkpoints):
    sd = state_dicts["videopose3d_27f_supv"]
    with pytest.raises(ModelError) as ei:
        tcn.load_model(sd, arch="videopose3d_243f")
    msg = str(ei.value)
    assert "videopose3d_243f" in msg and "missing keys (20)" in msg  # 2 blocks x 12 keys, num_batches_tracked optional and "backbone.tcn_blocks.2" in msg
    assert "looks like videopose3d_27f" in msg

    bad = dict(sd)
    bad["backbone.tcn_blocks.1.conv2.0.conv.weight"] = torch.zeros(1024, 1024, 3)
    with pytest.raises(ModelError, match=r"shape mismatches \(1\).*tcn_blocks\.1\.conv2\.0\.conv\.weight"):
        tcn.load_model(bad)

    extra = dict(sd, **{"backbone.extra.weight": torch.zeros(3)})
    with pytest.raises(ModelError, match=r"unexpected keys \(1\): \['backbone.extra.weight'\]"):
        tcn.load_model(extra)

    missing = {k: v for k, v in sd.items() if k != "backbone.tcn_blocks.0.conv1.0.bn.running_var"}
    with pytest.raises(ModelError, match=r"missing keys \(1\)"):
        tcn.load_model(missing)

    rtmdet, _ = load_checkpoint(checkpoints["rtmdet_nano_person"])
    with pytest.raises(ModelError, match="rtmdet checkpoint, not a VideoPose3D TCN"):
        tcn.load_model(rtmdet)
    with pytest.raises(ModelError, match="not a VideoPose3D TCN lifter checkpoint"):
        tcn.load_model({"foo.weight": torch.zeros(1)})


def test_optional_and_ignored_keys(state_dicts, models):
    sd = state_dicts["videopose3d_27f_supv"]
    x = np.random.default_rng(5).uniform(-1, 1, size=(2, 27, 17, 2)).astype(np.float32)
    ref = _run(models["videopose3d_27f_supv"], x)
    no_nbt = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    assert len(no_nbt) == len(sd) - 5
    m, _ = tcn.load_model(no_nbt)
    np.testing.assert_array_equal(_run(m, x), ref)
    semi = dict(sd)
    for k, v in sd.items():  # a semi-supervised checkpoint carries a trajectory TCN too (docs/MMPOSE_BEHAVIOUR.md, Checkpoints)
        semi["traj_" + k if k.startswith("backbone.") else k] = v
    semi["traj_head.conv.weight"] = torch.zeros(3, 1024, 1)
    semi["traj_head.conv.bias"] = torch.zeros(3)
    m, name = tcn.load_model(semi)
    assert name == "videopose3d_27f"
    np.testing.assert_array_equal(_run(m, x), ref)


# ------------------------------------------------------------------------------------ original VideoPose3D --
def test_original_key_mapping_table(state_dicts):
    orig = tcn.convert_to_original_videopose3d(state_dicts["videopose3d_243f_supv_cpn_ft"])
    assert len(orig) == 56
    pairs = {
        "expand_conv.weight": "backbone.expand_conv.conv.weight",
        "expand_bn.running_var": "backbone.expand_conv.bn.running_var",
        "layers_conv.0.weight": "backbone.tcn_blocks.0.conv1.0.conv.weight",
        "layers_conv.3.weight": "backbone.tcn_blocks.1.conv2.0.conv.weight",
        "layers_bn.6.num_batches_tracked": "backbone.tcn_blocks.3.conv1.0.bn.num_batches_tracked",
        "layers_bn.7.bias": "backbone.tcn_blocks.3.conv2.0.bn.bias",
        "shrink.weight": "head.conv.weight",
        "shrink.bias": "head.conv.bias",
    }
    sd = state_dicts["videopose3d_243f_supv_cpn_ft"]
    for o, m in pairs.items():
        assert orig[o] is sd[m]
    assert tuple(orig["layers_conv.6.weight"].shape) == (1024, 1024, 3)
    assert tuple(orig["layers_conv.7.weight"].shape) == (1024, 1024, 1)
    back = tcn.convert_original_videopose3d(orig)
    assert list(back) == list(sd)
    with pytest.raises(ModelError, match="unknown keys"):
        tcn.convert_original_videopose3d({"expand_conv.weight": torch.zeros(1), "pos_embed": torch.zeros(1)})


@pytest.mark.parametrize("zipfmt", [True, False], ids=["zip", "legacy"])
def test_original_checkpoint_round_trip(tmp_path: Path, state_dicts, models, zipfmt):
    name = "videopose3d_27f_supv"
    orig = OrderedDict(tcn.convert_to_original_videopose3d(state_dicts[name]))
    path = tmp_path / "pretrained_h36m_detectron_coco.bin"
    torch.save({"epoch": 80, "lr": 1e-5, "optimizer": {"state": {}, "param_groups": []}, "model_pos": orig,
                "model_traj": None, "random_state": None}, path, _use_new_zipfile_serialization=zipfmt)
    sd, meta = load_checkpoint(path)
    assert meta["loader"]["format"] == "videopose3d_original" and meta["epoch"] == 80
    family = detect_family(sd)
    assert family == "videopose3d_original"
    order = tcn.guess_input_joint_order(path.name, family)
    assert order == "coco"
    for form in ("strided", "dilated"):
        model, variant = tcn.load_model(sd, form=form, input_joint_order=order)
        assert variant == "videopose3d_27f" and model.input_joint_order == "coco"
        z = np.load(FIXTURES / "lift" / name / "gtvideo_f038.npz")
        x = _codec_to_nt(z["norm__model_input"])
        ref = _run(models[name], x)
        if form == "strided":  # same graph, same weights: bit-identical
            np.testing.assert_array_equal(_run(model, x), ref)
        else:
            np.testing.assert_allclose(_run(model, x), ref, rtol=0, atol=1e-5 * np.abs(ref).max())


def test_input_joint_order_guess_and_validation():
    assert tcn.guess_input_joint_order("pretrained_h36m_cpn.bin", "videopose3d_original") == "h36m"
    assert tcn.guess_input_joint_order("pretrained_243_h36m_detectron_coco_wtraj.bin", "videopose3d_original") == "coco"
    # mmpose checkpoints were trained on H36M-ordered 2D whatever the file is called
    assert tcn.guess_input_joint_order("my_coco_finetune.pth", "tcn") == "h36m"
    with pytest.raises(ModelError, match="input_joint_order"):
        tcn.build_model("videopose3d_27f", input_joint_order="mpii")
