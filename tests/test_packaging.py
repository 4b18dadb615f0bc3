"""The built wheel holds the three folders as one package and imports without torch."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

BLOCK_TORCH = (
    "import sys, importlib.abc\n"
    "class _Block(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'torch' or name.startswith('torch.'):\n"
    "            raise ImportError('torch is blocked in this test')\n"
    "sys.meta_path.insert(0, _Block())\n"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                        str(out), str(REPO)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"pip wheel failed: {r.stderr[-2000:]}")
    (whl,) = out.glob("pose3d_rt-*.whl")
    return whl


def test_wheel_maps_the_three_folders(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("pose3d_rt/__init__.py", "pose3d_rt/pipeline.py", "pose3d_rt/engines/onnxruntime.py",
                   "pose3d_rt/export/checkpoint.py", "pose3d_rt/export/models/tcn.py", "pose3d_rt/data/models.json"):
        if module.endswith("models.json") and not (REPO / "runtime" / "data" / "models.json").exists():
            continue
        assert module in names, module
    assert not any(n.startswith(("runtime/", "engines/", "export/", "tests/")) for n in names)


def test_installed_wheel_imports_without_torch(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True)
    code = BLOCK_TORCH + (
        "import importlib, pkgutil, pose3d_rt, pose3d_rt.engines\n"
        f"assert pose3d_rt.__file__.startswith({str(target)!r}), pose3d_rt.__file__\n"
        "for pkg in (pose3d_rt, pose3d_rt.engines):\n"
        "    for m in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + '.'):\n"
        "        if m.name.startswith('pose3d_rt.export') or m.name.endswith('__main__'):\n"
        "            continue\n"
        "        importlib.import_module(m.name)\n"
        "assert 'torch' not in sys.modules\n"
        "print('ok', pose3d_rt.__version__)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(tmp_path),
                       env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.startswith("ok ")
