import numpy as np
import pytest

from audit.compress import compress, parse_method
from audit.engine import Engine, EngineConfig
from audit.errors import AuditError
from audit.models import load_model
from conftest import sst2_rows

TEXTS = [t for t, _ in sst2_rows(32)]


def proba(directory):
    return Engine(EngineConfig(device="cpu")).predict_proba(load_model(str(directory)), TEXTS)


@pytest.mark.parametrize("method, atol", [("int8", 0.05), ("int8-weight", 0.05), ("int4-weight", 0.2), ("fp16", 0.01),
                                          ("bf16", 0.05)])
def test_roundtrip_close_to_base(tiny_bert, tmp_path, method, atol):
    out = tmp_path / method
    recipe = compress(load_model(str(tiny_bert)), method, out)
    loaded = load_model(str(out))
    assert loaded.compression["method"] == recipe["method"] and loaded.fingerprint != load_model(str(tiny_bert)).fingerprint
    np.testing.assert_allclose(proba(out), proba(tiny_bert), atol=atol)


@pytest.mark.parametrize("method", ["int8", "int8-weight", "int4-weight"])
def test_quantization_really_quantizes_every_linear(tiny_bert, tmp_path, method):
    import torch

    compress(load_model(str(tiny_bert)), method, tmp_path / "q")
    module = load_model(str(tmp_path / "q")).module
    linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 2 * 6 + 2  # 6 per layer + pooler + classifier head
    assert all(type(m.weight).__module__.startswith("torchao") for m in linears), {type(m.weight) for m in linears}


def test_a_recipe_from_the_torch_ao_era_is_refused(tiny_bert, tmp_path):
    import json

    from audit.errors import ModelError
    from audit.recipes import RECIPE_FILE

    out = tmp_path / "old"
    compress(load_model(str(tiny_bert)), "int8", out)
    recipe = json.loads((out / RECIPE_FILE).read_text())
    del recipe["quantizer"]
    (out / RECIPE_FILE).write_text(json.dumps({**recipe, "scheme": "dynamic per-tensor qint8 on every nn.Linear"}))
    with pytest.raises(ModelError, match="older audit.*re-run audit compress"):
        load_model(str(out))


def test_prune_sets_the_requested_share_to_zero(tiny_bert, tmp_path):
    import torch

    recipe = compress(load_model(str(tiny_bert)), "prune:0.5", tmp_path / "p")
    assert recipe["measured_sparsity"] == pytest.approx(0.5, abs=0.01)
    module = load_model(str(tmp_path / "p")).module
    weights = [m.weight for m in module.bert.modules() if isinstance(m, torch.nn.Linear)]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert zeros == pytest.approx(recipe["measured_sparsity"], abs=1e-6)


def test_pruning_zeroes_what_torchs_global_l1_pruning_zeroes(tiny_bert):
    """The same weights as torch.nn.utils.prune.global_unstructured (which needs 4x the memory), and exactly the
    requested count where magnitudes tie at the threshold."""
    import torch
    from torch.nn.utils import prune

    from audit.compress import _prune

    ours, theirs = (load_model(str(tiny_bert)).module for _ in range(2))
    _prune(ours, 0.3)
    linears = lambda m: [x for x in m.bert.modules() if isinstance(x, torch.nn.Linear)]
    prune.global_unstructured([(x, "weight") for x in linears(theirs)], pruning_method=prune.L1Unstructured, amount=0.3)
    assert all(torch.equal(a.weight == 0, b.weight == 0) for a, b in zip(linears(ours), linears(theirs)))
    tied = load_model(str(tiny_bert)).module
    for x in linears(tied):  # magnitudes 1, 2, 3, ...: ties at any threshold, and no zero to start with
        x.weight.data = torch.where(x.weight.data < 0, -1.0, 1.0) * (1 + torch.round(x.weight.data.abs() * 100))
    total = sum(x.weight.numel() for x in linears(tied))
    assert _prune(tied, 0.3) == round(0.3 * total) / total


@pytest.mark.parametrize("seed", range(5))
def test_the_radix_selected_threshold_is_the_kth_smallest_magnitude(seed):
    import torch

    from audit.compress import kth_magnitude

    gen = torch.Generator().manual_seed(seed)
    weights = [torch.randn(int(n), generator=gen) * 10 ** float(e) for n, e in
               zip(torch.randint(1, 300, (4,), generator=gen), torch.randint(-6, 3, (4,), generator=gen))]
    weights[0][:5] = 0  # zeros and exact ties too
    weights[1][:7] = weights[2][0]
    every = torch.cat([w.abs() for w in weights])
    for k in (1, len(every) // 3, len(every)):
        assert kth_magnitude(weights, k) == float(every.kthvalue(k).values)


def test_bad_method_and_existing_output(tiny_bert, tmp_path):
    with pytest.raises(AuditError, match="unknown compression method 'int3'"):
        parse_method("int3")
    with pytest.raises(AuditError, match="between 0 and 1"):
        parse_method("prune:1.5")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(AuditError, match="not empty.*--overwrite"):
        compress(load_model(str(tiny_bert)), "fp16", tmp_path / "x")
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"
