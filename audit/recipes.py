"""Compression recipes stored beside a model (``audit_compression.json``) and the part of a recipe
that is applied at load time rather than stored in the weights (dynamic int8 quantization).

Both `audit.models` (loading) and `audit.compress` (writing) use this module, so neither imports the other.
"""

from __future__ import annotations

import json
from pathlib import Path

from audit.errors import ModelError

RECIPE_FILE = "audit_compression.json"
METHODS = ("int8", "fp16", "bf16", "prune")


def read_recipe(directory: Path) -> dict | None:
    """The recipe of a directory written by `audit compress`, or None for an ordinary model directory."""
    path = Path(directory) / RECIPE_FILE
    if not path.is_file():
        return None
    try:
        recipe = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"not valid JSON ({exc})", str(path), "re-run audit compress") from None
    if not isinstance(recipe, dict) or recipe.get("method") not in METHODS:
        raise ModelError(f"not a compression recipe (method must be one of {', '.join(METHODS)})", str(path),
                         "re-run audit compress")
    return recipe


def apply(module, recipe: dict):
    """Rebuild what the weights do not hold: dynamic int8 quantization of every nn.Linear."""
    if recipe.get("method") != "int8":
        return module
    import warnings

    import torch
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # torch deprecates the eager API in favour of torchao; it still works
        warnings.simplefilter("ignore")
        return quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8)
