"""Shared test configuration: fixture paths, optional-dependency markers, the rebuilt checkpoints."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
FIXTURES = TESTS / "fixtures"
REPO = TESTS.parent
# Checkpoints rebuilt from the recipe (tests/fixtures/build_checkpoint.py) land here once per machine.
# The fixture images that the per-stage references (det/, pose/) were made on, by case name.
FIXTURE_IMAGES = {
    "still_group_960x600": "inputs/still_group_960x600.png",
    "still_portrait_480x640": "inputs/still_portrait_480x640.png",
    "video_f003": "inputs/frames/frame_003.png",
    "video_f018": "inputs/frames/frame_018.png",
    "video_f041": "inputs/frames/frame_041.png",
}


def read_frames(path) -> list:
    """Every frame of a video file (BGR uint8), with OpenCV."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def frames_folder(folder: Path, count: int, video=None) -> Path:
    """The first ``count`` frames of the fixture video (or ``video``) as PNGs ``0000.png ...`` in ``folder`` (a folder
    of images is processed as a video, in name order)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    frames = read_frames(video or FIXTURES / "inputs" / "synthetic_video.avi")[:count]
    assert len(frames) == count, f"the video has fewer than {count} frames"
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:04d}.png"), frame)
    return folder


CKPT_CACHE = Path(os.environ.get("POSE3D_RT_TEST_CACHE", REPO / ".cache" / "tests"))

HAS_TORCH = importlib.util.find_spec("torch") is not None and importlib.util.find_spec("onnx") is not None

requires_torch = pytest.mark.skipif(not HAS_TORCH, reason="needs the [export] extra (torch, onnx)")

MODELS = (
    "rtmdet_m_person",
    "rtmdet_nano_person",
    "rtmpose_m_body8_256x192",
    "rtmpose_t_body8_256x192",
    "videopose3d_243f_supv_cpn_ft",
    "videopose3d_27f_supv",
)
#: Rebuilt by ``checkpoints`` too, but kept out of ``MODELS`` (the per-model tests and ``onnx_models``): MotionBERT
#: (170 MB, a few seconds to export) is exported only by the tests that use it.
MOTIONBERT = "motionbert_dstformer_243f_ft_h36m"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


def _read(path: Path) -> str:
    return path.read_text() if path.is_file() else ""


def _recipe_digest(model: str) -> str:
    """sha256 of everything a checkpoint is rebuilt from (the script and the model's weights/ files)."""
    import hashlib

    h = hashlib.sha256()
    for p in (FIXTURES / "build_checkpoint.py", *sorted((FIXTURES / "weights").glob(f"{model}.*"))):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="session")
def checkpoints() -> dict:
    """``{model name: Path to .pth}`` rebuilt bit-exactly from the fixture recipe (needs torch)."""
    if not HAS_TORCH:
        pytest.skip("needs the [export] extra (torch, onnx) to rebuild the checkpoints")
    out = CKPT_CACHE / "checkpoints"
    missing = [m for m in (*MODELS, MOTIONBERT) if not (out / f"{m}.pth").is_file()
               or _read(out / f"{m}.recipe-sha256") != _recipe_digest(m)]
    if missing:
        out.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, str(FIXTURES / "build_checkpoint.py"), *missing, "--out", str(out)],
            check=True,
            cwd=str(FIXTURES),
        )
        for m in missing:  # stamp: a refreshed fixture recipe rebuilds the cached checkpoint
            (out / f"{m}.recipe-sha256").write_text(_recipe_digest(m))
    return {m: out / f"{m}.pth" for m in (*MODELS, MOTIONBERT)}



@pytest.fixture(scope="session")
def onnx_models(checkpoints, tmp_path_factory) -> dict:
    """``{model name: Path to .onnx}``: the rebuilt checkpoints exported once per session with ``export_onnx``'s
    default options (the strided form for the lifters, as the pipeline uses)."""
    from pose3d_rt.export import export_onnx

    out = tmp_path_factory.mktemp("onnx")
    return {name: Path(export_onnx(checkpoints[name], out / f"{name}.onnx")) for name in MODELS}
