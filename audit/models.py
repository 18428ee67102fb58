"""Safe loading of HF sequence classifiers, fingerprints, and label alignment with a suite.

Safe by default: weights must be safetensors, and repositories that ship their own
modelling code (``auto_map`` in config.json) are refused; ``allow_unsafe`` lifts both.
A directory written by ``audit compress`` is rebuilt from its base weights plus recipe.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audit.errors import ModelError

SAFE_WEIGHTS = ("*.safetensors",)
PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")
FINGERPRINT_FILES = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.json", "*.txt", "*.model")
RECIPE_FILE = "audit_compression.json"
GENERIC_LABEL = re.compile(r"^LABEL_(\d+)$")


@dataclass
class LoadedModel:
    """A classifier ready for the engine: module, tokenizer, provenance and its label names."""

    source: str  # what the user named (directory or hub id)
    directory: Path
    fingerprint: str
    module: object  # torch.nn.Module
    tokenizer: object
    labels: tuple[str, ...]  # the model's own id2label, in logit order
    compression: dict | None = None

    def describe(self) -> dict:
        return {"path": self.source, "fingerprint": self.fingerprint, "labels": list(self.labels),
                "compression": self.compression}


def model_files(directory: Path) -> list[Path]:
    """The weight, config and tokenizer files that define a model directory."""
    return sorted({p for pat in FINGERPRINT_FILES for p in Path(directory).glob(pat) if p.is_file()})


def fingerprint(directory: Path) -> str:
    """sha256 over the names and bytes of the weight, config and tokenizer files."""
    h = hashlib.sha256()
    for p in model_files(directory):
        h.update(p.name.encode() + b"\0")
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def resolve_directory(source: str, allow_unsafe: bool) -> Path:
    """A local directory as is; otherwise a hub id, downloaded (safetensors only unless unsafe)."""
    path = Path(source).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError("a model must be a directory (save_pretrained output) or a hub id", source,
                             "pass the directory that holds config.json")
        return path.resolve()
    if source.startswith((".", "/", "~")) or source.count("/") > 1:
        raise ModelError("model directory not found", source, "check the path")
    try:
        from huggingface_hub import snapshot_download

        patterns = ["*.json", "*.txt", "*.model", "*.safetensors"] + (list(PICKLE_WEIGHTS) if allow_unsafe else [])
        return Path(snapshot_download(source, allow_patterns=patterns))
    except Exception as exc:  # network, auth and not-found errors all mean "cannot fetch"
        raise ModelError(f"not a local directory, and the hub download failed ({type(exc).__name__})", source,
                         "check the path, or the hub id and your network connection") from None


def check_safety(directory: Path, allow_unsafe: bool) -> dict:
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise ModelError("no config.json in the model directory", str(directory),
                         "pass a directory written by save_pretrained")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"config.json is not valid JSON ({exc})", str(config_path), "re-save the model") from None
    safe = [p for pat in SAFE_WEIGHTS for p in directory.glob(pat)]
    pickled = [p for pat in PICKLE_WEIGHTS for p in directory.glob(pat)]
    if not safe and not allow_unsafe:
        if pickled:
            raise ModelError(f"only pickle checkpoints ({pickled[0].name}); loading them can run arbitrary code",
                             str(directory), "convert to safetensors (model.save_pretrained(dir)), or pass --allow-unsafe")
        raise ModelError("no safetensors weights in the model directory", str(directory),
                         "pass a directory written by save_pretrained")
    if config.get("auto_map") and not allow_unsafe:
        raise ModelError("the model ships its own Python code (auto_map); running it needs trust_remote_code",
                         str(config_path), "review the code, then pass --allow-unsafe")
    return config


def quiet_transformers() -> None:
    """transformers' per-load reports and progress bars would bury audit's own output."""
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    disable_progress_bars()


def load_model(source: str, *, allow_unsafe: bool = False) -> LoadedModel:
    """Load a sequence classifier from a directory or hub id, refusing unsafe formats by default."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    quiet_transformers()

    directory = resolve_directory(source, allow_unsafe)
    check_safety(directory, allow_unsafe)
    recipe_path = directory / RECIPE_FILE
    recipe = json.loads(recipe_path.read_text()) if recipe_path.is_file() else None
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, trust_remote_code=allow_unsafe)
        module = AutoModelForSequenceClassification.from_pretrained(
            directory, use_safetensors=None if allow_unsafe else True, trust_remote_code=allow_unsafe,
            dtype=getattr(torch, recipe["dtype"]) if recipe and recipe.get("dtype") else torch.float32)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"cannot load as a sequence classifier ({str(exc).splitlines()[0]})", str(directory),
                         "pass a directory with a *ForSequenceClassification model and its tokenizer") from None
    if recipe:
        from audit.compress import rebuild

        module = rebuild(module, recipe)
    module.eval()
    id2label = module.config.id2label
    labels = tuple(str(id2label[i]) for i in range(len(id2label)))
    return LoadedModel(source, directory, fingerprint(directory), module, tokenizer, labels, recipe)


def align_labels(model_labels: tuple[str, ...], suite_labels: tuple[str, ...],
                 label_map: dict[str, str] | None = None, where: str = "") -> tuple[np.ndarray, str]:
    """Column order that turns the model's logits into the suite's label order, and how it was found.

    Matching: an explicit ``label_map`` (model label -> suite label); else names, ignoring case;
    else, when the model only has generic ``LABEL_i`` names and the counts agree, by position.
    """
    lower = {lab.lower(): i for i, lab in enumerate(model_labels)}
    if label_map:
        unknown = [m for m in label_map if m not in model_labels]
        if unknown:
            raise ModelError(f"--label-map names model label '{unknown[0]}', which the model does not have "
                             f"(model labels: {list(model_labels)})", where, "use the model's own label names")
        inverse = {suite: model_labels.index(m) for m, suite in label_map.items()}
        how = "label-map"
    elif all(s.lower() in lower for s in suite_labels):
        inverse = {s: lower[s.lower()] for s in suite_labels}
        how = "by-name"
    elif len(model_labels) == len(suite_labels) and all(GENERIC_LABEL.match(m) for m in model_labels):
        inverse = {s: i for i, s in enumerate(suite_labels)}
        how = "by-position"
    else:
        inverse = {}
        how = ""
    missing = [s for s in suite_labels if s not in inverse]
    if missing:
        raise ModelError(f"cannot match suite labels {list(suite_labels)} to model labels {list(model_labels)}",
                         where, "pass --label-map MODEL_LABEL=SUITE_LABEL,... (e.g. POS=positive,NEG=negative)")
    return np.asarray([inverse[s] for s in suite_labels], dtype=np.int64), how
