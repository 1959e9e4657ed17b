"""PNG plots of a run: reward and medal-rate curves from metrics.jsonl, and an eval bar chart."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only; never a display
import matplotlib.pyplot as plt  # noqa: E402

from sandmle_jax.monitoring.metrics_writer import read_metrics  # noqa: E402


def plot_curves(logdir: str | os.PathLike, out_path: str | os.PathLike,
                keys: Sequence[str]) -> list[str]:
    """One line per metric key found in the run's metrics.jsonl; returns the keys plotted."""
    rows = list(read_metrics(logdir))
    fig, ax = plt.subplots(figsize=(7, 4))
    plotted = []
    for key in keys:
        points = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
        if points:
            steps, values = zip(*points)
            ax.plot(steps, values, marker="o", markersize=3, label=key)
            plotted.append(key)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    if plotted:
        ax.legend()
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return plotted


RATES = ("valid_submission", "above_median", "any_medal", "gold")


def plot_rates(rows: Mapping[str, Mapping[str, float]], out_path: str | os.PathLike,
               rates: Sequence[str] = RATES) -> None:
    """Grouped bars: one group per rate, one bar per policy (e.g. "SFT", "GRPO")."""
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / max(1, len(rows))
    for i, (name, values) in enumerate(rows.items()):
        xs = [j + i * width for j in range(len(rates))]
        ax.bar(xs, [values.get(r, 0.0) for r in rates], width=width, label=name)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(rates))], rates)
    ax.set_ylim(0, 1)
    ax.set_ylabel("rate")
    ax.legend()
    fig.tight_layout()
    pathlib.Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
