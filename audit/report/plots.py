"""Report figures as self-contained PNG data URIs (matplotlib, Agg backend: no display, no network)."""

from __future__ import annotations

import base64
import io

COLORS = {"model": "#d95f02", "baseline": "#1b9e77"}


def _figure(width: float = 6.0, height: float = 3.4):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=100)


def _data_uri(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def reliability(diagrams: dict) -> str:
    """Accuracy against confidence per bin, model and baseline overlaid, with the diagonal."""
    fig, ax = _figure(4.6, 4.0)
    ax.plot([0, 1], [0, 1], color="#999", linestyle=":", label="perfect calibration")
    for role, d in diagrams.items():
        before = d["before"]
        ax.plot(before["confidence"], before["accuracy"], marker="o", color=COLORS.get(role), label=role)
    ax.set(xlabel="confidence", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1), title="Reliability (15 bins)")
    ax.legend(loc="upper left", fontsize=8)
    return _data_uri(fig)


def grouped_bars(categories: list[str], values: dict[str, list[float | None]], title: str, ylabel: str = "accuracy") -> str:
    """One group of bars per category, one bar per role."""
    import numpy as np

    fig, ax = _figure(max(4.5, 0.9 * len(categories) + 2), 3.4)
    x = np.arange(len(categories))
    width = 0.8 / max(len(values), 1)
    for k, (role, ys) in enumerate(values.items()):
        ax.bar(x + k * width - 0.4 + width / 2, [y if y is not None else 0 for y in ys], width, label=role,
               color=COLORS.get(role))
    ax.set_xticks(x, categories, rotation=30, ha="right", fontsize=8)
    ax.set(ylabel=ylabel, ylim=(0, 1), title=title)
    ax.legend(fontsize=8)
    return _data_uri(fig)


def severity_lines(families: list[str], severities: list[int], values: dict[str, dict[str, list[float]]]) -> str:
    """Accuracy against corruption severity, one line per family; model solid, baseline dashed."""
    fig, ax = _figure(6.0, 3.6)
    cmap = __import__("matplotlib").colormaps["tab10"]
    for role, by_family in values.items():
        for k, family in enumerate(families):
            ax.plot(severities, by_family[family], color=cmap(k), linestyle="-" if role == "model" else "--",
                    marker="o", label=f"{family} ({role})")
    ax.set(xlabel="severity", ylabel="accuracy", xticks=severities, title="Accuracy under corruption")
    ax.legend(fontsize=6, ncol=2)
    return _data_uri(fig)
