"""``load_engine(path, device, threads)``: pick the backend from the file suffix."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

from .base import Engine
from .errors import ModelError

ONNX_SUFFIXES = (".onnx",)
TRT_SUFFIXES = (".engine", ".plan", ".trt")
ENGINE_SUFFIXES = ONNX_SUFFIXES + TRT_SUFFIXES
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt")


def load_engine(path: Union[str, Path], device: str = "cpu", threads: Optional[int] = None,
                **options: Any) -> Engine:
    """Open a network file on a backend chosen by its suffix.

    - ``.onnx`` -> :class:`~pose3d_rt.engines.onnxruntime.OrtEngine` on ``device`` (``cpu``, ``cuda[:N]``,
      ``tensorrt[:N]``), ``threads`` = intra-op threads; ``options``: ``fp16``, ``trt_cache_dir``,
      ``trt_workspace_bytes``, ``inter_op_threads``, ``log_severity``, ``spin``; on ``device="openvino[:DEVICE]"``
      -> :class:`~pose3d_rt.engines.openvino.OpenVinoEngine` (extra ``[openvino]``); option ``precision``
      (``f32`` default, ``bf16``, ``f16``).
    - ``.engine`` / ``.plan`` / ``.trt`` -> :class:`~pose3d_rt.engines.tensorrt.TrtEngine` (a pose3d-rt engine
      file built by ``pose3d-rt build-engine``) on GPU ``N`` of ``device``; ``options``: ``strict_gpu_name``,
      ``log_level``.

    Raises :class:`ModelError` for an unknown suffix, a checkpoint (``.pth``: convert it first) or a bad file,
    :class:`BackendUnavailableError` when the device's backend is not installed.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in ONNX_SUFFIXES and str(device or "").strip().lower().startswith("openvino"):
        from .openvino import OpenVinoEngine

        return OpenVinoEngine.load(p, device=device, threads=threads, **options)
    if suffix in ONNX_SUFFIXES:
        from .onnxruntime import OrtEngine

        return OrtEngine.load(p, device=device, threads=threads, **options)
    if suffix in TRT_SUFFIXES:
        from .tensorrt import TrtEngine

        return TrtEngine.load(p, device=device, threads=threads, **options)
    if suffix in CHECKPOINT_SUFFIXES:
        raise ModelError(
            f"{p}: a training checkpoint, not a network file; convert it with `pose3d-rt export {p.name} -o "
            f"MODEL.onnx` (the pipeline also accepts .pth directly and converts it on first use)"
        )
    raise ModelError(
        f"{p}: unknown model file type {suffix or '(no suffix)'!r}; expected one of {', '.join(ENGINE_SUFFIXES)}"
    )
