"""Metric variation: every listed pairing makes a gradable task, and the generator applies it."""

import collections
import pathlib
import runpy

import numpy as np
import pytest

from sandmle_jax.synth import dna as dna_lib
from sandmle_jax.synth import metric_variants, pipeline, seeds, synthesis
from sandmle_jax.tasks import metrics

SEEDS = seeds.load_seeds()
SYNTH_CONFIG = pathlib.Path(__file__).resolve().parents[2] / "configs" / "synth.py"
# One shipped seed for each listed (task type, kind of prediction).
_SEED_OF = {("binary", metrics.Kind.LABEL): "tabular_binary_accuracy",
            ("binary", metrics.Kind.PROBABILITY): "tabular_binary_auc",
            ("multiclass", metrics.Kind.LABEL): "tabular_multiclass_accuracy",
            ("multiclass", metrics.Kind.CLASS_PROBABILITIES): "text_multiclass_logloss",
            ("regression", metrics.Kind.VALUE): "tabular_regression_rmse"}


def test_every_listed_pairing_has_a_seed_here():
    assert set(_SEED_OF) == set(metric_variants.VARIANTS)


@pytest.mark.parametrize("pairing,metric", [(p, m) for p, ms in metric_variants.VARIANTS.items()
                                            for m in ms])
def test_each_variant_grades_the_heads_gold_above_the_constant_sample(pairing, metric):
    seed = SEEDS[_SEED_OF[pairing]]
    draws = (metric_variants.vary_metric(seed, s) for s in range(500))
    variant = next(v for v in draws if v.metric == metric)
    assert metrics.get_metric(metric).kind == pairing[1]
    dna = dna_lib.mutate(dna_lib.extract_dna(variant), np.random.default_rng(5), seed=5)
    assert (dna.metric, dna.lower_is_better) == (metric, metrics.get_metric(metric)
                                                 .lower_is_better)
    data = synthesis.synthesize(dna)
    cols = list(data.target_columns)
    grade = metrics.get_metric(metric)
    gold = grade(data.answers[cols].to_numpy(), data.gold[cols].to_numpy())
    sample = grade(data.answers[cols].to_numpy(), data.sample[cols].to_numpy())
    assert (gold < sample) if dna.lower_is_better else (gold > sample)


def test_draws_cover_the_alternatives_evenly_and_repeat_by_task_seed():
    seed = SEEDS["tabular_regression_rmse"]
    drawn = collections.Counter(metric_variants.vary_metric(seed, s).metric for s in range(600))
    assert set(drawn) == set(metric_variants.alternatives(seed))
    assert min(drawn.values()) > 600 / len(drawn) * 0.7
    assert [metric_variants.vary_metric(seed, s).metric for s in range(20)] == \
        [metric_variants.vary_metric(seed, s).metric for s in range(20)]


def test_seeds_without_interchangeable_metrics_keep_their_own():
    for seed_id in ("tabular_multitarget_rmsle", "tabular_ranking_map", "text_ordinal_qwk",
                    "text_multilabel_auc"):
        seed = SEEDS[seed_id]
        assert metric_variants.alternatives(seed) == (seed.metric,)
        assert metric_variants.vary_metric(seed, 7) == seed


def test_generator_plans_varied_metrics_only_when_asked(tmp_path):
    config = runpy.run_path(str(SYNTH_CONFIG))["get_config"]()
    config.seeds = "tabular_binary_mcc,tabular_regression_r2"
    plain = pipeline.Generator(config, tmp_path / "plain")
    assert {plain.plan(i)[1].metric for i in range(12)} == {"mcc", "r2"}
    config.vary_metric = True
    varied = pipeline.Generator(config, tmp_path / "varied")
    planned = [varied.plan(i) for i in range(12)]
    assert len({seed.metric for _, seed, _ in planned}) > 4
    for (task_id, seed, task_seed), (plain_id, _, plain_seed) in zip(
            planned, (plain.plan(i) for i in range(12))):
        assert (task_id, task_seed) == (plain_id, plain_seed)  # the same tasks, regraded
        assert seed.metric in metric_variants.alternatives(SEEDS[seed.id])
