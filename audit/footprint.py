"""What a model costs to hold: parameters, non-zeros, bytes by dtype in memory and on disk.

Dynamically quantized Linear layers keep their int8 weights in packed params that
``module.parameters()`` does not list, so weights are read from the state dict instead.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

WEIGHT_FILES = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.ckpt")


def weight_tensors(module):
    """Every floating-point or quantized weight tensor of ``module`` (packed int8 weights included,
    scalar quantization scales left out)."""
    for value in module.state_dict().values():
        for t in value if isinstance(value, tuple) else (value,):
            if hasattr(t, "dtype") and t.dim() and (t.is_floating_point() or t.is_quantized):  # 0-d: quant scales
                yield t


def count_parameters(module) -> dict:
    """Parameter count, non-zero count and in-memory bytes by dtype."""
    total = nonzero = 0
    by_dtype: Counter = Counter()
    for t in weight_tensors(module):
        total += t.numel()
        nonzero += int((t.dequantize() if t.is_quantized else t).count_nonzero())
        by_dtype[str(t.dtype).replace("torch.", "")] += t.numel() * t.element_size()
    return {"params": total, "nonzero_params": nonzero, "weight_bytes": sum(by_dtype.values()),
            "weight_bytes_by_dtype": dict(by_dtype)}


def disk_bytes(directory: Path) -> int:
    """Bytes of the weight files in a model directory (a compressed directory holds a recipe over base weights)."""
    return sum(p.stat().st_size for pattern in WEIGHT_FILES for p in Path(directory).glob(pattern) if p.is_file())
