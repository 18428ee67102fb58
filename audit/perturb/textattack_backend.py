"""Optional backend: textattack's own recipes, with every model query sent through our engine.

textattack pins transformers<5, so it lives in its own environment (``pip install 'audit[textattack]'``
in a fresh venv). Offline, ``import textattack`` fails until NLTK's English stopwords are on
NLTK_DATA; we write the list we ship there first. Of its recipes only these two need no download.
"""

from __future__ import annotations

import os
from functools import cache
from importlib import resources
from pathlib import Path

from audit.cache import cache_dir
from audit.perturb.attack import AttackResult

RECIPES = {"deepwordbug": "DeepWordBugGao2018", "pruthi": "Pruthi2019"}
INSTALL = "pip install 'audit[textattack]' in a fresh environment (textattack needs transformers<5)"


def nltk_data_dir() -> Path:
    """An NLTK_DATA folder holding the stopword list textattack loads at import."""
    root = cache_dir() / "nltk_data"
    target = root / "corpora" / "stopwords" / "english"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        text = resources.files("audit.perturb").joinpath("stopwords_english.txt").read_text(encoding="utf-8")
        tmp = target.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    return root


@cache
def load():
    """The textattack module, or None when it is not installed (NLTK_DATA is set up once)."""
    os.environ["NLTK_DATA"] = os.pathsep.join(filter(None, [str(nltk_data_dir()), os.environ.get("NLTK_DATA")]))
    try:
        import nltk

        nltk.data.path.insert(0, str(nltk_data_dir()))
        import textattack
    except ImportError:
        return None
    return textattack


def run(proba, module, texts, labels, recipe: str, query_budget: int, seed: int) -> list[AttackResult]:
    """Attack with textattack's recipe ``recipe``; ``proba(texts)`` answers every model query."""
    textattack = load()
    if textattack is None:
        raise ImportError(INSTALL)
    from textattack import attack_recipes, attack_results
    from textattack.models.wrappers import ModelWrapper
    from textattack.shared.utils import set_seed

    class EngineWrapper(ModelWrapper):
        def __init__(self):
            self.model = module

        def __call__(self, text_input_list):
            return proba(list(text_input_list))

    set_seed(seed)
    attack = getattr(attack_recipes, RECIPES[recipe]).build(EngineWrapper())
    attack.goal_function.query_budget = query_budget
    out = []
    for i, (text, y) in enumerate(zip(texts, labels)):
        r = attack.attack(text, int(y))
        status = ("skipped" if isinstance(r, attack_results.SkippedAttackResult) else
                  "success" if isinstance(r, attack_results.SuccessfulAttackResult) else "failed")
        before, after = r.original_result.attacked_text, r.perturbed_result.attacked_text
        changed = sorted(before.all_words_diff(after))
        out.append(AttackResult(i, status, text, after.text, int(y), int(r.perturbed_result.output),
                                int(r.perturbed_result.num_queries), len(changed), len(before.words),
                                [(before.words[k], after.words[k]) for k in changed]))
    return out
