"""torch is only for converting checkpoints: every module of the runtime (``pose3d_rt`` = runtime/) and of
``pose3d_rt.engines`` must import without importing torch, and must keep working when torch is not installed.

Modules are discovered on disk at test time (new modules are covered automatically). ``pose3d_rt.export`` (and
everything under it) is the one place allowed to import torch, and ``__main__`` modules are skipped because
importing them runs the CLI. Each check runs in a fresh interpreter so earlier tests' imports do not count.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# Walks the packages without importing anything excluded (pkgutil.walk_packages would import
# pose3d_rt.export to recurse into it). Prints JSON {"imported": [...], "failed": {name: error}, "torch": [...]}.
IMPORT_ALL = textwrap.dedent("""
    import importlib, json, pkgutil, sys

    EXCLUDED = ("pose3d_rt.export",)
    imported, failed = [], {}

    def excluded(name):
        return name.rpartition(".")[2] == "__main__" or any(
            name == e or name.startswith(e + ".") for e in EXCLUDED)

    def walk(package):
        imported.append(package.__name__)
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            if excluded(info.name):
                continue
            try:
                module = importlib.import_module(info.name)
            except Exception as exc:
                failed[info.name] = f"{type(exc).__name__}: {exc}"
                continue
            if info.ispkg:
                walk(module)
            else:
                imported.append(info.name)

    import pose3d_rt
    import pose3d_rt.engines
    walk(pose3d_rt)
    walk(pose3d_rt.engines)
    torch = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
    print(json.dumps({"imported": sorted(set(imported)), "failed": failed, "torch": torch[:5]}))
""")

# Makes `import torch` (and torch.*) fail as if torch were not installed.
BLOCK_TORCH = textwrap.dedent("""
    import sys

    class _NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
            return None

    sys.meta_path.insert(0, _NoTorch())
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("the torch blocker did not work")
""")


def _python(code: str, cwd, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=str(cwd), capture_output=True, text=True,
                          timeout=300)


def _report(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _assert_covered(report: dict) -> None:
    names = report["imported"]
    # the walk really covered both folders (guards against a walk that silently finds nothing)
    for expected in ("pose3d_rt", "pose3d_rt.cli.main", "pose3d_rt.errors", "pose3d_rt.engines",
                     "pose3d_rt.engines.base", "pose3d_rt.engines.onnxruntime", "pose3d_rt.engines.tensorrt",
                     "pose3d_rt.engines.loader"):
        assert expected in names, names
    assert not any(n.startswith("pose3d_rt.export") or n.endswith("__main__") for n in names)


def test_runtime_and_engine_modules_do_not_import_torch(tmp_path):
    report = _report(_python(IMPORT_ALL, tmp_path))
    _assert_covered(report)
    assert not report["failed"], f"modules that fail to import: {report['failed']}"
    assert not report["torch"], f"torch was imported by the runtime/engines: {report['torch']}"


def test_everything_imports_with_torch_unimportable(tmp_path):
    report = _report(_python(BLOCK_TORCH + IMPORT_ALL, tmp_path))
    _assert_covered(report)
    assert not report["failed"], f"modules that fail to import without torch: {report['failed']}"
    # and the plain top-level import, as a user would do it
    proc = _python(BLOCK_TORCH + "import pose3d_rt; print(pose3d_rt.__version__)", tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip(), proc.stderr


def test_cli_without_torch(tmp_path):
    """The CLI starts without torch, and `export` then fails with one clear line (exit 2), not a traceback."""
    run_cli = BLOCK_TORCH + "import runpy; sys.argv[0] = 'pose3d-rt'; runpy.run_module('pose3d_rt', run_name='__main__')"
    proc = _python(run_cli, tmp_path, "--help")
    assert proc.returncode == 0 and "export" in proc.stdout, proc.stderr
    ckpt = tmp_path / "model.pth"
    ckpt.write_bytes(b"not really a checkpoint")
    proc = _python(run_cli, tmp_path, "export", str(ckpt), "-o", str(tmp_path / "model.onnx"))
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stderr}"
    assert proc.stderr.startswith("pose3d-rt: error:") and "Traceback" not in proc.stderr, proc.stderr
