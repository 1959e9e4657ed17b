"""The procedural writer's descriptions: several layouts, each saying what an agent needs."""

import collections

import numpy as np
import pytest

from sandmle_jax.synth import domains, dna as dna_lib, seeds, synthesis, writer

SEEDS = seeds.load_seeds()


def _drafts(seed_id, count):
    for seed in range(count):
        dna = dna_lib.mutate(dna_lib.extract_dna(SEEDS[seed_id]), np.random.default_rng(seed),
                             seed=seed)
        yield dna, synthesis.synthesize(dna)


@pytest.mark.parametrize("seed_id", ["tabular_binary_auc", "tabular_multiclass_accuracy",
                                     "tabular_regression_mae"])
def test_every_style_states_metric_direction_inputs_target_and_columns(seed_id):
    first_lines = collections.Counter()
    for dna, data in _drafts(seed_id, 8):
        text = writer.describe(dna, domains.get_domain(dna.domain), data)
        direction = "lower is better" if dna.lower_is_better else "higher is better"
        assert dna.metric in text and direction in text
        assert all(f"`{c}`" in text for c in data.baseline.feature_columns)
        assert all(t in text for t in data.baseline.train_targets)
        assert str(len(data.train)) in text
        assert f"`{data.baseline.id_column}`" in text
        first_lines[text.splitlines()[2][:7]] += 1  # the line under the title: the layout
    assert len(first_lines) == len(writer.STYLES)


def test_a_task_seed_always_gets_the_same_text():
    """Generation is reproducible: the layout is drawn from the task's seed, not at random."""
    for dna, data in _drafts("tabular_binary_mcc", 3):
        domain = domains.get_domain(dna.domain)
        assert writer.describe(dna, domain, data) == writer.describe(dna, domain, data)
        assert (writer.STYLES[dna.seed % len(writer.STYLES)] in ("brief", "terse")) == (
            "## " not in writer.describe(dna, domain, data))
