"""Metric variation: a new task may be graded by another metric that reads the same predictions.

Real competitions grade one kind of prediction with many metrics (a label by accuracy, F1 or
MCC; a value by RMSE, RMSLE or Pearson). A policy trained on the one metric name of each seed
meets real tasks' names it never saw and misreads them (benchmarks/RESULTS.md, "rl: one tiny
policy over three task families"). Varying the metric within its kind keeps the seed's task type,
its submission layout and what the reference programs write; only the grade and its direction
change. The heads and graders accept every pairing listed here. Measured once: a tiny policy
trained on varied metrics did no better on real competitions (RESULTS.md, session 16), so the
recipes leave it off; a policy that can read metric names is what it is for.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sandmle_jax.synth.seeds import Seed
from sandmle_jax.tasks import metrics as metrics_lib

# Interchangeable metrics, by (task type, kind of prediction). Left out: binary `f1` (it reads
# 0/1 labels; generated binary labels are words), `mape` (undefined on zero answers), and
# multi-column and ranking metrics (one per layout).
_LABEL = ("accuracy", "balanced_accuracy", "f1_macro", "f1_micro", "mcc")
VARIANTS: dict[tuple[str, metrics_lib.Kind], tuple[str, ...]] = {
    ("binary", metrics_lib.Kind.LABEL): _LABEL,
    ("binary", metrics_lib.Kind.PROBABILITY): ("roc_auc", "log_loss"),
    ("multiclass", metrics_lib.Kind.LABEL): _LABEL,
    ("multiclass", metrics_lib.Kind.CLASS_PROBABILITIES): ("multiclass_log_loss",
                                                          "multiclass_roc_auc"),
    ("regression", metrics_lib.Kind.VALUE): ("rmse", "mae", "r2", "rmsle", "pearson",
                                             "spearman"),
}


def alternatives(seed: Seed) -> tuple[str, ...]:
    """The metrics a descendant of `seed` may be graded by (the seed's own where its metric is
    not listed: multi-target regression, multilabel, ordinal and ranking seeds)."""
    choices = VARIANTS.get((seed.task_type, metrics_lib.get_metric(seed.metric).kind), ())
    return choices if seed.metric in choices else (seed.metric,)


def vary_metric(seed: Seed, task_seed: int) -> Seed:
    """`seed` graded by one of its alternatives, drawn uniformly from the task's own seed."""
    choices = alternatives(seed)
    # A stream of its own: the other mutations' draws stay as they were without variation.
    rng = np.random.default_rng([task_seed, 0x3E7])
    return dataclasses.replace(seed, metric=choices[int(rng.integers(len(choices)))])
