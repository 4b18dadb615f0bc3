"""Run a checkpoint's PyTorch module behind the runtime's Engine interface (reference and debugging backend).

``TorchEngine.from_checkpoint(path)`` builds exactly the module that ``export_onnx`` would export (same inputs,
outputs and metadata), so the torch-free runtime can be driven by PyTorch's own kernels. Used to separate logic
from floating-point differences between backends in parity tests.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Mapping, Optional, Union

import numpy as np
import torch

from ..engines.base import Engine, TensorSpec
from .checkpoint import detect_family, file_sha256, load_checkpoint
from .onnx_export import _build


class TorchEngine(Engine):
    def __init__(self, module: torch.nn.Module, path: str, in_name: str, example: torch.Tensor,
                 out_names, metadata: Dict[str, str]) -> None:
        with torch.no_grad():
            outs = module(example)
        outs = outs if isinstance(outs, (tuple, list)) else (outs,)
        dyn_in = (None,) + tuple(example.shape[1:])
        time_dynamic = metadata.get("form") in ("dilated", "seq2seq")  # any T (seq2seq: up to the window)
        if time_dynamic:
            dyn_in = (None, None) + tuple(example.shape[2:])
        lead = (None, None) if metadata.get("form") == "seq2seq" else (None,)
        super().__init__(
            path=path,
            inputs=(TensorSpec(in_name, dyn_in, np.dtype(np.float32)),),
            outputs=tuple(TensorSpec(n, lead + tuple(o.shape[len(lead):]), np.dtype(np.float32))
                          for n, o in zip(out_names, outs)),
            metadata=dict(metadata),
        )
        self.module = module.eval()

    @classmethod
    def from_checkpoint(cls, checkpoint: Union[str, Path], arch: Optional[str] = None,
                        form: Optional[str] = None) -> TorchEngine:
        src = Path(checkpoint)
        sd, _ = load_checkpoint(src)
        family = detect_family(sd)
        module, in_name, example, out_names, meta = _build(family, sd, arch, form, src)
        meta["source_sha256"] = file_sha256(src)
        return cls(module, str(src), in_name, example, out_names, meta)

    def run(self, inputs: Union[np.ndarray, Mapping[str, np.ndarray]]) -> Dict[str, np.ndarray]:
        x = inputs if isinstance(inputs, np.ndarray) else inputs[self.inputs[0].name]
        with torch.no_grad():
            outs = self.module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        outs = outs if isinstance(outs, (tuple, list)) else (outs,)
        return {spec.name: o.numpy() for spec, o in zip(self.outputs, outs)}
