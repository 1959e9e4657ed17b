"""Seeds, domains and task DNA: coverage, validation, mutation ranges, the full-scale twin."""

import dataclasses
import json

import numpy as np
import pytest
from conftest import write_tabular_task

from sandmle_jax.synth import dna as dna_lib
from sandmle_jax.synth import domains, seed_dna, seeds
from sandmle_jax.tasks import metrics


def test_shipped_seeds_cover_the_issue_matrix():
    shipped = seeds.load_seeds()
    assert len(shipped) >= 12
    assert {s.modality for s in shipped.values()} == {"tabular", "text", "image", "timeseries",
                                                      "multimodal", "graph", "audio"}
    task_types = {s.task_type for s in shipped.values()}
    assert {"binary", "multiclass", "multilabel", "regression"} <= task_types
    assert {"ranking", "forecasting"} & task_types
    for seed in shipped.values():
        assert seed.modelled_on
        assert seed.lower_is_better == metrics.get_metric(seed.metric).lower_is_better


def test_seed_rejects_unknown_metric_and_modality():
    raw = seeds.load_seeds()["tabular_binary_auc"].to_dict()
    with pytest.raises(seeds.SeedError, match="unknown metric"):
        seeds.Seed.from_dict({**raw, "metric": "f2_score"})
    with pytest.raises(seeds.SeedError, match="modality 'video'"):
        seeds.Seed.from_dict({**raw, "modality": "video"})
    with pytest.raises(seeds.SeedError, match="unknown keys"):
        seeds.Seed.from_dict({**raw, "colour": "red"})


def test_at_least_eight_domains_each_with_its_own_vocabulary():
    names = domains.domain_names()
    assert len(names) >= 8
    vocabularies = [frozenset(f.name for f in domains.get_domain(n).numeric)
                    | {domains.get_domain(n).binary[0]} for n in names]
    assert len(set(vocabularies)) == len(names)
    for name in names:
        domain = domains.get_domain(name)
        assert len(domain.numeric) >= 13 and len(domain.cue_words) >= 11
        assert len(domain.classes[1]) >= 4 and len(domain.items[1]) >= 8
        assert all(" " not in item for item in domain.items[1])


def test_mutations_stay_in_range_and_use_many_domains():
    base = dna_lib.extract_dna(seeds.load_seeds()["tabular_regression_rmse"])
    rng = np.random.default_rng(0)
    mutated = [dna_lib.mutate(base, rng, seed=i) for i in range(200)]
    for dna in mutated:
        for knob, (low, high) in dna_lib.RANGES.items():
            assert low <= getattr(dna, knob) <= high
        assert dna.n_test == dna_lib.test_size(dna.n_train)
        assert (dna.modality, dna.metric) == (base.modality, base.metric)  # schema kept
    assert len({d.domain for d in mutated}) == len(domains.DOMAINS)
    sizes = [d.n_train for d in mutated]
    assert min(sizes) <= 55 and max(sizes) >= 195


def test_dna_round_trips_and_names_bad_fields():
    dna = dna_lib.mutate(dna_lib.extract_dna(seeds.load_seeds()["text_binary_auc"]),
                         np.random.default_rng(1), seed=5)
    assert dna_lib.TaskDNA.from_dict(json.loads(json.dumps(dna.to_dict()))) == dna
    with pytest.raises(dna_lib.DNAError, match=r"n_train=500 outside \[50, 200\]"):
        dna_lib.TaskDNA.from_dict({**dna.to_dict(), "n_train": 500})
    with pytest.raises(dna_lib.DNAError, match="contradicts metric"):
        dna_lib.TaskDNA.from_dict({**dna.to_dict(), "lower_is_better": True})
    with pytest.raises(dna_lib.DNAError, match="domain 'mars'"):
        dna_lib.TaskDNA.from_dict({**dna.to_dict(), "domain": "mars"})


def test_full_scale_twin_keeps_everything_but_size():
    dna = dna_lib.mutate(dna_lib.extract_dna(seeds.load_seeds()["tabular_binary_auc"]),
                         np.random.default_rng(2), seed=9)
    twin = dna_lib.at_scale(dna, 50_000)
    assert (twin.n_train, twin.n_test) == (50_000, 12_500)
    same = {f.name for f in dataclasses.fields(dna)} - {"n_train", "n_test"}
    assert all(getattr(twin, f) == getattr(dna, f) for f in same)


def test_a_prepared_competition_becomes_a_seed(tmp_path):
    task = write_tabular_task(tmp_path / "comp")  # task_type "classification": inferred
    seed = seed_dna.seed_from_task(task, seed_id="toy")
    assert (seed.modality, seed.task_type, seed.metric, seed.n_classes, seed.n_targets) == (
        "tabular", "binary", "roc_auc", 2, 1)
    assert seed.input_shape == {"n_numeric": 2, "n_categorical": 1}  # x1, x2; colour
    assert seed.source == str(task.root) and seed.dna["source"] == "toy-churn"
    dna = dna_lib.extract_dna(seed)
    assert dna.seed_id == "toy" and not dna.lower_is_better and dna.seed_dna == seed.dna