"""Checkpoints compressed by other tools: what they are, read from the checkpoint before anything loads it.

A Hugging Face checkpoint says how it was quantized in config.json's ``quantization_config`` (its
``quant_method`` names the tool); a GGUF file says it per tensor (its tensor types). Each format is one
``Format`` in ``FORMATS``: the backend package transformers needs to load it, how it runs here (packed, or
de-quantized to float when it loads), and a reader of its config into what the report shows: method, bits,
group size, what stays in full precision. A missing backend is bad input naming the package, found before
any model loads. Adding a format is one entry here.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from audit.errors import ModelError

PACKED, DEQUANTIZED = "packed", "de-quantized"


@dataclass(frozen=True)
class Format:
    tool: str  # what wrote the checkpoint
    package: str | None  # the import name transformers needs to load it (None: transformers alone)
    install: str  # how to install that package
    runs: str  # PACKED: the weights stay quantized in memory; DEQUANTIZED: float values once loaded
    read: Callable[[dict], dict]  # quantization_config -> method, bits, group size, full precision, ...
    note: str = ""  # what a user should know about running it here


def _bitsandbytes(qc: dict) -> dict:
    four = bool(qc.get("load_in_4bit") or qc.get("_load_in_4bit"))
    if four:
        kind = qc.get("bnb_4bit_quant_type", "fp4")
        return {"method": f"bitsandbytes {kind}", "bits": 4, "group_size": 64, "scheme": kind,
                "double_quant": bool(qc.get("bnb_4bit_use_double_quant")),
                "compute_dtype": str(qc.get("bnb_4bit_compute_dtype") or "float32"),
                "full_precision_config": qc.get("llm_int8_skip_modules"), "batch_dependent": False}
    threshold = float(qc.get("llm_int8_threshold", 6.0))
    # LLM.int8: activation columns with an outlier above the threshold anywhere in the batch run in 16 bits,
    # so a row's result depends on its batch-mates
    return {"method": "bitsandbytes LLM.int8", "bits": 8, "group_size": None, "scheme": "int8 rows, outliers in fp16",
            "outlier_threshold": threshold, "full_precision_config": qc.get("llm_int8_skip_modules"),
            "batch_dependent": threshold > 0}


def _compressed_tensors(qc: dict) -> dict:
    groups = []
    for name, group in (qc.get("config_groups") or {}).items():
        w, a = group.get("weights") or {}, group.get("input_activations") or {}
        groups.append({"group": name, "targets": group.get("targets"), "format": group.get("format") or qc.get("format"),
                       "weight_bits": w.get("num_bits"), "weight_type": w.get("type"), "strategy": w.get("strategy"),
                       "group_size": w.get("group_size"), "symmetric": w.get("symmetric"),
                       "activation_bits": a.get("num_bits"), "activation_dynamic": a.get("dynamic"),
                       "activation_strategy": a.get("strategy")})
    weighted = [g for g in groups if g["weight_bits"]]
    scheme = " + ".join(sorted({f"W{g['weight_bits']}A{g['activation_bits'] or 16}" for g in weighted})) or "none"
    bits = sorted({g["weight_bits"] for g in weighted})
    sizes = sorted({g["group_size"] for g in weighted if g["group_size"]})
    return {"method": f"compressed-tensors {scheme}", "bits": bits[0] if len(bits) == 1 else bits,
            "group_size": sizes[0] if len(sizes) == 1 else (sizes or None), "scheme": scheme, "format": qc.get("format"),
            "groups": groups, "full_precision_config": qc.get("ignore"),
            # a dynamic per-tensor activation scale is taken over the whole batch: a row's result depends on the others
            "batch_dependent": any(g["activation_dynamic"] and g["activation_strategy"] == "tensor" for g in groups)}


def _torchao(qc: dict) -> dict:
    kind = qc.get("quant_type")
    config = kind.get("default", kind) if isinstance(kind, dict) else {"_type": kind}
    name = config.get("_type", str(kind))
    data = config.get("_data") or {}
    bits = 4 if "Int4" in name or "int4" in str(data.get("weight_dtype", "")) else 8 if "Int8" in name else None
    return {"method": f"torchao {name}", "bits": bits, "group_size": data.get("group_size"), "scheme": name,
            "full_precision_config": qc.get("modules_to_not_convert"),
            "batch_dependent": "DynamicActivation" in name}  # as audit compress int8 measured (audit/engine.py)


def _gptq(qc: dict) -> dict:
    return {"method": f"gptq {qc.get('bits')}-bit", "bits": qc.get("bits"), "group_size": qc.get("group_size"),
            "scheme": "act-order" if qc.get("desc_act") else "gptq", "full_precision_config": qc.get("modules_to_not_convert"),
            "batch_dependent": False}


def _awq(qc: dict) -> dict:
    bits = qc.get("bits", qc.get("w_bit"))
    return {"method": f"awq {bits}-bit", "bits": bits, "group_size": qc.get("group_size", qc.get("q_group_size")),
            "scheme": qc.get("version", "gemm"), "full_precision_config": qc.get("modules_to_not_convert"),
            "batch_dependent": False}


NO_CPU_KERNEL = ("no CPU build installs here: its PyPI release is a source distribution that compiles GPU "
                 "kernels; audit it on a GPU machine, or convert it to compressed-tensors (llm-compressor)")
FORMATS = {
    "bitsandbytes": Format("bitsandbytes", "bitsandbytes", "pip install bitsandbytes", PACKED, _bitsandbytes,
                           "bitsandbytes' CPU kernels"),
    "compressed-tensors": Format("compressed-tensors (llm-compressor)", "compressed_tensors",
                                 "pip install compressed-tensors", DEQUANTIZED, _compressed_tensors,
                                 "transformers de-quantizes it on a CPU; activation quantization still runs"),
    "torchao": Format("torchao", "torchao", "pip install torchao", PACKED, _torchao, "torchao's tensor subclasses"),
    "gptq": Format("GPTQ (gptqmodel)", "gptqmodel", "pip install gptqmodel", PACKED, _gptq, NO_CPU_KERNEL),
    "awq": Format("AWQ (autoawq)", "awq", "pip install autoawq", PACKED, _awq, NO_CPU_KERNEL),
}


def describe(config: dict, directory: Path, gguf: str | None = None) -> dict | None:
    """What the checkpoint's quantization is (None: not quantized by another tool); a backend that is not
    installed is bad input naming its package."""
    if gguf:
        return describe_gguf(directory / gguf)
    qc = config.get("quantization_config")
    if not qc:
        return None
    where = str(Path(directory) / "config.json")
    method = str(qc.get("quant_method", "")).lower() if isinstance(qc, dict) else ""
    fmt = FORMATS.get(method)
    if fmt is None:
        raise ModelError(f"quantized by '{method or '?'}', a format audit does not read (known: {', '.join(FORMATS)})",
                         where, "audit a checkpoint in one of those formats, or de-quantize it to safetensors first")
    if fmt.package and importlib.util.find_spec(fmt.package) is None:
        raise ModelError(f"a {fmt.tool} checkpoint, and loading it needs the {fmt.package} package, which is not "
                         "installed", where, f"{fmt.install}" + (f" ({fmt.note})" if fmt.note == NO_CPU_KERNEL else ""))
    return {"tool": fmt.tool, "quant_method": method, **fmt.read(qc), "runs": fmt.runs, "runs_note": fmt.note,
            "stored_weight_bytes": stored_bytes(directory), "config": qc}


def describe_gguf(path: Path) -> dict | None:
    """A GGUF file's quantization from its tensor types (Q4_K, Q6_K, ...): transformers de-quantizes every tensor
    to float when it loads the file, so the model runs in float; the file's bytes are what it stores (None: the
    file holds no tensor, and loading it fails)."""
    from collections import Counter

    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    types, stored, params = Counter(), Counter(), 0
    for t in reader.tensors:
        types[t.tensor_type.name] += 1
        stored[t.tensor_type.name] += int(t.n_bytes)
        params += int(t.n_elements)
    if not types:
        return None
    quantized = {k: v for k, v in types.items() if k not in ("F32", "F16", "BF16")}
    main = max(quantized, key=lambda k: stored[k]) if quantized else max(types, key=lambda k: stored[k])
    return {"tool": "GGUF (llama.cpp)", "quant_method": "gguf", "method": f"gguf {main}",
            "bits": round(8 * sum(stored.values()) / max(params, 1), 2), "group_size": None, "scheme": main,
            "tensor_types": dict(types), "bytes_by_type": dict(stored), "full_precision_tensors":
            sum(v for k, v in types.items() if k in ("F32", "F16", "BF16")), "batch_dependent": False,
            "runs": DEQUANTIZED, "runs_note": "transformers' GGUF reader de-quantizes every tensor to float",
            "stored_weight_bytes": sum(stored.values())}


def stored_bytes(directory: Path) -> int:
    """Bytes of the checkpoint's weight tensors as stored (packed values, scales, zero points), from the
    safetensors headers."""
    from safetensors import safe_open

    total = 0
    for path in sorted(Path(directory).glob("*.safetensors")):
        with safe_open(str(path), "np") as f:
            for name in f.keys():
                sl = f.get_slice(name)
                n = 1
                for d in sl.get_shape():
                    n *= d
                total += n * DTYPE_BYTES.get(sl.get_dtype(), 4)
    return total


DTYPE_BYTES = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2, "U16": 2,
               "F8_E4M3": 1, "F8_E5M2": 1, "I8": 1, "U8": 1, "BOOL": 1}


def full_precision_modules(module) -> list[str]:
    """The nn.Linear layers of a loaded packed checkpoint that hold float weights (not quantized)."""
    import torch

    out = []
    for name, m in module.named_modules():
        w = getattr(m, "weight", None)
        if type(m) is torch.nn.Linear and w is not None and w.is_floating_point() \
                and not hasattr(w, "tensor_data_names") and getattr(w, "quant_state", None) is None:
            out.append(name)
    return out


def summary(q: dict | None) -> str | None:
    """One line for the reports: audit compress's recipe, or another tool's quantization (None: uncompressed)."""
    if not q:
        return None
    if "quant_method" not in q:  # an audit compress recipe
        what = {"prune": lambda: f"prune {q['amount']:.0%}, measured sparsity {q.get('measured_sparsity', 0):.3f}"}.get(
            q["method"], lambda: q["method"] + (f" ({q['dtype']})" if q.get("dtype") else ""))()
        return f"audit compress {what}" + ("; runs packed (torchao)" if q.get("quantizer") else "")
    parts = [q["method"]]
    if q.get("bits"):
        parts.append(f"{q['bits']} bits per weight" if q["quant_method"] == "gguf" else f"{q['bits']}-bit")
    if q.get("group_size"):
        parts.append(f"groups of {q['group_size']}")
    kept = q.get("full_precision")
    if kept is not None:
        parts.append(f"full precision: {', '.join(kept[:6]) + ('…' if len(kept) > 6 else '') if kept else 'none'}")
    parts.append("runs packed" if q["runs"] == PACKED else "runs de-quantized to float")
    return "; ".join(parts)
