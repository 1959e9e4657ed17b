"""Does a micro task stand for its real seed? Strategy rankings compared, real vs micro.

The method's claim (SandMLE; MLE-Smith checks the same between generated and human-made tasks):
what works better on the real task works better on its micro descendants. `strategy_ladder`
runs seven solution programs of clearly different strength (`agent.strategies.LADDER`:
constant, 15-nearest neighbours, a depth-4 tree, linear, forest, boosting, tuned) on a task in
the sandbox and grades them; `seed_spearman` compares the ranking on the real task with the mean
ranking over its descendants; `bootstrap_interval` puts an interval on the mean over seeds.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

from sandbox_runner import Limits, Pool
from sandmle_jax.agent import strategies
from sandmle_jax.synth import ladder
from sandmle_jax.tasks.task import Task


def strategy_ladder(task: Task, pool: Pool, limits: Limits,
                    scratch: pathlib.Path) -> dict[str, ladder.RungResult]:
    """Each LADDER strategy's program, run in the sandbox on `task` and graded."""
    scripts = {tier: strategies.solution_code(task, tier, data_dir=str(task.public_dir))
               for tier in strategies.LADDER}
    return ladder.run_scripts(task, scripts, pool, limits, scratch)


def ranks(scores: Mapping[str, float | None], lower_is_better: bool) -> dict[str, float]:
    """1 = best; ties share their mean rank; a strategy without a score ranks below all."""
    names = list(scores)
    worst = np.inf if lower_is_better else -np.inf
    values = np.array([worst if scores[n] is None or not np.isfinite(scores[n]) else scores[n]
                       for n in names], dtype=float)
    order = stats.rankdata(values if lower_is_better else -values, method="average")
    return dict(zip(names, order.tolist()))


def seed_spearman(real: Mapping[str, float | None],
                  micro: Sequence[Mapping[str, float | None]], lower_is_better: bool) -> float:
    """Spearman's rho between the real ranking and the descendants' mean ranking."""
    names = list(real)
    real_ranks = ranks(real, lower_is_better)
    micro_ranks = [ranks({n: m.get(n) for n in names}, lower_is_better) for m in micro]
    mean_micro = [float(np.mean([r[n] for r in micro_ranks])) for n in names]
    rho = stats.spearmanr([real_ranks[n] for n in names], mean_micro).statistic
    return float(rho) if np.isfinite(rho) else 0.0


def bootstrap_interval(values: Sequence[float], seed: int = 0, resamples: int = 10_000,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = rng.choice(values, size=(resamples, len(values)), replace=True).mean(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))
