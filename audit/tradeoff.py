"""The summary's one-line answer to "was the compression worth it?": gains next to costs."""

from __future__ import annotations


def _points(x: float) -> str:
    return f"{100 * x:+.1f}"


def _value(section: dict, name: str, part: str = "metrics"):
    return ((section.get(part) or {}).get(name) or {}).get("value")


def line(sections: dict, model: dict | None, baseline: dict | None = None) -> str | None:
    """E.g. "int8: 1.6x throughput, 0.64x weight memory; -1.8 pts accuracy (95% CI -3.2 to -0.2), 5.3% flips,
    ECE -0.004"; None without a baseline (nothing to trade against)."""
    ok = {name: s for name, s in sections.items() if s.get("status") == "ok"}
    if not any("baseline_metrics" in s for s in ok.values()):
        return None
    gains, costs = [], []
    eff = ok.get("efficiency", {})
    if _value(eff, "speedup") is not None:
        ci = eff["metrics"]["speedup"].get("ci")
        spread = f"{ci[0]:.2f}-{ci[1]:.2f}, {eff['params']['confidence']:.0%} CI" if ci else \
            f"rounds {_value(eff, 'speedup_min'):.2f}-{_value(eff, 'speedup_max'):.2f}"
        gains.append(f"{_value(eff, 'speedup'):.2f}x throughput ({spread}, on {eff['details']['hardware']}), "
                     f"{_value(eff, 'latency_speedup'):.2f}x batch-1 latency speed, "
                     f"{_value(eff, 'weight_memory_ratio'):.2f}x weight memory")
    acc = ok.get("accuracy", {})
    delta = (acc.get("deltas") or {}).get("accuracy")
    if delta is not None:
        ci, level = delta.get("ci"), acc["params"].get("confidence", 0.95)
        costs.append(f"{_points(delta['value'])} pts accuracy"
                     + (f" ({level:.0%} CI {_points(ci[0])} to {_points(ci[1])})" if ci else ""))
    if _value(ok.get("comparison", {}), "flip_rate") is not None:
        costs.append(f"{_value(ok['comparison'], 'flip_rate'):.1%} flips")
    if _value(ok.get("calibration", {}), "ece", "deltas") is not None:
        costs.append(f"ECE {_value(ok['calibration'], 'ece', 'deltas'):+.3f}")
    if _value(ok.get("perplexity", {}), "kl_mean") is not None:
        costs.append(f"KL {_value(ok['perplexity'], 'kl_mean'):.4f} nats/token, top-1 agreement "
                     f"{_value(ok['perplexity'], 'top1_agreement'):.1%}")
    label = ((model or {}).get("compression") or {}).get("method") or "model"
    dtypes = [(d or {}).get("dtype") for d in (model, baseline)]
    differ = [f"model in {dtypes[0]}, baseline in {dtypes[1]}"] if None not in dtypes and dtypes[0] != dtypes[1] else []
    return f"{label}: " + "; ".join(p for p in (", ".join(gains), ", ".join(costs), *differ) if p)
