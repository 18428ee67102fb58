"""Safe loading of models, fingerprints, and label alignment with a suite.

Two model kinds: sequence classifiers (class logits) and causal LMs (next-token logits), told
apart by config.json's ``architectures``; a ``.gguf`` file (or a directory holding one) is a
causal LM whose tokenizer and weights transformers reads from the file (de-quantized to float32).
Safe by default: weights must be safetensors or GGUF, and repositories that ship their own
modelling code (``auto_map`` in config.json) are refused; ``allow_unsafe`` lifts both.
A directory written by ``audit compress`` is rebuilt from its base weights plus recipe.

``inspect_model`` checks everything that can be checked without loading weights (config,
weight file headers, tokenizer files, labels, recipe); ``load_model`` then loads and refuses
weights that leave parameters uninitialised; ``check_tokenizer`` refuses a tokenizer that
turns the benchmark into unknown tokens.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from audit import quantized, recipes
from audit.errors import ModelError, did_you_mean
from audit.files import sha256_file

SAFE_WEIGHTS = ("*.safetensors",)
PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")
FINGERPRINT_FILES = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.json", "*.txt", "*.model",
                     "*.gguf")
CLASSIFIER, CAUSAL_LM = "classifier", "causal-lm"
AUTO_CLASS = {CLASSIFIER: "AutoModelForSequenceClassification", CAUSAL_LM: "AutoModelForCausalLM"}
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "tokenizer.model", "spiece.model",
                   "sentencepiece.bpe.model", "merges.txt")
GENERIC_LABEL = re.compile(r"^LABEL_(\d+)$")
ENGINE_MAX_LENGTH = 512  # truncation when the suite sets no max_length (never above the model's own limit)
UNK_LIMIT = 0.5  # a tokenizer mapping more of the benchmark's tokens than this to UNK does not fit it


@dataclass
class ModelSource:
    """A model checked without loading its weights."""

    source: str  # what the user named (directory, .gguf file or hub id)
    directory: Path
    config: dict  # config.json ({} for a GGUF file, which holds its own)
    kind: str  # classifier | causal-lm
    labels: tuple[str, ...]  # a classifier's id2label, in logit order; () for a causal LM
    recipe: dict | None
    files: tuple[Path, ...]  # the files that define the model (what the fingerprint covers)
    hashes: dict[str, str]  # file name -> sha256, for those files
    gguf: str | None = None  # the GGUF file's name inside ``directory``
    quantization: dict | None = None  # a checkpoint quantized by another tool (audit/quantized.py)

    @property
    def compression(self) -> dict | None:
        """What compressed it: audit compress's recipe, or another tool's quantization."""
        return self.recipe or self.quantization

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.hashes)


@dataclass(eq=False)
class LoadedModel:
    """A model ready for the engine: module, tokenizer, provenance, label names, position limit. With a
    ``residency`` its module is loaded when asked for and freed when another model is (audit/residency.py)."""

    source: str
    directory: Path
    fingerprint: str
    _module: object  # torch.nn.Module, or None while another model is resident
    tokenizer: object
    labels: tuple[str, ...]
    compression: dict | None = None
    max_length: int = ENGINE_MAX_LENGTH  # the longest input the model takes (tokens)
    max_length_limit: str = "engine default"  # what sets max_length
    kind: str = CLASSIFIER
    files: tuple[Path, ...] = ()
    hashes: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    gguf: str | None = None
    dtype: str = "float32"  # what the weights were loaded in (--dtype), and why
    dtype_reason: str = "float32"
    config: object = None  # the module's PretrainedConfig (kept while the module is not resident)
    weights: Callable[[], object] | None = field(default=None, repr=False)  # loads the module again
    residency: object = None  # audit.residency.Residency shared by a run's models, or None: always resident

    def describe(self) -> dict:
        return {"path": self.source, "kind": self.kind, "fingerprint": self.fingerprint, "labels": list(self.labels),
                "compression": self.compression, "compression_summary": quantized.summary(self.compression),
                "dtype": self.dtype, "dtype_reason": self.dtype_reason}

    @property
    def module(self):
        """The torch module, made resident first (freeing another model's) when the model shares a residency."""
        if self.residency is not None:
            self.residency.hold(self)
        return self._module

    @property
    def loaded(self) -> bool:
        return self._module is not None

    @property
    def resident(self) -> bool:
        """Are the weights in memory now (asking for them costs no load)?"""
        return self.residency is None or self.residency.held is self

    def release(self) -> None:
        self._module = None

    def reload(self) -> None:
        self._module = self.weights()


def model_files(directory: Path, gguf: str | None = None) -> list[Path]:
    """The files that define a model: a GGUF file alone, or a directory's weight, config and tokenizer files."""
    if gguf:
        return [Path(directory) / gguf]
    return sorted({p for pat in FINGERPRINT_FILES for p in Path(directory).glob(pat) if p.is_file()})


def file_hashes(paths) -> dict[str, str]:
    """File name -> sha256 of its bytes, for the files of one model (names are unique in a directory)."""
    return {p.name: sha256_file(p) for p in paths}


def fingerprint_of(hashes: dict[str, str]) -> str:
    """The model's fingerprint: sha256 over its files' names and sha256s (each file read once for both)."""
    return hashlib.sha256("".join(f"{name}\0{digest}\n" for name, digest in sorted(hashes.items())).encode()).hexdigest()


def fingerprint(directory: Path, gguf: str | None = None) -> str:
    """The fingerprint of the files that define the model."""
    return fingerprint_of(file_hashes(model_files(directory, gguf)))


def resolve_directory(source: str, allow_unsafe: bool) -> tuple[Path, str | None]:
    """(directory, GGUF file name or None): a local directory or ``.gguf`` file as is; otherwise a hub id,
    downloaded (safetensors only unless unsafe)."""
    path = Path(source).expanduser()
    if path.exists():
        if path.is_file() and path.suffix.lower() == ".gguf":
            return path.parent.resolve(), path.name
        if not path.is_dir():
            raise ModelError("a model must be a directory (save_pretrained output), a .gguf file or a hub id", source,
                             "pass the directory that holds config.json, or the .gguf file")
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        if ggufs and not (path / "config.json").is_file():
            if len(ggufs) > 1:
                raise ModelError(f"the directory holds {len(ggufs)} GGUF files ({', '.join(ggufs)})", source,
                                 "pass the .gguf file itself")
            return path.resolve(), ggufs[0]
        return path.resolve(), None
    if source.startswith((".", "/", "~")) or source.count("/") > 1 or not source.strip():
        raise ModelError("model directory not found", source, "check the path")
    try:
        from huggingface_hub import snapshot_download

        patterns = ["*.json", "*.txt", "*.model", "*.safetensors"] + (list(PICKLE_WEIGHTS) if allow_unsafe else [])
        return Path(snapshot_download(source, allow_patterns=patterns)), None
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
        raise ModelError(f"not valid JSON ({exc})", str(config_path), "re-save the model") from None
    if not isinstance(config, dict):
        raise ModelError("not a JSON object", str(config_path), "re-save the model")
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
    for path in safe:
        check_safetensors(path)
    return config


def check_safetensors(path: Path) -> None:
    """A truncated or garbage weights file is refused from its header, before anything loads it."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "np") as f:
            f.keys()
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"not a readable safetensors file ({str(exc).splitlines()[0]})", str(path),
                         "re-save the model (model.save_pretrained) or download it again") from None


def config_labels(config: dict, where: str) -> tuple[str, ...]:
    """The output classes as config.json names them (``LABEL_i`` when it names none)."""
    id2label = config.get("id2label")
    if id2label is None:
        n = config.get("num_labels", 2)
        return tuple(f"LABEL_{i}" for i in range(n)) if isinstance(n, int) and n >= 2 else ()
    try:
        by_index = {int(k): str(v) for k, v in id2label.items()}
    except (AttributeError, ValueError):
        by_index = {}
    if sorted(by_index) != list(range(len(by_index))) or len(by_index) < 2 or len(set(by_index.values())) < len(by_index):
        raise ModelError(f"id2label must name at least two distinct classes 0..n-1, got {id2label!r}",
                         where, "re-save the classifier with its id2label")
    return tuple(by_index[i] for i in range(len(by_index)))


def model_kind(config: dict, where: str) -> str:
    """classifier or causal-lm, from config.json's ``architectures`` (the class save_pretrained wrote)."""
    archs = config.get("architectures") or []
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        return CAUSAL_LM
    if any(a.endswith("ForSequenceClassification") for a in archs):
        return CLASSIFIER
    raise ModelError(f"cannot tell the model kind from config.json architectures {archs}", where,
                     "audit a *ForSequenceClassification or *ForCausalLM model saved with save_pretrained")


def check_chat_template(src: "ModelSource", option: str) -> None:
    """A chat template is asked for: the model's tokenizer must ship one (tokenizer_config.json's chat_template,
    a chat_template.jinja file, or a GGUF's tokenizer.chat_template), read without loading the model."""
    if src.gguf:
        from gguf import GGUFReader

        found = "tokenizer.chat_template" in GGUFReader(str(src.directory / src.gguf)).fields
    else:
        config = src.directory / "tokenizer_config.json"
        try:
            declared = json.loads(config.read_text(encoding="utf-8")).get("chat_template") if config.is_file() else None
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            declared = None
        found = bool(declared) or (src.directory / "chat_template.jinja").is_file() or \
            (src.directory / "chat_template.json").is_file()
    if not found:
        raise ModelError("the tokenizer has no chat template, and one is asked for", f"{option} ({src.source})",
                         "audit an instruct model that ships its chat template, or drop the chat template")


def check_gguf(path: Path) -> None:
    """A GGUF file's header, read before anything loads it."""
    try:
        from gguf import GGUFReader
    except ImportError:
        raise ModelError("reading GGUF files needs the gguf package", str(path), "pip install 'audit[lm]'") from None
    try:
        GGUFReader(str(path))
    except Exception as exc:  # the reader raises ValueError, KeyError, struct errors... for a damaged file
        raise ModelError(f"not a readable GGUF file ({type(exc).__name__}: {str(exc).splitlines()[0]})", str(path),
                         "download the file again") from None


def inspect_model(source: str, *, allow_unsafe: bool = False) -> ModelSource:
    """Everything about a model that can be checked without loading its weights."""
    directory, gguf = resolve_directory(source, allow_unsafe)
    if gguf:
        check_gguf(directory / gguf)
        files = tuple(model_files(directory, gguf))
        return ModelSource(source, directory, {}, CAUSAL_LM, (), None, files, file_hashes(files), gguf,
                           quantized.describe({}, directory, gguf))
    config = check_safety(directory, allow_unsafe)
    kind = model_kind(config, str(directory / "config.json"))
    if not any((directory / name).is_file() for name in TOKENIZER_FILES):
        raise ModelError(f"no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}, ...) in the model directory",
                         str(directory), "save the tokenizer beside the model: tokenizer.save_pretrained(dir)")
    labels = ()
    if kind == CLASSIFIER:
        labels = config_labels(config, str(directory / "config.json"))
        if not labels:
            raise ModelError("the model has fewer than two output classes (a regression head?)",
                             str(directory / "config.json"), "audit a sequence classifier with two or more classes")
    files = tuple(model_files(directory))
    hashes = file_hashes(files)
    recipe = recipes.read_recipe(directory)
    if recipe:
        recipes.check_lineage(recipe, hashes, directory)
    return ModelSource(source, directory, config, kind, labels, recipe, files, hashes, None,
                       quantized.describe(config, directory))


def quiet_transformers() -> None:
    """transformers' per-load reports and progress bars (and torchao's import warnings) would bury audit's output."""
    recipes.silence_backends()
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    disable_progress_bars()


DTYPES = ("auto", "float32", "bfloat16", "float16")


def checkpoint_dtype(src: ModelSource) -> str | None:
    """The dtype the checkpoint's weights are stored in, as its config says (None: unsaid, or a GGUF file)."""
    stored = src.config.get("dtype") or src.config.get("torch_dtype")
    return str(stored).removeprefix("torch.") if stored else None


def resolve_dtype(src: ModelSource, requested: str, device_type: str, where: str = "--dtype") -> tuple[str, str]:
    """(the dtype to load the weights in, why). ``auto``: on a GPU the checkpoint's own dtype; on a CPU bfloat16
    for a bfloat16 or float16 checkpoint where the CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX),
    else float32 (without native support torch emulates bfloat16, slower than float32). A build whose recipe
    fixes its dtype (audit compress fp16/bf16) is that dtype: asking for another is bad input."""
    from audit.hardware import native_bfloat16

    fixed = (src.recipe or {}).get("dtype")
    if fixed:
        if requested not in ("auto", fixed):
            raise ModelError(f"the build is {fixed} by its recipe ({src.recipe['method']}), and --dtype asks {requested}",
                             where, f"drop --dtype, or pass --dtype {fixed}")
        return fixed, f"its recipe ({src.recipe['method']})"
    if requested != "auto":
        return requested, "--dtype"
    stored = checkpoint_dtype(src)
    if device_type == "cuda":
        return (stored, "the checkpoint's dtype") if stored in DTYPES else ("float32", "auto: no dtype in the checkpoint")
    if stored in ("bfloat16", "float16") and native_bfloat16():
        return "bfloat16", f"auto: a {stored} checkpoint on a CPU with native bfloat16"
    return "float32", (f"auto: a {stored} checkpoint on a CPU without native bfloat16" if stored in ("bfloat16", "float16")
                       else "auto: a float32 checkpoint" if stored else "auto: the checkpoint states no dtype")


def load_model(source: "str | ModelSource", *, allow_unsafe: bool = False,
               dtype: tuple[str, str] | None = None, residency=None) -> LoadedModel:
    """Load a model (a directory, .gguf file, hub id or inspected source) in ``dtype`` (name, why; default
    float32 or its recipe's), refusing unsafe formats and weights that do not cover the model (its missing
    parameters would be random). With a ``residency`` (audit/residency.py) the model held there is freed
    before these weights load, and this one is held."""
    import transformers

    quiet_transformers()
    src = source if isinstance(source, ModelSource) else inspect_model(source, allow_unsafe=allow_unsafe)
    recipe = src.recipe
    if dtype is None:  # loaded directly, not through --dtype: float32 or what the recipe fixes
        dtype = (recipe["dtype"], f"its recipe ({recipe['method']})") if (recipe or {}).get("dtype") else ("float32", "float32")
    where = str(src.directory / src.gguf) if src.gguf else str(src.directory)
    try:
        with gguf_quiet(src):
            tokenizer = transformers.AutoTokenizer.from_pretrained(src.directory, gguf_file=src.gguf,
                                                                   trust_remote_code=allow_unsafe)
    except Exception as exc:  # transformers raises many types (OSError, ValueError, RuntimeError, ...) for one cause
        raise cannot_load(src, where, exc) from None
    weights = lambda: load_weights(src, dtype[0], allow_unsafe)
    if residency is not None:
        residency.make_room()
    module = weights()
    limit, why = position_limit(module, tokenizer)
    labels = src.labels if src.kind == CLASSIFIER else ()
    compression = recipe or src.quantization and {
        **src.quantization, "full_precision": quantized.full_precision_modules(module)
        if src.quantization["runs"] == quantized.PACKED else src.quantization.get("full_precision_config")}
    model = LoadedModel(src.source, src.directory, src.fingerprint, module, tokenizer, labels, compression, limit, why,
                        src.kind, src.files, src.hashes, src.gguf, dtype[0], dtype[1], module.config, weights, residency)
    if residency is not None:
        residency.loaded(model)
    return model


def gguf_quiet(src: ModelSource):
    """transformers' GGUF reader draws its own progress bar, whatever its logging settings say."""
    return contextlib.redirect_stderr(io.StringIO()) if src.gguf else contextlib.nullcontext()


def cannot_load(src: ModelSource, where: str, exc: Exception) -> ModelError:
    return ModelError(f"cannot load as a {src.kind} ({type(exc).__name__}: {str(exc).splitlines()[0]})", where,
                      f"pass a directory with a {AUTO_CLASS[src.kind].removeprefix('AutoModelFor')} model and its "
                      "tokenizer")


def load_weights(src: ModelSource, dtype: str, allow_unsafe: bool):
    """The model's module in ``dtype``, its recipe applied, in eval mode."""
    import torch
    import transformers

    auto = getattr(transformers, AUTO_CLASS[src.kind])
    where = str(src.directory / src.gguf) if src.gguf else str(src.directory)
    try:
        with gguf_quiet(src):
            module, info = auto.from_pretrained(
                src.directory, gguf_file=src.gguf, use_safetensors=None if allow_unsafe or src.gguf else True,
                trust_remote_code=allow_unsafe, output_loading_info=True, dtype=getattr(torch, dtype))
    except Exception as exc:  # transformers raises many types (OSError, ValueError, RuntimeError, ...) for one cause
        raise cannot_load(src, where, exc) from None
    missing = sorted(info.get("missing_keys", ())) + sorted(str(k[0]) if isinstance(k, tuple) else str(k)
                                                            for k in info.get("mismatched_keys", ()))
    if missing:
        raise ModelError(f"the weights lack or mis-shape {len(missing)} of the model's parameters (e.g. {missing[0]}); "
                         "they would run with random values", where, "audit a trained model saved with save_pretrained")
    if src.recipe:
        module = recipes.apply(module, src.recipe)
    return module.eval()


def position_limit(module, tokenizer) -> tuple[int, str]:
    """The longest input the model can take, and what sets it: the tokenizer's ``model_max_length`` or the
    model's position embeddings (RoBERTa-style ones start after padding_idx); the engine's default when
    neither says."""
    limits = {}
    tok = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok, int) and 0 < tok < 1_000_000:
        limits["tokenizer model_max_length"] = tok
    positions = getattr(module.config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        table = getattr(getattr(getattr(module, "base_model", None), "embeddings", None), "position_embeddings", None)
        offset = (table.padding_idx + 1) if getattr(table, "padding_idx", None) is not None else 0
        limits["max_position_embeddings"] = positions - offset
    if not limits:
        return ENGINE_MAX_LENGTH, "engine default"
    why = min(limits, key=limits.get)
    return limits[why], why


def check_tokenizer(model: LoadedModel, texts: list[str]) -> None:
    """Refuse a tokenizer that does not fit the model or the benchmark: most tokens unknown (transformers
    builds an empty-vocabulary tokenizer from a bad directory), none at all, or ids past the embeddings."""
    tok = model.tokenizer
    ids = tok(list(texts[:256]), add_special_tokens=False, truncation=True, max_length=model.max_length)["input_ids"]
    total = sum(map(len, ids))
    if total == 0:
        raise ModelError("the tokenizer turns the benchmark's texts into no tokens", str(model.directory),
                         "ship the model's own tokenizer files (tokenizer.save_pretrained)")
    unknown = sum(i == tok.unk_token_id for seq in ids for i in seq) if tok.unk_token_id is not None else 0
    if unknown / total > UNK_LIMIT:
        raise ModelError(f"the tokenizer maps {unknown / total:.0%} of the benchmark's tokens to {tok.unk_token} "
                         f"(its vocabulary has {len(tok)} entries)", str(model.directory),
                         "ship the model's own tokenizer files (tokenizer.save_pretrained)")
    vocab = getattr(model.config, "vocab_size", None)
    largest = max((max(seq) for seq in ids if seq), default=0)
    if isinstance(vocab, int) and largest >= vocab:
        raise ModelError(f"the tokenizer produces token id {largest}, but the model embeds only {vocab} tokens",
                         str(model.directory), "pair the model with the tokenizer it was trained with")


@dataclass(frozen=True)
class Alignment:
    """How the model's classes map onto the suite's labels: ``matrix[i, j]`` is 1 when model class i
    counts for suite label j; a dropped class has an all-zero row (its probability is renormalised away)."""

    matrix: np.ndarray | None  # None for a causal LM: its outputs are the items' choices, by position
    how: str
    mapping: dict[str, str]  # model label -> suite label
    dropped: tuple[str, ...] = ()

    def describe(self) -> dict:
        return {"label_alignment": self.how, "label_mapping": self.mapping, "dropped_labels": list(self.dropped)}


CHOICE_POSITIONS = Alignment(None, "choice positions (a causal LM scores each item's choices)", {})


def align_labels(model_labels: tuple[str, ...], suite_labels: tuple[str, ...], label_map: dict[str, str] | None = None,
                 drop: tuple[str, ...] = (), where: str = "") -> Alignment:
    """Match every model class to a suite label, or refuse.

    An explicit ``label_map`` (model label -> suite label) comes first; then names, ignoring case;
    then, when the model only has generic ``LABEL_i`` names and the counts agree, position. A model
    class the suite does not name is an error unless ``drop`` lists it: silently dropping it would
    renormalise the probabilities and change calibration without a word."""
    label_map, drop = dict(label_map or {}), tuple(drop)
    for m, s in label_map.items():
        if m not in model_labels:
            raise ModelError(f"--label-map names model label '{m}', which the model does not have "
                             f"(model labels: {list(model_labels)})", where, did_you_mean(m, model_labels))
        if s not in suite_labels:
            raise ModelError(f"maps '{m}' to '{s}', which is not a suite label ({list(suite_labels)})",
                             "--label-map", did_you_mean(s, suite_labels))
    for d in drop:
        if d not in model_labels:
            raise ModelError(f"names '{d}', which the model does not have (model labels: {list(model_labels)})",
                             "--drop-label", did_you_mean(d, model_labels))
        if d in label_map:
            raise ModelError(f"'{d}' is both mapped (--label-map) and dropped (--drop-label)", "--drop-label",
                             "give one of the two")
    lower = {s.lower(): s for s in suite_labels}
    generic = len(model_labels) == len(suite_labels) and all(GENERIC_LABEL.match(m) for m in model_labels)
    mapping, rules = {}, []
    for i, m in enumerate(model_labels):
        if m in label_map:
            mapping[m], rule = label_map[m], "label-map"
        elif m in drop:
            continue
        elif m.lower() in lower:
            mapping[m], rule = lower[m.lower()], "by-name"
        elif generic:
            mapping[m], rule = suite_labels[i], "by-position"
        else:
            raise ModelError(f"model label '{m}' is not a suite label ({list(suite_labels)})", where,
                             f"map it with --label-map {m}=SUITE_LABEL, or drop it with --drop-label {m} "
                             "(its probability is then renormalised away)")
        rules.append(rule)
    unmatched = [s for s in suite_labels if s not in mapping.values()]
    if unmatched:
        raise ModelError(f"cannot match suite labels {list(suite_labels)} to model labels {list(model_labels)} "
                         f"(no model class for {unmatched[0]!r})", where,
                         "do not drop a class the suite needs" if drop else
                         "pass --label-map MODEL_LABEL=SUITE_LABEL,... (e.g. POS=positive,NEG=negative)")
    matrix = np.zeros((len(model_labels), len(suite_labels)), dtype=np.float32)
    for m, s in mapping.items():
        matrix[model_labels.index(m), suite_labels.index(s)] = 1.0
    how = "+".join(dict.fromkeys(rules)) + (f", dropped {', '.join(drop)}" if drop else "")
    return Alignment(matrix, how, mapping, drop)
