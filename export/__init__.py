"""PyTorch side of pose3d-rt: official checkpoints -> nn.Module -> ONNX -> TensorRT. The only place torch is used.

:func:`export_onnx` is imported on first access (PEP 562), so torch-free tools of this package
(:mod:`pose3d_rt.export.quantize`: onnxruntime + onnx only) import without torch.
"""
from typing import Any

__all__ = ["export_onnx"]


def __getattr__(name: str) -> Any:
    if name == "export_onnx":
        from .onnx_export import export_onnx  # imports torch

        return export_onnx
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
