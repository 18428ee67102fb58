"""Reproducibility manifest: command, seed, versions, device, and hashes of everything read."""

from __future__ import annotations

import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from audit.files import sha256_file

PACKAGES = ("audit", "torch", "transformers", "tokenizers", "numpy", "scikit-learn", "scipy", "datasets",
            "datasketch", "numba", "safetensors", "rapidfuzz", "textattack")


def package_versions() -> dict[str, str | None]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_info(device) -> dict:
    """The torch device the engine ran on and the machine (audit/hardware.py): what every timing depends on."""
    from audit import hardware

    if device is None:  # a run without a model (audit contamination)
        name, _ = hardware.cpuinfo()
        return {"type": "none", "cpu": name}
    info = hardware.describe(device)
    return {"type": device.type, "torch_threads": info["torch_threads"], "cpu": info["cpu"],
            **({"name": info["gpu"]["name"]} if info["gpu"] else {}), "hardware": info}


def file_hashes(paths) -> dict[str, str]:
    return {str(p): sha256_file(Path(p)) for p in paths if not str(p).startswith("hf:")}


def model_entry(loaded) -> dict:
    """Where a model came from and the sha256 of each of its files (what `audit verify` re-checks)."""
    return {"path": loaded.source, "directory": str(loaded.directory), "fingerprint": loaded.fingerprint,
            "files": dict(loaded.hashes)}


def build(*, argv: list[str], request: dict, seed: int, device, suite, data_paths, engine_config: dict | None,
          models: dict) -> dict:
    return {
        "command": argv,
        "request": request,
        "seed": seed,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "device": device_info(device),
        "engine": engine_config,
        "suite": {"path": str(suite.path), "sha256": suite.sha256(), "files": file_hashes(suite.files)},
        "data": file_hashes(data_paths),
        "models": models,
    }
