"""Compression recipes stored beside a model (``audit_compression.json``) and the part of a recipe that is
applied at load time rather than stored in the weights (torchao quantization).

Quantized weights are torchao tensor subclasses, which safetensors cannot hold, so a quantized model is
stored as its base weights plus the recipe and quantized again on load (deterministic for the same
weights). Both `audit.models` (loading) and `audit.compress` (writing) use this module, so neither
imports the other.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from audit.errors import ModelError

RECIPE_FILE = "audit_compression.json"
QUANTIZER = "torchao"
# method -> (what it does, torchao config, does a text's result depend on its batch-mates?)
QUANTIZED = {
    "int8": ("int8 weights per output channel and int8 activations quantized per token at run time "
             "(torchao Int8DynamicActivationInt8WeightConfig)", True),
    "int8-weight": ("int8 weights per output channel, float activations (torchao Int8WeightOnlyConfig)", False),
    "int4-weight": ("int4 weights in groups of 32, float activations (torchao IntxWeightOnlyConfig, int4 per "
                    "group; the int4 formats of Int4WeightOnlyConfig need a GPU)", False),
}
LAYERS = "every nn.Linear, except a causal LM's output head (tied to its input embeddings in small LMs)"
METHODS = (*QUANTIZED, "fp16", "bf16", "prune")


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
    if recipe["method"] in QUANTIZED and recipe.get("quantizer") != QUANTIZER:
        raise ModelError("written by an older audit (torch.ao dynamic int8, now replaced by torchao)", str(path),
                         "re-run audit compress on the base model")
    return recipe


def check_lineage(recipe: dict, hashes: dict[str, str], directory: Path) -> None:
    """A compressed directory holds exactly the files `audit compress` wrote (their sha256s are in the recipe);
    otherwise the recipe's base and method describe some other model, and the report would vouch for them."""
    where = str(Path(directory) / RECIPE_FILE)
    written = recipe.get("files")
    if not isinstance(written, dict):
        raise ModelError("the recipe records no sha256 of the files it came with (an older audit wrote it)", where,
                         "re-run audit compress on the base model")
    present = {name: digest for name, digest in hashes.items() if name != RECIPE_FILE}
    changed = sorted(n for n in set(written) | set(present) if written.get(n) != present.get(n))
    if changed:
        name = changed[0]
        what = "is missing" if name not in present else "was added" if name not in written else "has changed"
        raise ModelError(f"{name} {what} since audit compress wrote this directory ({len(changed)} file(s) differ), so "
                         f"the recipe's base and method ({recipe['method']}) do not describe these weights", where,
                         "re-run audit compress on the base model, or delete the recipe to audit the files as they are")


def silence_backends() -> None:
    """torchao warns on import that its GPU-only kernels do not load on a CPU machine, and torch that torchao
    registers enums the old way (transformers imports torchao whenever it is installed); bitsandbytes' LLM.int8
    warns on every call that it casts float32 inputs to float16."""
    for name in ("torchao", "torch.utils._pytree", "bitsandbytes"):
        logging.getLogger(name).setLevel(logging.ERROR)


def torchao_config(method: str):
    """The torchao config of a quantization method."""
    silence_backends()
    import torch
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig, IntxWeightOnlyConfig
    from torchao.quantization.granularity import PerGroup

    return {"int8": Int8DynamicActivationInt8WeightConfig, "int8-weight": Int8WeightOnlyConfig,
            "int4-weight": lambda: IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(32))}[method]()


def apply(module, recipe: dict):
    """Rebuild what the weights do not hold: torchao quantization of the Linear layers (see LAYERS)."""
    if recipe.get("method") not in QUANTIZED:
        return module
    import torch
    from torchao.quantization import quantize_

    config = torchao_config(recipe["method"])
    head = module.get_output_embeddings() if getattr(module.config, "is_decoder", False) or \
        type(module).__name__.endswith("ForCausalLM") else None
    quantize_(module, config, filter_fn=lambda m, fqn: isinstance(m, torch.nn.Linear) and m is not head)
    return module
