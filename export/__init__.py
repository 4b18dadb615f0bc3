"""PyTorch side of pose3d-rt: official checkpoints -> nn.Module -> ONNX -> TensorRT. The only place torch is used."""
from .onnx_export import export_onnx

__all__ = ["export_onnx"]
