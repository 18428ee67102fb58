"""Real compressed variants of a classifier: dynamic int8, half precision, global magnitude pruning.

A dynamically quantized model cannot go through ``save_pretrained`` (its packed weights have
no ``data_ptr``), so int8 is stored as the base safetensors plus a recipe file and rebuilt on
load (audit/recipes.py); quantization of the same weights is deterministic, so the rebuilt model
is the same.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from audit.errors import AuditError
from audit.models import LoadedModel
from audit.recipes import RECIPE_FILE

METHODS = ("int8", "fp16", "bf16", "prune:<fraction>")


def parse_method(method: str) -> dict:
    """``int8`` | ``fp16`` | ``bf16`` | ``prune:0.5`` -> recipe dict."""
    if method == "int8":
        return {"method": "int8", "scheme": "dynamic per-tensor qint8 on every nn.Linear", "cpu_only": True}
    if method in ("fp16", "bf16"):
        return {"method": method, "dtype": {"fp16": "float16", "bf16": "bfloat16"}[method]}
    if method.startswith("prune:"):
        try:
            amount = float(method.split(":", 1)[1])
        except ValueError:
            amount = -1.0
        if not 0.0 < amount < 1.0:
            raise AuditError(f"pruning fraction must be between 0 and 1, got '{method}'", "--method", "e.g. prune:0.5")
        return {"method": "prune", "amount": amount, "scheme": "global L1 magnitude over encoder nn.Linear weights"}
    raise AuditError(f"unknown compression method '{method}'", "--method", f"use one of: {', '.join(METHODS)}")


def _prune(module, amount: float) -> float:
    import torch
    from torch.nn.utils import prune

    base = getattr(module, module.base_model_prefix, module)
    params = [(m, "weight") for m in base.modules() if isinstance(m, torch.nn.Linear)]
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)
    for m, name in params:
        prune.remove(m, name)
    zeros = sum(int((m.weight == 0).sum()) for m, _ in params)
    return zeros / sum(m.weight.numel() for m, _ in params)


def compress(model: LoadedModel, method: str, out: Path, overwrite: bool = False) -> dict:
    """Write the compressed variant of ``model`` to ``out`` (atomically) and return its recipe."""
    import torch

    recipe = parse_method(method)
    if model.compression:
        raise AuditError(f"the model is already compressed ({model.compression['method']})", model.source,
                         "compress the uncompressed base model instead")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise AuditError("output directory exists and is not empty", str(out), "choose a new --out or pass --overwrite")
    module = model.module
    if recipe["method"] == "prune":
        recipe["measured_sparsity"] = _prune(module, recipe["amount"])
    elif "dtype" in recipe:
        module = module.to(getattr(torch, recipe["dtype"]))
    recipe.update(base=model.describe(), torch_version=torch.__version__)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".compress-", dir=out.parent))
    try:
        module.save_pretrained(tmp)
        model.tokenizer.save_pretrained(tmp)
        (tmp / RECIPE_FILE).write_text(json.dumps(recipe, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return recipe
