"""What compression bought: parameters, non-zeros, weight bytes, peak memory, batch-1 latency per item and
batched throughput in items and tokens per second (for a causal LM: prefill tokens, the context and
choices it reads; for generation: prompt and generated tokens, with time to first token, prefill and
decode rates apart), with an uncached engine, the same inputs, threads and device, model and baseline
timed in alternating order; and energy where NVML can measure it."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import numpy as np

from audit import hardware
from audit.context import ProbeContext, ProbeResult
from audit.contract import Estimate
from audit.metrics.stats import ratio_interval
from audit.causal_lm import ChoiceContexts, Continuations
from audit.engine import Engine
from audit.generation import Query
from audit.footprint import count_parameters, disk_bytes
from audit.models import CAUSAL_LM
from audit.suite import GENERATE

SPEC = {
    "scores_items": False,
    "tasks": ["classification", "multiple_choice", "perplexity", "last_word", "generate"],
    "params": {
        "latency_sample": {"type": "int", "default": 50, "min": 1},
        "throughput_sample": {"type": "int", "default": 512, "min": 1},
        "warmup": {"type": "int", "default": 5, "min": 0},
        "rounds": {"type": "int", "default": 3, "min": 1, "max": 100},
        "max_new_tokens": {"type": "int", "default": None, "min": 1, "nullable": True},
        "confidence": {"type": "float", "default": 0.95, "above": 0, "below": 1},
    },
    "metrics": {
        "params": {"better": "lower"},
        "nonzero_params": {"better": "lower"},
        "sparsity": {"better": "none"},
        "disk_bytes": {"better": "lower"},
        "weight_bytes": {"better": "lower"},
        "peak_rss_bytes": {"better": "lower", "varies": True},
        "peak_gpu_bytes": {"better": "lower", "varies": True},
        "latency_p50_ms": {"better": "lower", "varies": True},
        "latency_p95_ms": {"better": "lower", "varies": True},
        "throughput_items_per_s": {"varies": True},
        "throughput_tokens_per_s": {"varies": True},
        "time_to_first_token_ms": {"better": "lower", "varies": True},
        "prefill_tokens_per_s": {"varies": True},
        "decode_tokens_per_s": {"varies": True},
        "energy_j_per_1k": {"better": "lower", "varies": True},
        "speedup": {"vs_baseline": True, "varies": True, "ci": True},
        "speedup_min": {"vs_baseline": True, "varies": True},
        "speedup_max": {"vs_baseline": True, "varies": True},
        "latency_speedup": {"vs_baseline": True, "varies": True, "ci": True},
        "weight_memory_ratio": {"better": "lower", "vs_baseline": True},
        "disk_ratio": {"better": "lower", "vs_baseline": True},
    },
}


def run(ctx: ProbeContext, *, latency_sample: int, throughput_sample: int, warmup: int, rounds: int,
        max_new_tokens: int | None, confidence: float) -> ProbeResult:
    import torch

    if max_new_tokens is not None and ctx.suite.task.kind != GENERATE:
        return ProbeResult({}, skipped="max_new_tokens caps the timed generations of a generate suite, and this "
                                       f"is a {ctx.suite.task.kind} suite (remove it)")

    latency_texts = ctx.eval.sample(latency_sample, ctx.seed).inputs
    batch_texts = ctx.eval.sample(throughput_sample, ctx.seed + 1).inputs
    scorers = [s for s in (ctx.model, ctx.baseline) if s is not None]
    runs = {s.role: Runner(s, Engine(s.engine.config), max_new_tokens, (latency_texts[:warmup], batch_texts[:64]))
            for s in scorers}
    for r in range(rounds):  # A B, B A, A B, ...: drift and noise fall on both models alike
        for run in (list(runs.values()) if r % 2 == 0 else list(runs.values())[::-1]):
            run.time_round(latency_texts, batch_texts)

    metrics = {role: run.metrics(batch_texts) for role, run in runs.items()}
    model = metrics["model"]
    details = {"rounds": rounds, "order": "alternating (A B, B A, ...)", "latency_n": len(latency_texts),
               "throughput_n": len(batch_texts), "threads": torch.get_num_threads(), "torch": torch.__version__,
               "devices": {role: run.describe() for role, run in runs.items()},
               "hardware": hardware.label(hardware.describe(next(iter(runs.values())).device)),
               "weight_bytes_by_dtype": {role: run.footprint["weight_bytes_by_dtype"] for role, run in runs.items()},
               "throughput_seconds": {role: run.batch_seconds for role, run in runs.items()},
               "peak_rss_note": "process-wide peak while this model ran (one model's weights are in memory at a time)",
               "energy": {role: run.energy_note for role, run in runs.items()}}
    if ctx.baseline is None:
        return ProbeResult(model, details=details)
    base = metrics["baseline"]
    ratios = np.array(runs["baseline"].batch_seconds) / np.array(runs["model"].batch_seconds)
    latency_ratios = [np.median(b) / np.median(m) for b, m in zip(runs["baseline"].round_latencies(),
                                                                  runs["model"].round_latencies())]
    if ctx.model.model.compression and model["disk_bytes"] == base["disk_bytes"]:
        details["disk_note"] = "the compressed directory stores the base weights plus a recipe (audit compress)"
    details["speedup_rounds"] = ratios.tolist()
    speedup, latency_speedup = (timing_estimate(r, confidence, n) for r, n in
                                ((ratios, len(batch_texts)), (latency_ratios, len(latency_texts))))
    model |= {"speedup": speedup, "speedup_min": float(ratios.min()), "speedup_max": float(ratios.max()),
              "latency_speedup": latency_speedup,
              "weight_memory_ratio": model["weight_bytes"] / base["weight_bytes"],
              "disk_ratio": model["disk_bytes"] / base["disk_bytes"] if base["disk_bytes"]
              else Estimate(None, note="the baseline has no weight files on disk")}
    return ProbeResult(model, base, details)


def timing_estimate(ratios, confidence: float, n: int) -> Estimate:
    """A speedup over the alternated rounds: their geometric mean and its t-interval (none from one round)."""
    value, ci = ratio_interval(ratios, confidence)
    return Estimate(value, ci, n=n, note=None if ci else "one timing round gives no interval (raise rounds)")


class Runner:
    """Times one model through an uncached engine and records its footprint. What is timed is what the suite
    scores: class probabilities, multiple-choice items (continuations), running text (rolling windows) or
    generations (greedy, up to ``max_new_tokens``, default the suite's)."""

    def __init__(self, scorer, engine: Engine, max_new_tokens: int | None = None, warm_up: tuple[list, list] = ([], [])):
        self.model, self.engine = scorer.model, engine
        self.warm_up_inputs = warm_up  # (single items, a batch) scored untimed whenever the weights were just loaded
        self.scorer = scorer
        spec = scorer.generation
        self.generation = None if spec is None else \
            dataclasses.replace(spec, max_new_tokens=min(max_new_tokens or spec.max_new_tokens, spec.max_new_tokens))
        self.first_token: list[float] = []  # generation: batch-1 time to the first token
        self.prefill: list[tuple[float, int]] = []  # generation: (seconds, prompt tokens) of the batch's prefill
        self.generated: list[tuple[float, int]] = []  # generation: (seconds, generated tokens) of the whole batch
        self.device = engine.device
        self.footprint = None  # counted when the weights are first in memory
        self.latencies: list[float] = []
        self.batch_seconds: list[float] = []
        self.batch_tokens = 0
        self.peak_rss = self.peak_gpu = 0
        self.joules: list[float] = []
        self.energy_note = "not measured: needs a CUDA device and nvidia-ml-py" if self.device.type == "cuda" \
            else f"not measured: no power meter on {self.device.type}"

    def score(self, inputs: list, max_new_tokens: int | None = None) -> None:
        if inputs and isinstance(inputs[0], Query):
            spec = dataclasses.replace(self.generation, max_new_tokens=max_new_tokens or self.generation.max_new_tokens)
            self.engine.generate(self.model, [self.scorer.prompt(q) for q in inputs], spec, self.scorer.chat is None)
        elif inputs and isinstance(inputs[0], (Continuations, ChoiceContexts)):
            self.engine.continuation_scores(self.model, inputs)
        elif self.model.kind == CAUSAL_LM:
            self.engine.token_logprobs(self.model, inputs)
        else:
            self.engine.predict_proba(self.model, inputs)

    def describe(self) -> dict:
        import torch

        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else hardware.cpuinfo()[0]
        rows, tokens = self.engine.batching(self.device, self.model.kind)
        return {"type": self.device.type, "name": name, "batch_rows": rows, "batch_tokens": tokens}

    def round_latencies(self) -> list[list[float]]:
        """The batch-1 latencies, one list per round."""
        per = len(self.latencies) // max(len(self.batch_seconds), 1)
        return [self.latencies[i * per:(i + 1) * per] for i in range(len(self.batch_seconds))]

    def ready(self) -> None:
        """Make the weights resident (one model is in memory at a time: a load is never timed), count their
        footprint the first time, and after a load warm them up untimed, so a round never times a first call's
        setup. Rounds alternate A B, B A, ..., so each model loads about once per two rounds."""
        if self.footprint is not None and self.model.resident:
            return
        if self.footprint is None:
            self.footprint = count_parameters(self.model.module)
        single, batch = self.warm_up_inputs
        for item in single:
            self.score([item])
        self.score(batch)

    def time_round(self, single: list, batch: list) -> None:
        self.ready()
        for item in single:
            t0 = time.perf_counter()
            self.score([item])
            self.latencies.append(time.perf_counter() - t0)
        if self.generation is not None:
            self.time_phases(single, batch)
        tokens = self.engine.stats.tokens
        with PeakMemory(self.device) as mem, PowerMeter(self.device) as power:
            t0 = time.perf_counter()
            self.score(batch)
            self.batch_seconds.append(time.perf_counter() - t0)
        self.batch_tokens = self.engine.stats.tokens - tokens
        self.peak_rss, self.peak_gpu = max(self.peak_rss, mem.peak_rss), max(self.peak_gpu, mem.peak_gpu)
        if power.joules is not None:
            self.joules.append(power.joules)
            self.energy_note = "NVML board power integrated over the throughput runs"

    def time_phases(self, single: list, batch: list) -> None:
        """Generation: time to first token (batch 1), and the batch's prefill (one new token) apart from its
        whole generation, so prefill and decode rates are told apart."""
        for item in single:
            t0 = time.perf_counter()
            self.score([item], max_new_tokens=1)
            self.first_token.append(time.perf_counter() - t0)
        stats = self.engine.stats
        tokens, t0 = stats.tokens, time.perf_counter()
        self.score(batch, max_new_tokens=1)
        self.prefill.append((time.perf_counter() - t0, stats.tokens - tokens - len(batch)))
        generated, t0 = stats.generated_tokens, time.perf_counter()
        self.score(batch)
        self.generated.append((time.perf_counter() - t0, stats.generated_tokens - generated))

    def phase_metrics(self) -> dict:
        if self.generation is None:
            why = "only generation has a first token and a decode phase"
            return {k: Estimate(None, note=why) for k in ("time_to_first_token_ms", "prefill_tokens_per_s",
                                                          "decode_tokens_per_s")}
        prefill_s, prefill_tokens = (float(np.median(x)) for x in zip(*self.prefill))
        whole_s, generated = (float(np.median(x)) for x in zip(*self.generated))
        decode_s = whole_s - prefill_s
        return {"time_to_first_token_ms": 1000 * float(np.percentile(self.first_token, 50)),
                "prefill_tokens_per_s": prefill_tokens / prefill_s,
                "decode_tokens_per_s": generated / decode_s if decode_s > 0 and generated else Estimate(None, note=(
                    "the batch generated no token after its first" if not generated else "the whole generation "
                    "took no longer than its prefill alone (timing noise: raise rounds or max_new_tokens)"))}

    def metrics(self, batch: list) -> dict:
        fp = self.footprint
        seconds = float(np.median(self.batch_seconds))
        return {"params": float(fp["params"]), "nonzero_params": float(fp["nonzero_params"]),
                "sparsity": 1 - fp["nonzero_params"] / fp["params"], "disk_bytes": float(disk_bytes(self.model.files)),
                "weight_bytes": float(fp["weight_bytes"]), "peak_rss_bytes": float(self.peak_rss),
                "peak_gpu_bytes": float(self.peak_gpu) if self.device.type == "cuda" else Estimate(None, note="no GPU"),
                "latency_p50_ms": 1000 * float(np.percentile(self.latencies, 50)),
                "latency_p95_ms": 1000 * float(np.percentile(self.latencies, 95)),
                "throughput_items_per_s": len(batch) / seconds, "throughput_tokens_per_s": self.batch_tokens / seconds,
                "energy_j_per_1k": 1000 * float(np.median(self.joules)) / len(batch) if self.joules
                else Estimate(None, note=self.energy_note)} | self.phase_metrics()


class Sampler:
    """Calls ``read()`` every ``interval`` seconds on a background thread while the block runs."""

    interval = 0.005
    active = True

    def __enter__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        if self.active:
            self._thread.start()
        return self

    def _loop(self):
        while not self._stop.is_set():
            self.read()
            self._stop.wait(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        if self.active:
            self._thread.join()
            self.read()


class PeakMemory(Sampler):
    """Peak process RSS (sampled) and, on CUDA, peak allocated GPU memory (exact, from torch)."""

    def __init__(self, device):
        import psutil
        import torch

        self.device, self.process, self.peak_rss, self.peak_gpu = device, psutil.Process(), 0, 0
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

    def read(self):
        import torch

        self.peak_rss = max(self.peak_rss, self.process.memory_info().rss)
        if self.device.type == "cuda":
            self.peak_gpu = torch.cuda.max_memory_allocated(self.device)


class PowerMeter(Sampler):
    """Energy from NVML power samples (trapezoid rule); ``joules`` stays None off CUDA or without NVML."""

    interval = 0.02

    def __init__(self, device):
        self.joules, self._samples, self._handle, self.active = None, [], None, False
        if device.type != "cuda":
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(device.index or 0)
            self._power = pynvml.nvmlDeviceGetPowerUsage
        except Exception:  # no nvidia-ml-py, or no driver access: energy is "not measured"
            self._handle = None
        self.active = self._handle is not None

    def read(self):
        if self._handle is not None:
            self._samples.append((time.perf_counter(), self._power(self._handle) / 1000.0))

    def __exit__(self, *exc):
        super().__exit__(*exc)
        if len(self._samples) >= 2:
            t, watts = np.array(self._samples).T
            self.joules = float(np.trapezoid(watts, t))
