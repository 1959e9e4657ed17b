"""The DNA conformance check: the procedural Developer's data pass it on every shipped seed (no
false rejections), and data that depart from their DNA are named, one reason per departure."""

import dataclasses

import numpy as np
import pytest

from sandmle_jax.synth import data_check, dna as dna_lib, seeds as seeds_lib, synthesis

SEEDS = seeds_lib.load_seeds()


@pytest.mark.parametrize("seed_id", sorted(SEEDS))
def test_procedural_data_hold_their_dna(seed_id):
    for draw in range(3):
        dna = dna_lib.mutate(dna_lib.extract_dna(SEEDS[seed_id]), np.random.default_rng(draw),
                             draw)
        assert data_check.mismatches(dna, synthesis.synthesize(dna)) == [], dna


@pytest.fixture(scope="module")
def tabular():
    """A binary tabular task asking for 10% missing cells and label noise."""
    base = dna_lib.extract_dna(SEEDS["tabular_binary_auc"])
    dna = dataclasses.replace(base, missing_rate=0.1, noise=0.5, n_train=120,
                              n_test=dna_lib.test_size(120))
    return dna, synthesis.synthesize(dna)


def test_departures_are_named(tabular):
    dna, data = tabular
    assert data_check.mismatches(dna, data) == []
    filled = data.train.apply(lambda c: c.fillna(0 if c.dtype.kind in "fi" else "none"))
    one_class = filled.assign(**{data.baseline.train_targets[0]: 1})
    noiseless = data.gold.assign(**{c: data.answers[c].to_numpy()
                                    for c in data.target_columns})
    cases = {
        "empty cells": dataclasses.replace(data, train=filled),
        "holds 1 classes": dataclasses.replace(data, train=one_class),
        "rows; the DNA asks for": dataclasses.replace(data, test=data.test.iloc[:-5]),
        "feature_kind 'text'": dataclasses.replace(
            data, baseline=dataclasses.replace(data.baseline, feature_kind="text")),
        "none of the DNA's noise": dataclasses.replace(data, gold=noiseless),
    }
    for why, broken in cases.items():
        problems = data_check.mismatches(dna, broken)
        assert any(why in p for p in problems), (why, problems)
