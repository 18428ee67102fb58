"""Real compressed variants of a model (classifier or causal LM): torchao int8/int4, half precision, pruning.

torchao's quantized weights are tensor subclasses that safetensors cannot hold, so a quantized model
is stored as the base safetensors plus a recipe file and quantized again on load (audit/recipes.py);
quantization of the same weights is deterministic, so the rebuilt model is the same. A GGUF base is
written as the float32 weights transformers de-quantized it to.
"""

from __future__ import annotations

import json
from pathlib import Path

from audit.errors import AuditError, ModelError
from audit.files import check_out_dir, new_directory
from audit.models import LoadedModel, ModelSource, file_hashes, inspect_model, model_files
from audit.quantized import DEQUANTIZED
from audit.recipes import LAYERS, QUANTIZED, QUANTIZER, RECIPE_FILE

METHODS = (*QUANTIZED, "fp16", "bf16", "prune:<fraction>")


def parse_method(method: str) -> dict:
    """``int8`` | ``int8-weight`` | ``int4-weight`` | ``fp16`` | ``bf16`` | ``prune:0.5`` -> recipe dict."""
    if method in QUANTIZED:
        scheme, batch_dependent = QUANTIZED[method]
        return {"method": method, "quantizer": QUANTIZER, "scheme": f"{scheme}; layers: {LAYERS}",
                "batch_dependent": batch_dependent}
    if method in ("fp16", "bf16"):
        return {"method": method, "dtype": {"fp16": "float16", "bf16": "bfloat16"}[method]}
    if method.startswith("prune:"):
        try:
            amount = float(method.split(":", 1)[1])
        except ValueError:
            amount = -1.0
        if not 0.0 < amount < 1.0:
            raise AuditError(f"pruning fraction must be between 0 and 1, got '{method}'", "--method", "e.g. prune:0.5")
        return {"method": "prune", "amount": amount,
                "scheme": "global L1 magnitude over the nn.Linear weights of the base model (not a causal LM's head)"}
    raise AuditError(f"unknown compression method '{method}'", "--method", f"use one of: {', '.join(METHODS)}")


def savable(module):
    """transformers refuses to save a GGUF-loaded model (it carries a quantization config); the same weights
    in a fresh model built from its config save normally."""
    config = module.config
    if getattr(config, "quantization_config", None) is None:
        return module
    from transformers import AutoModelForCausalLM

    config = type(config).from_dict({k: v for k, v in config.to_dict().items() if k != "quantization_config"})
    fresh = AutoModelForCausalLM.from_config(config, dtype=next(module.parameters()).dtype)
    fresh.load_state_dict(module.state_dict())
    return fresh.eval()


def _prune(module, amount: float) -> float:
    import torch
    from torch.nn.utils import prune

    base = getattr(module, module.base_model_prefix, module)
    params = [(m, "weight") for m in base.modules() if isinstance(m, torch.nn.Linear)]  # heads are outside base
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)
    for m, name in params:
        prune.remove(m, name)
    zeros = sum(int((m.weight == 0).sum()) for m, _ in params)
    return zeros / sum(m.weight.numel() for m, _ in params)


def built(directory: Path) -> bool:
    """Does ``directory`` hold a compressed model that loads as `audit compress` wrote it (a cache of builds
    rebuilds one that an older audit wrote, or whose files changed)?"""
    try:
        return (directory / "config.json").is_file() and inspect_model(str(directory)).recipe is not None
    except ModelError:
        return False


def check_compress_out(out: Path, model: "LoadedModel | ModelSource", overwrite: bool) -> None:
    """``out`` may be written (replaced whole with ``overwrite``) without touching the model's own files."""
    check_out_dir(out, {"model": model.directory / model.gguf if model.gguf else model.directory}, replaces=True)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise AuditError("output directory exists and is not empty", str(out), "choose a new --out or pass --overwrite")


def compress(model: LoadedModel, method: str, out: Path, overwrite: bool = False) -> dict:
    """Write the compressed variant of ``model`` to ``out`` (atomically) and return its recipe, which records
    the sha256 of every file written, so that a later load can tell the directory is still what was written."""
    import torch

    recipe = parse_method(method)
    if model.compression and model.compression.get("runs") != DEQUANTIZED:  # a GGUF file loads as float weights
        raise AuditError(f"the model is already compressed ({model.compression['method']})", model.source,
                         "compress the uncompressed base model instead")
    check_compress_out(out, model, overwrite)
    module = savable(model.module)
    if recipe["method"] == "prune":
        recipe["measured_sparsity"] = _prune(module, recipe["amount"])
    elif "dtype" in recipe:
        module = module.to(getattr(torch, recipe["dtype"]))
    recipe.update(base=model.describe(), torch_version=torch.__version__)
    with new_directory(out) as tmp:
        module.save_pretrained(tmp)
        model.tokenizer.save_pretrained(tmp)
        recipe["files"] = file_hashes(model_files(tmp))
        (tmp / RECIPE_FILE).write_text(json.dumps(recipe, indent=2) + "\n")
    return recipe
