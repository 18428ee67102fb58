"""The hardware a timing was measured on, named next to every timing: the CPU model and the instruction-set
features that decide how fast CPU kernels run (an int8 kernel can beat float32 on one Xeon and lose on the
next: AVX-512 VNNI and AMX change which path torch takes), the core and thread counts, and an accelerator's
name, memory, compute capability, CUDA and driver versions."""

from __future__ import annotations

import os
import platform
from pathlib import Path

# What torch's CPU kernels dispatch on, in /proc/cpuinfo's spelling
FEATURES = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16")


def cpuinfo() -> tuple[str, set[str]]:
    """(model name, flags) from /proc/cpuinfo; elsewhere the platform's processor name and no flags."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    return name, flags


def native_bfloat16() -> bool:
    """Does the CPU multiply bfloat16 natively (AVX-512 BF16 or AMX)? Without it torch emulates bfloat16, slower
    than float32; with it, a bfloat16 matmul ran 2.2-2.5x float32's rate on the README's machine."""
    return bool({"avx512_bf16", "amx_bf16"} & cpuinfo()[1])


def describe(device=None) -> dict:
    """The machine as the report records it (``device``: the torch device the engine ran on)."""
    import torch

    name, flags = cpuinfo()
    out = {"cpu": name, "cpu_features": [f for f in FEATURES if f in flags],
           "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cores": os.cpu_count(),
           "torch_threads": torch.get_num_threads(), "gpu": None}
    if device is not None and getattr(device, "type", None) == "cuda":
        props = torch.cuda.get_device_properties(device)
        out["gpu"] = {"name": props.name, "memory_bytes": int(props.total_memory),
                      "capability": f"{props.major}.{props.minor}", "cuda": torch.version.cuda, "driver": driver()}
    return out


def driver() -> str | None:
    """The NVIDIA driver version, where nvidia-ml-py is installed (the `energy` extra)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        version = pynvml.nvmlSystemGetDriverVersion()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception:  # no NVML, no driver: unknown, not an error
        return None


def label(info: dict) -> str:
    """One line for a report: the GPU, or the CPU with its features and threads."""
    if info.get("gpu"):
        gpu = info["gpu"]
        return f"{gpu['name']} (CUDA {gpu['cuda']}, driver {gpu['driver'] or 'unknown'})"
    features = ", ".join(info["cpu_features"]) or "no AVX2"
    return f"{info['cpu']} ({features}; {info['torch_threads']} threads)"
