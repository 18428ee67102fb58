"""What a model costs to hold: parameters, non-zeros, bytes by dtype in memory and on disk.

A quantized weight is counted by what holds it, not by its logical dtype: a torchao tensor subclass by the
tensors it wraps (int8 data, scales, zero points); a bitsandbytes 4-bit weight by its packed bytes (two
weights a byte) and its quantization state (block scales, code book); a bitsandbytes 8-bit weight by its int8
values and row scales. Its parameter count is that of the weight it stands for.
"""

from __future__ import annotations

from collections import Counter
from itertools import chain
from pathlib import Path

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf")


def weights(module):
    """(logical parameter count, tensors that hold it, a function giving its float values) for every weight of
    ``module``: floating-point parameters and buffers, and quantized weights (integer buffers such as position
    ids left out); a quantization scale is held memory but no parameter (count 0, no values). A tensor shared by two modules (tied input and output embeddings) counts once."""
    import torch

    seen = set()
    for sub in module.modules():
        scheme = getattr(sub, "quantization_scheme", None)  # compressed-tensors: its scales sit beside the weight
        for name, t in chain(sub.named_parameters(recurse=False), sub.named_buffers(recurse=False)):
            if not t.dim() or id(t) in seen:
                continue
            seen.add(id(t))
            state = getattr(t, "quant_state", None)
            if scheme is not None and name not in ("weight", "bias"):  # scales, zero points: memory, no parameters
                yield 0, [t], None
                continue
            if state is not None:  # bitsandbytes 4-bit
                yield state.shape.numel(), [t, *_state_tensors(state)], lambda t=t, s=state: _dequantize_4bit(t, s)
            elif hasattr(t, "SCB") and t.dtype == torch.int8:  # bitsandbytes 8-bit (LLM.int8): int8 rows, row scales
                scale = t.SCB if t.SCB is not None else sub.state.SCB  # its first forward moves them to the module
                yield t.numel(), [t, scale], lambda t=t, scale=scale: t.float() * scale[:, None] / 127
            elif t.is_floating_point():  # a torchao subclass reports its logical (float) dtype
                yield t.numel(), stored(t), (lambda t=t: t.dequantize()) if hasattr(t, "tensor_data_names") else (
                    lambda t=t: t)


def _state_tensors(state) -> list:
    """The tensors of a bitsandbytes 4-bit quantization state, a nested (double-quantized) one's too."""
    out = [x for x in (state.absmax, state.code) if x is not None]
    return out + (_state_tensors(state.state2) + [state.offset] if getattr(state, "nested", False) else [])


def _dequantize_4bit(t, state):
    from bitsandbytes.functional import dequantize_4bit

    return dequantize_4bit(t, state)


def stored(t) -> list:
    """The tensors that hold ``t`` in memory: a torchao tensor subclass's data, scales and zero points, or ``t``."""
    names = list(getattr(t, "tensor_data_names", ())) + [n for n in getattr(t, "optional_tensor_data_names", ())
                                                         if getattr(t, n, None) is not None]
    return [getattr(t, n) for n in names] if names else [t]


def count_parameters(module) -> dict:
    """Parameter count, non-zero count and in-memory bytes by dtype."""
    total = nonzero = 0
    by_dtype: Counter = Counter()
    for n, parts, values in weights(module):
        total += n
        nonzero += int(values().count_nonzero()) if values is not None else 0
        for part in parts:
            by_dtype[str(part.dtype).replace("torch.", "")] += part.numel() * part.element_size()
    return {"params": total, "nonzero_params": nonzero, "weight_bytes": sum(by_dtype.values()),
            "weight_bytes_by_dtype": dict(by_dtype)}


def disk_bytes(files) -> int:
    """Bytes of a model's weight files (a compressed directory holds a recipe over base weights; a GGUF file
    holds quantized weights)."""
    return sum(Path(p).stat().st_size for p in files if Path(p).suffix in WEIGHT_SUFFIXES)
