"""What a model costs to hold: parameters, non-zeros, bytes by dtype in memory and on disk.

Weights are read from the state dict. A torchao-quantized weight is a tensor subclass whose bytes are
those of the tensors it holds (int8 data, scales, zero points), not of its logical dtype.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf")


def weight_tensors(module):
    """Every floating-point or torchao-quantized weight tensor of ``module`` (integer buffers such as
    position ids left out)."""
    for t in module.state_dict().values():
        if t.dim() and t.is_floating_point():  # a torchao subclass reports its logical (float) dtype
            yield t


def stored(t) -> list:
    """The tensors that hold ``t`` in memory: a torchao tensor subclass's data, scales and zero points, or ``t``."""
    names = list(getattr(t, "tensor_data_names", ())) + [n for n in getattr(t, "optional_tensor_data_names", ())
                                                         if getattr(t, n, None) is not None]
    return [getattr(t, n) for n in names] if names else [t]


def count_parameters(module) -> dict:
    """Parameter count, non-zero count and in-memory bytes by dtype."""
    total = nonzero = 0
    by_dtype: Counter = Counter()
    for t in weight_tensors(module):
        total += t.numel()
        nonzero += int((t.dequantize() if hasattr(t, "tensor_data_names") else t).count_nonzero())
        for part in stored(t):
            by_dtype[str(part.dtype).replace("torch.", "")] += part.numel() * part.element_size()
    return {"params": total, "nonzero_params": nonzero, "weight_bytes": sum(by_dtype.values()),
            "weight_bytes_by_dtype": dict(by_dtype)}


def disk_bytes(files) -> int:
    """Bytes of a model's weight files (a compressed directory holds a recipe over base weights; a GGUF file
    holds quantized weights)."""
    return sum(Path(p).stat().st_size for p in files if Path(p).suffix in WEIGHT_SUFFIXES)
