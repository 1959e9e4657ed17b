"""MLE-bench-style summaries of evaluation episodes.

Rates are computed per seed over tasks, then reported as mean and standard error over seeds
(MLE-bench's convention); with one seed the SEM is taken over tasks instead. Failed episodes
(engine, sandbox or grader errors) count as runs without a valid submission in the rates and are
also counted apart, so infrastructure trouble is visible rather than hidden.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from sandmle_jax.agent.trajectory import Trajectory

RATES = ("valid_submission", "above_median", "any_medal", "bronze_or_better",
         "silver_or_better", "gold")


def indicators(t: Trajectory) -> dict[str, float]:
    info = t.info
    medal = info.medal
    return {
        "valid_submission": float(info.valid_submission),
        "above_median": float(info.above_median),
        "any_medal": float(medal is not None),
        "bronze_or_better": float(medal is not None),
        "silver_or_better": float(medal in ("silver", "gold")),
        "gold": float(medal == "gold"),
    }


def mean_sem(values: Sequence[float]) -> dict[str, float]:
    values = np.asarray(values, dtype=np.float64)
    sem = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0
    return {"mean": float(values.mean()), "sem": sem}


def relative_gain(before: Sequence[float], after: Sequence[float], *, resamples: int = 4000,
                  seed: int = 0) -> tuple[float, float, float]:
    """mean(after) / mean(before) - 1 over paired 0/1 outcomes (episode i played by both
    policies), with a 95% paired percentile bootstrap interval. A resample whose `before` mean
    is 0 has an unbounded gain (+inf; 0 where `after` is 0 too): the interval then says it is
    open instead of printing a huge finite bound. Quantiles are taken without interpolation, so
    an infinite resample never turns a bound into NaN. NaN throughout where `before` never
    succeeds."""
    x, y = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired outcomes need equal 1-d shapes, got {x.shape} and {y.shape}")
    if x.sum() == 0:
        return math.nan, math.nan, math.nan

    def gain(a_mean: np.ndarray, b_mean: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = b_mean / a_mean - 1.0
        return np.where(a_mean > 0, ratio, np.where(b_mean > 0, np.inf, 0.0))

    picks = np.random.default_rng(seed).integers(0, len(x), size=(resamples, len(x)))
    spread = gain(x[picks].mean(axis=1), y[picks].mean(axis=1))
    low, high = np.quantile(spread, [0.025, 0.975], method="inverted_cdf")
    return float(gain(x.mean(), y.mean())), float(low), float(high)


def summarize(results: Sequence[tuple[int, Trajectory]]) -> dict[str, Any]:
    """Overall rates (mean ± SEM), reward and HumanRank, per-task rows, and MLE-bench totals.

    `results` pairs each episode with its seed.
    """
    if not results:
        raise ValueError("nothing to summarise: no episodes")
    trajectories = [t for _, t in results]
    by_seed: dict[int, list[Trajectory]] = collections.defaultdict(list)
    by_task: dict[str, list[Trajectory]] = collections.defaultdict(list)
    for seed, t in results:
        by_seed[seed].append(t)
        by_task[t.info.task_id].append(t)
    overall: dict[str, Any] = {}
    groups = list(by_seed.values()) if len(by_seed) > 1 else [[t] for t in trajectories]
    for rate in RATES:
        overall[rate] = mean_sem([np.mean([indicators(t)[rate] for t in g]) for g in groups])
    overall["reward"] = mean_sem([np.mean([t.reward for t in g]) for g in groups])
    ranks = [t.info.humanrank for t in trajectories if t.info.humanrank is not None]
    if ranks:
        overall["humanrank"] = mean_sem(ranks)
    per_task = []
    for task_id, runs in sorted(by_task.items()):
        scores = [t.info.score for t in runs if t.info.score is not None]
        row = {"task_id": task_id, "runs": len(runs),
               "mean_score": float(np.mean(scores)) if scores else None,
               "mean_reward": float(np.mean([t.reward for t in runs]))}
        row.update({rate: float(np.mean([indicators(t)[rate] for t in runs]))
                    for rate in RATES})
        per_task.append(row)
    terminations = collections.Counter(t.info.termination for t in trajectories)
    medals = collections.Counter(t.info.medal for t in trajectories if t.info.medal)
    return {
        "scaffold": ", ".join(sorted({t.info.scaffold for t in trajectories})),
        "episodes": len(trajectories), "seeds": len(by_seed), "tasks": len(by_task),
        "failed_episodes": sum(t.failed for t in trajectories),
        "terminations": dict(terminations), "overall": overall, "per_task": per_task,
        "mlebench": {  # MLE-bench's summary keys, summed over runs
            "total_runs": len(trajectories),
            "total_valid_submissions": sum(t.info.valid_submission for t in trajectories),
            "total_medals": sum(medals.values()), "total_gold_medals": medals["gold"],
            "total_silver_medals": medals["silver"], "total_bronze_medals": medals["bronze"],
            "total_above_median": sum(t.info.above_median for t in trajectories)},
    }


def rates_line(summary: dict[str, Any]) -> str:
    """One line: the overall rates and reward, and how many episodes they stand on."""
    o = summary["overall"]
    failed = f", {summary['failed_episodes']} failed" if summary["failed_episodes"] else ""
    return (f"valid {o['valid_submission']['mean']:.0%}, above median "
            f"{o['above_median']['mean']:.0%}, medal {o['any_medal']['mean']:.0%}, gold "
            f"{o['gold']['mean']:.0%}, reward {o['reward']['mean']:.3f} "
            f"({summary['episodes']} episodes{failed})")


def comparison_table(summaries: dict[str, dict[str, Any]]) -> str:
    """Runs side by side (one row each, e.g. reference, SFT, GRPO, or one policy in two
    scaffolds) on the same tasks; HumanRank too where every run has it."""
    keys = ["valid_submission", "above_median", "any_medal", "gold", "reward"]
    heads = ["valid", "> median", "medal", "gold", "reward"]
    if all("humanrank" in s["overall"] for s in summaries.values()):
        keys.append("humanrank")
        heads.append("humanrank")
    width = max([12] + [len(name) + 2 for name in summaries])
    lines = [f"{'run':<{width}}" + "".join(f"{h:>15}" for h in heads)]
    for name, summary in summaries.items():
        o = summary["overall"]
        lines.append(f"{name:<{width}}" + "".join(
            f"{o[k]['mean']:>8.3f} ± {o[k]['sem']:.2f}" for k in keys))
    return "\n".join(lines)


def format_table(summary: dict[str, Any]) -> str:
    """A short human-readable block: overall rates, then one line per task."""
    o = summary["overall"]
    lines = [f"{summary['episodes']} episodes over {summary['tasks']} tasks x "
             f"{summary['seeds']} seeds ({summary['failed_episodes']} failed)"]
    for key in ("valid_submission", "above_median", "any_medal", "gold", "reward"):
        lines.append(f"  {key:<17} {o[key]['mean']:.3f} ± {o[key]['sem']:.3f}")
    if "humanrank" in o:
        lines.append(f"  {'humanrank':<17} {o['humanrank']['mean']:.3f} ± {o['humanrank']['sem']:.3f}")
    lines.append(f"  {'task':<32} {'valid':>6} {'medal':>6} {'score':>9}")
    for row in summary["per_task"]:
        score = "-" if row["mean_score"] is None else f"{row['mean_score']:.4g}"
        lines.append(f"  {row['task_id'][:32]:<32} {row['valid_submission']:>6.2f} "
                     f"{row['any_medal']:>6.2f} {score:>9}")
    return "\n".join(lines)
