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
    """Zero the ``amount`` share of the base model's Linear weights with the smallest magnitude, over all of them
    at once (global L1 unstructured pruning), in place. torch.nn.utils.prune.global_unstructured does the same
    through a top-k over every weight with its indices and a mask per layer: measured on SmolLM2-135M, a 5.6 GB
    peak for 0.5 GB of weights. Here the threshold is found layer by layer (``kth_magnitude``), with no copy of
    the weights. Of the weights at exactly the threshold, the first ones in layer order are zeroed, so exactly
    round(amount x n) are."""
    import torch

    base = getattr(module, module.base_model_prefix, module)
    weights = [m.weight.data for m in base.modules() if isinstance(m, torch.nn.Linear)]  # heads are outside base
    total = sum(w.numel() for w in weights)
    k = round(amount * total)
    if k:
        threshold = kth_magnitude(weights, k)
        ties = k - sum(int((w.abs() < threshold).sum()) for w in weights)  # how many at the threshold go too
        with torch.no_grad():
            for w in weights:
                magnitude = w.abs()
                at = magnitude == threshold
                first = at.flatten().cumsum(0).reshape(at.shape) <= ties  # the first `ties` of them, in order
                ties -= int((at & first).sum())
                w[(magnitude < threshold) | (at & first)] = 0
    return sum(int((w == 0).sum()) for w in weights) / total


def kth_magnitude(weights, k: int) -> float:
    """The k-th smallest |w| over all the tensors (k from 1), by radix selection on the bits of the float32
    magnitudes (a non-negative float's bits order like the float): count the magnitudes by their top 16 bits,
    then, within the bucket that holds the k-th, by their low 16 bits. Two passes over the weights, each layer's
    counts at a time."""
    import torch

    def bits(w):
        return w.detach().abs().float().flatten().view(torch.int32)

    high = sum(torch.bincount(bits(w) >> 16, minlength=1 << 16) for w in weights)
    bucket = int(torch.searchsorted(high.cumsum(0), k))  # the first bucket whose running count reaches k
    below = int(high[:bucket].sum())
    low = sum(torch.bincount(b[(b >> 16) == bucket] & 0xFFFF, minlength=1 << 16) for b in map(bits, weights))
    offset = int(torch.searchsorted(low.cumsum(0), k - below))
    return float(torch.tensor([(bucket << 16) | offset], dtype=torch.int32).view(torch.float32))


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
