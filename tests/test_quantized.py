"""Checkpoints quantized by other tools (bitsandbytes, compressed-tensors, torchao; GGUF tensor types): each tiny
Llama is written by its own library in the test, then audited against the float Llama it came from: the report
names its method and bits, the footprint counts what holds the weights, and the items are scored."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from audit import quantized
from conftest import build_tiny_llama
from test_cli import assert_bad_input, run
from test_lm_tasks import ROWS

SUITE = """\
name: tiny-mc-quantized
task: multiple_choice
labels: [A, B]
data:
  eval: {path: mc.jsonl, text_template: "Question: {q}\\nAnswer:", choices_field: choices, label_field: answer}
probes:
  accuracy: {}
  comparison: {}
  efficiency: {latency_sample: 2, throughput_sample: 8, warmup: 1, rounds: 2}
gates:
  - {name: flips, metric: comparison.flip_rate, max: 1.0}
"""


@pytest.fixture(scope="module")
def wide_llama(tmp_path_factory) -> Path:
    """The tiny Llama at hidden size 64: bitsandbytes' CPU 4-bit kernels need rows of at least one block (64)."""
    return build_tiny_llama(tmp_path_factory.mktemp("models") / "wide-llama", hidden=64)


@pytest.fixture
def suite(tmp_path) -> Path:
    with open(tmp_path / "mc.jsonl", "w") as f:
        for text, y in ROWS:
            f.write(json.dumps({"q": text, "choices": ["good film", "bad film"], "answer": 0 if y == "1" else 1}) + "\n")
    (tmp_path / "mc.yaml").write_text(SUITE)
    return tmp_path / "mc.yaml"


def saved(module, tokenizer_from: Path, out: Path) -> Path:
    from transformers import AutoTokenizer

    module.save_pretrained(out)
    AutoTokenizer.from_pretrained(tokenizer_from).save_pretrained(out)
    return out


def bitsandbytes_build(base: Path, out: Path, bits: int) -> Path:
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32) \
        if bits == 4 else BitsAndBytesConfig(load_in_8bit=True)
    return saved(AutoModelForCausalLM.from_pretrained(base, quantization_config=config, device_map="cpu"), base, out)


def torchao_build(base: Path, out: Path) -> Path:
    from torchao.quantization import Int8WeightOnlyConfig
    from transformers import AutoModelForCausalLM, TorchAoConfig

    config = TorchAoConfig(Int8WeightOnlyConfig())
    return saved(AutoModelForCausalLM.from_pretrained(base, quantization_config=config, device_map="cpu"), base, out)


def compressed_tensors_build(base: Path, out: Path, group_size: int = 16) -> Path:
    """W4A16 in groups of ``group_size``, round-to-nearest: the scales from each group's range (what
    llm-compressor's QuantizationModifier writes, without its calibration), packed by compressed-tensors."""
    from compressed_tensors.compressors import ModelCompressor
    from compressed_tensors.quantization import (QuantizationConfig, QuantizationStatus, apply_quantization_config,
                                                 preset_name_to_scheme)
    from compressed_tensors.quantization.utils import calculate_qparams
    from transformers import AutoModelForCausalLM

    module = AutoModelForCausalLM.from_pretrained(base)
    scheme = preset_name_to_scheme("W4A16", ["Linear"])
    scheme.weights.group_size = group_size
    apply_quantization_config(module, QuantizationConfig(config_groups={"group_0": scheme}, ignore=["lm_head"]),
                              show_progress=False)
    for m in module.modules():
        if getattr(m, "quantization_scheme", None) is not None:
            groups = m.weight.data.reshape(m.weight.shape[0], -1, group_size)
            scale, zero = calculate_qparams(groups.amin(-1), groups.amax(-1), m.quantization_scheme.weights)
            m.weight_scale.data.copy_(scale.reshape(m.weight_scale.shape))
            m.weight_zero_point.data.copy_(zero.reshape(m.weight_zero_point.shape))
            m.quantization_status = QuantizationStatus.FROZEN
    compressor = ModelCompressor.from_pretrained_model(module)
    compressor.compress_model(module)
    saved(module, base, out)
    compressor.update_config(out)
    return out


BUILDS = {
    "bnb-nf4": (lambda base, out: bitsandbytes_build(base, out, 4), "bitsandbytes nf4", 4, "packed"),
    "bnb-int8": (lambda base, out: bitsandbytes_build(base, out, 8), "bitsandbytes LLM.int8", 8, "packed"),
    "compressed-tensors": (compressed_tensors_build, "compressed-tensors W4A16", 4, "de-quantized"),
    "torchao": (torchao_build, "torchao Int8WeightOnlyConfig", 8, "packed"),
}


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_a_checkpoint_quantized_by_another_tool_loads_reports_its_method_and_footprint_and_scores(
        build, suite, wide_llama, tmp_path):
    write, method, bits, runs = BUILDS[build]
    model = write(wide_llama, tmp_path / build)
    out = tmp_path / "out"
    result = run("check", model, "--baseline", wide_llama, "-b", suite, "--out", out)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    compression = report["model"]["compression"]
    assert compression["method"] == method and compression["bits"] == bits and compression["runs"] == runs
    assert compression["full_precision"] == ["lm_head"]  # transformers keeps the head in float; so does the config
    assert method in report["model"]["compression_summary"] and method in (out / "report.md").read_text()
    assert report["baseline"]["compression"] is None
    assert report["probes"]["accuracy"]["metrics"]["accuracy"]["value"] is not None
    eff = report["probes"]["efficiency"]
    mine, base = eff["metrics"], eff["baseline_metrics"]
    assert mine["params"]["value"] == base["params"]["value"]  # a quantized weight counts the weights it stands for
    by_dtype = eff["details"]["weight_bytes_by_dtype"]["model"]
    if runs == "packed":
        assert mine["weight_bytes"]["value"] < base["weight_bytes"]["value"]
        quantized_bytes = by_dtype.get("uint8" if bits == 4 else "int8", 0)
        packed = LINEAR_PARAMS * bits // 8  # packed, not the float view (plus torchao's int8 zero point per row)
        assert packed <= quantized_bytes <= 1.02 * packed, by_dtype
    else:  # de-quantized on this CPU: memory holds the float weights (and their scales), the file the packed ones
        assert mine["weight_bytes"]["value"] >= base["weight_bytes"]["value"]
        assert mine["disk_bytes"]["value"] < base["disk_bytes"]["value"]


LINEAR_PARAMS = 2 * (64 * 64 * 2 + 32 * 64 * 2 + 128 * 64 * 3)  # the wide Llama's attention and MLP projections


def test_a_missing_backend_is_bad_input_naming_the_package(wide_llama, suite, tmp_path, monkeypatch):
    model = bitsandbytes_build(wide_llama, tmp_path / "nf4", 4)
    real = quantized.importlib.util.find_spec
    monkeypatch.setattr(quantized.importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes"
                        else real(name, *a))
    out = tmp_path / "out"
    assert_bad_input(run("check", model, "-b", suite, "--out", out), out, "bitsandbytes", "pip install bitsandbytes")


def test_a_gptq_checkpoint_without_its_kernels_is_bad_input_before_any_model_loads(tiny_llama, suite, tmp_path):
    import shutil

    model = Path(shutil.copytree(tiny_llama, tmp_path / "gptq"))
    config = json.loads((model / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False}
    (model / "config.json").write_text(json.dumps(config))
    out = tmp_path / "out"
    assert_bad_input(run("check", model, "-b", suite, "--out", out), out, "gptqmodel", "pip install gptqmodel")


def test_a_gguf_files_quantization_is_read_from_its_tensor_types(tmp_path):
    import gguf

    path = tmp_path / "k.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    block = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q4_K]  # (256 weights, 144 bytes)
    rng = np.random.default_rng(0)
    writer.add_tensor("blk.0.ffn_up.weight", rng.integers(0, 255, (64, 4 * block[1]), dtype=np.uint8),
                      raw_dtype=gguf.GGMLQuantizationType.Q4_K)  # 64 rows of 1,024 weights
    writer.add_tensor("blk.0.attn_norm.weight", np.ones(64, dtype=np.float32))
    for write in (writer.write_header_to_file, writer.write_kv_data_to_file, writer.write_tensors_to_file):
        write()
    writer.close()
    q = quantized.describe({}, tmp_path, "k.gguf")
    assert q["method"] == "gguf Q4_K" and q["tensor_types"] == {"Q4_K": 1, "F32": 1} and q["runs"] == "de-quantized"
    assert q["bits"] == pytest.approx(8 * (64 * 4 * 144 + 64 * 4) / (64 * 1024 + 64), abs=0.01)  # 4.5 bits a weight
    assert q["full_precision_tensors"] == 1 and "runs de-quantized" in quantized.summary(q)
