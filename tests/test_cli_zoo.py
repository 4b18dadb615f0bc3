"""CLI x model zoo: `models list|path|fetch`, aliases and URLs for `run`, and their errors (local HTTP server)."""
from __future__ import annotations

import hashlib
import random

import pytest
from conftest import FIXTURES
from pose3d_rt import hub
from pose3d_rt.cli import main
from test_zoo import home, server  # noqa: F401  (autouse tmp cache home; the 127.0.0.1 HTTP server)


def _one_line_error(capsys, code, needle):
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("pose3d-rt: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert needle in lines[0], lines[0]
    return lines[0]


def test_models_list_shows_every_alias_defaults_and_licences(capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    for e in hub.list_models():
        assert e.alias in out
    for alias in hub.defaults().values():
        assert f"{alias} [default]" in out
    assert "CC BY-NC" in out
    assert main(["models", "list", "--role", "lifter"]) == 0
    out = capsys.readouterr().out
    assert all(e.alias in out for e in hub.list_models("lifter"))
    assert not any(e.alias in out.split() for e in hub.list_models("detector"))


def test_models_path_is_under_the_cache_home(capsys, home):  # noqa: F811
    assert main(["models", "path", "rtmpose-m"]) == 0
    got = capsys.readouterr().out.strip()
    assert got == str(home / "checkpoints" / hub.get("rtmpose-m").file_name)


def test_models_fetch_url_and_404(server, capsys, home):  # noqa: F811
    base, state = server
    data = random.Random(3).randbytes(50_000)
    name = f"thing-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    state.files[name] = data
    assert main(["models", "fetch", f"{base}/{name}", "--no-progress"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == str(home / "checkpoints" / name)
    assert (home / "checkpoints" / name).read_bytes() == data
    code = main(["models", "fetch", f"{base}/missing-0123abcd.pth", "--no-progress"])
    _one_line_error(capsys, code, "404")
    left = [p.name for p in (home / "checkpoints").iterdir() if p.name.startswith("missing")]
    assert left in ([], ["missing-0123abcd.pth.lock"]), left  # no file, no partial download


def test_models_fetch_needs_a_name(capsys):
    _one_line_error(capsys, main(["models", "fetch"]), "--all-defaults")


@pytest.mark.parametrize("flag,value,needle", [
    ("--det", "rtmdet-m-persn", "did you mean"),
    ("--det", "rtmpose-m", "not a detector"),
    ("--lifter", "rtmdet-m-person", "not a lifter"),
])
def test_run_bad_aliases_are_one_line_errors(flag, value, needle, tmp_path, capsys):
    inp = str(FIXTURES / "inputs" / "still_portrait_480x640.png")
    args = ["run", inp, "--output-root", str(tmp_path / "out"), "--no-progress", flag, value]
    line = _one_line_error(capsys, main(args), flag)
    assert needle in line.lower()
    assert not list((tmp_path / "out").rglob("*.*"))


def test_run_model_url_404_is_a_one_line_error(server, tmp_path, capsys):  # noqa: F811
    base, _ = server
    inp = str(FIXTURES / "inputs" / "still_portrait_480x640.png")
    args = ["run", inp, "--det", f"{base}/rtmdet-deadbeef.pth", "--output-root", str(tmp_path / "out"),
            "--no-progress"]
    line = _one_line_error(capsys, main(args), "--det")
    assert "404" in line
    assert not list((tmp_path / "out").rglob("*.*"))


def test_run_input_url_that_does_not_exist_fails_before_any_model(server, tmp_path, capsys):  # noqa: F811
    base, state = server
    args = ["run", f"{base}/missing.mp4", "--output-root", str(tmp_path / "out"), "--no-progress"]
    _one_line_error(capsys, main(args), "missing.mp4")
    assert all(r["path"] == "/missing.mp4" for r in state.requests)  # no model was fetched
