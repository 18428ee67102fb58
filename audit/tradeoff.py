"""The summary's one-line answer to "was the compression worth it?": gains next to costs."""

from __future__ import annotations


def _points(x: float) -> str:
    return f"{100 * x:+.1f}"


def line(sections: dict, model: dict | None) -> str | None:
    """E.g. "int8: 1.6x throughput, 0.64x weight memory; -1.8 pts accuracy (95% CI -3.2 to -0.2), 5.3% flips,
    ECE -0.004"; None without a baseline (nothing to trade against)."""
    ok = {name: s for name, s in sections.items() if s.get("status") == "ok"}
    if not any("baseline_metrics" in s for s in ok.values()):
        return None
    gains, costs = [], []
    if "efficiency" in ok and ok["efficiency"]["metrics"].get("speedup") is not None:
        m = ok["efficiency"]["metrics"]
        gains.append(f"{m['speedup']:.2f}x throughput (rounds {m['speedup_min']:.2f}-{m['speedup_max']:.2f}), "
                     f"{m['latency_speedup']:.2f}x batch-1 latency speed, {m['weight_memory_ratio']:.2f}x weight memory")
    if "accuracy" in ok and "deltas" in ok["accuracy"]:
        d, ci = ok["accuracy"]["deltas"]["accuracy"], (ok["accuracy"].get("delta_ci") or {}).get("accuracy")
        level = ok["accuracy"]["params"].get("confidence", 0.95)
        costs.append(f"{_points(d)} pts accuracy" + (f" ({level:.0%} CI {_points(ci[0])} to {_points(ci[1])})" if ci else ""))
    if "comparison" in ok:
        costs.append(f"{ok['comparison']['metrics']['flip_rate']:.1%} flips")
    if "calibration" in ok and "ece" in (ok["calibration"].get("deltas") or {}):
        costs.append(f"ECE {ok['calibration']['deltas']['ece']:+.3f}")
    label = ((model or {}).get("compression") or {}).get("method") or "model"
    return f"{label}: " + "; ".join(p for p in (", ".join(gains), ", ".join(costs)) if p)
