"""Data synthesis, heads, reference submissions and the baseline programs' numerics.

The baseline programs are run as plain subprocesses here (their numerics are the subject; the
sandboxed path is exercised by the gates and pipeline tests) and compared with scikit-learn.
"""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

from sandmle_jax.synth import baselines, rules, seeds, submissions, synthesis, targets
from sandmle_jax.synth import dna as dna_lib
from sandmle_jax.synth import domains
from sandmle_jax.tasks import metrics

SEEDS = seeds.load_seeds()


def _dna(seed_id, task_seed=3, **changes):
    dna = dna_lib.mutate(dna_lib.extract_dna(SEEDS[seed_id]), np.random.default_rng(task_seed),
                         seed=task_seed)
    return dna_lib.TaskDNA.from_dict({**dna.to_dict(), **changes}) if changes else dna


@pytest.mark.parametrize("seed_id", sorted(SEEDS))
def test_every_seed_synthesises_a_consistent_deterministic_task(seed_id):
    dna = _dna(seed_id)
    data = synthesis.synthesize(dna)
    assert (len(data.train), len(data.test)) == (dna.n_train, dna.n_test)
    ids_train, ids_test = set(data.train["id"]), set(data.test["id"])
    assert (len(ids_train), len(ids_test)) == (dna.n_train, dna.n_test)
    assert not ids_train & ids_test
    for frame in (data.answers, data.sample, data.gold):
        assert list(frame.columns) == ["id", *data.target_columns]
        assert frame["id"].tolist() == data.test["id"].tolist()
    assert list(data.test.columns) == ["id", *data.baseline.feature_columns]
    assert list(data.train.columns) == ["id", *data.baseline.feature_columns,
                                        *data.baseline.train_targets]
    if dna.modality == "image":
        assert sorted(data.files) == sorted(f"images/{i}.png" for i in ids_train | ids_test)
        assert all(content.startswith(b"\x89PNG") for content in data.files.values())
    metric = metrics.get_metric(dna.metric)
    cols = list(data.target_columns)
    gold = metric(data.answers[cols].to_numpy(), data.gold[cols].to_numpy())
    sample = metric(data.answers[cols].to_numpy(), data.sample[cols].to_numpy())
    assert (gold < sample) if dna.lower_is_better else (gold > sample)
    assert synthesis.synthesize(dna).digest() == data.digest()
    assert synthesis.synthesize(_dna(seed_id, task_seed=4)).digest() != data.digest()


def test_rule_matches_a_loop_rederivation():
    rng = np.random.default_rng(0)
    rule = rules.sample_rule(rng, n_inputs=5, n_outputs=2, nonlinearity=0.8, interactions=2,
                             informative=4)
    z = rng.standard_normal((300, 5))
    expected = np.zeros((300, 2))
    for r in range(300):
        for o in range(2):
            value = sum(rule.weights[i][o] * z[r, i] for i in range(5))
            for i, fn, coef, out in rule.nonlinear:
                if out == o:
                    value += coef * {"sin": np.sin(1.7 * z[r, i]), "square": z[r, i] ** 2 - 1,
                                     "abs": abs(z[r, i]) - 0.8,
                                     "step": float(z[r, i] > 0.3) - 0.4}[fn]
            for a, b, coef, out in rule.interactions:
                if out == o:
                    value += coef * z[r, a] * z[r, b]
            expected[r, o] = value
    expected = (expected - expected.mean(0)) / expected.std(0)
    np.testing.assert_allclose(rule.apply(z), expected, atol=1e-12)
    assert rule.weights[4] == (0.0, 0.0)  # the fifth input is a distractor: never used
    assert all(t[0] < 4 for t in rule.nonlinear) and all(max(t[:2]) < 4 for t in rule.interactions)
    assert len(rule.parameters()) >= 2 * 2 + 2 + 4


def test_binary_head_prevalence_and_regression_noise_follow_the_dna():
    domain = domains.get_domain("retail")
    rng = np.random.default_rng(0)
    s = rng.standard_normal((20000, 1))
    dna = _dna("tabular_binary_auc", imbalance=0.5, noise=0.2)
    made = targets.make_targets(dna, domain, s, np.random.default_rng(1))
    assert abs(made.answers.iloc[:, 0].mean() - (0.5 - 0.4 * 0.5)) < 0.02
    dna = _dna("tabular_regression_rmse", noise=0.3, outlier_rate=0.0)
    made = targets.make_targets(dna, domain, s, np.random.default_rng(1))
    y, mean = made.answers.iloc[:, 0].to_numpy(), made.gold.iloc[:, 0].to_numpy()
    scale = (mean.max() - mean.min()) / (s.max() - s.min())  # mean = loc + scale * s
    assert abs(np.std(y - mean) / scale - 0.3) < 0.01


def test_constant_and_shuffled_reference_submissions():
    data = synthesis.synthesize(_dna("text_multiclass_logloss"))
    constant = submissions.constant(data)
    prior = data.train[data.baseline.train_targets[0]].value_counts(normalize=True)
    for c in data.target_columns:
        assert np.allclose(constant[c], prior.get(c, 0.0))
    shuffled = submissions.shuffled(data, np.random.default_rng(0))
    assert shuffled["id"].tolist() == data.gold["id"].tolist()
    for c in data.target_columns:
        assert sorted(shuffled[c]) == sorted(data.gold[c])
    assert not shuffled.equals(data.gold)


def _run_rung(tmp_path, rung, data):
    public = tmp_path / "public"
    public.mkdir(parents=True)
    data.train.to_csv(public / "train.csv", index=False)
    data.test.to_csv(public / "test.csv", index=False)
    work = tmp_path / rung
    work.mkdir()
    subprocess.run([sys.executable, "-c", baselines.script(rung, data.baseline)], cwd=work,
                   env={**os.environ, "PUBLIC_DIR": str(public)}, check=True, capture_output=True)
    return pd.read_csv(work / "submission.csv")


def _features(data):
    """The tabular prelude's features, rebuilt: numeric columns and one-hot categories."""
    both = pd.get_dummies(pd.concat([data.train, data.test])[list(data.baseline.feature_columns)],
                          dtype=float)
    X, Xt = both.iloc[: len(data.train)].to_numpy(), both.iloc[len(data.train):].to_numpy()
    mu, sd = X.mean(0), X.std(0) + 1e-9
    return (X - mu) / sd, (Xt - mu) / sd


def test_linear_and_simple_rungs_match_sklearn_on_regression(tmp_path):
    data = synthesis.synthesize(_dna("tabular_regression_rmse", missing_rate=0.0,
                                     outlier_rate=0.0))
    X, Xt = _features(data)
    y = data.train[data.baseline.train_targets[0]].to_numpy(float)
    target = data.target_columns[0]
    ridge = Ridge(alpha=3.0).fit(X, y).predict(Xt)
    np.testing.assert_allclose(_run_rung(tmp_path / "a", "linear", data)[target], ridge, rtol=1e-6)
    knn = KNeighborsRegressor(n_neighbors=25).fit(X, y).predict(Xt)
    np.testing.assert_allclose(_run_rung(tmp_path / "b", "simple", data)[target], knn, rtol=1e-6)


def test_linear_and_simple_rungs_match_sklearn_on_probabilities(tmp_path):
    data = synthesis.synthesize(_dna("tabular_binary_auc", missing_rate=0.0, outlier_rate=0.0))
    X, Xt = _features(data)
    y = data.train[data.baseline.train_targets[0]].to_numpy()
    prior = y.mean()
    target = data.target_columns[0]
    # The rungs shrink probabilities 15% towards the prior and clip them (see baselines).
    knn = KNeighborsClassifier(n_neighbors=25).fit(X, y).predict_proba(Xt)[:, 1]
    np.testing.assert_allclose(_run_rung(tmp_path / "a", "simple", data)[target],
                               np.clip(0.85 * knn + 0.15 * prior, 0.01, 0.99), atol=1e-9)
    # Two-class softmax with penalty 1/n on both weight columns = binary logistic regression
    # with penalty 1/(2n) on their difference, i.e. scikit-learn's C=1.
    reference = LogisticRegression(C=1.0, max_iter=5000).fit(X, y).predict_proba(Xt)[:, 1]
    ours = _run_rung(tmp_path / "b", "linear", data)[target].to_numpy()
    inside = (ours > 0.011) & (ours < 0.989)
    assert inside.sum() > len(ours) // 2
    np.testing.assert_allclose((ours[inside] - 0.15 * prior) / 0.85, reference[inside], atol=0.03)


@pytest.mark.parametrize("numeric,categorical,distractors", [(9, 2, 3), (1, 3, 5), (0, 2, 0),
                                                             (14, 0, 5)])
def test_a_real_seeds_column_counts_are_kept_exactly(numeric, categorical, distractors):
    dna = _dna("tabular_binary_auc", input_shape={"n_numeric": numeric,
                                                  "n_categorical": categorical},
               n_distractors=distractors)
    data = synthesis.synthesize(dna)
    features = data.train[list(data.baseline.feature_columns)]
    kinds = [pd.api.types.is_numeric_dtype(features[c]) for c in features.columns]
    assert (sum(kinds), len(kinds) - sum(kinds)) == (numeric, categorical)


def test_more_classes_than_the_domain_names():
    dna = _dna("tabular_multiclass_accuracy", n_classes=10, n_train=200, imbalance=0.0,
               noise=0.1)
    data = synthesis.synthesize(dna)
    column = data.target_columns[0]
    labels = set(data.train[column]) | set(data.answers[column])
    assert len(labels) == 10
    assert len({c for c in labels if c.startswith(f"{column}_")}) == 10 - len(
        domains.get_domain(dna.domain).classes[1])


def test_a_text_seeds_numeric_side_columns_are_kept():
    dna = _dna("text_binary_auc", input_shape={"n_cues": 5, "words": 20, "n_numeric": 2},
               n_train=200, noise=0.1, nonlinearity=0.0, interactions=0)
    data = synthesis.synthesize(dna)
    side = [c for c in data.baseline.feature_columns if c != "text"]
    assert len(side) == 2 and all(pd.api.types.is_numeric_dtype(data.train[c]) for c in side)
    plain = synthesis.synthesize(_dna("text_binary_auc"))
    assert list(plain.baseline.feature_columns) == ["text"]


def test_a_dense_rule_reads_every_informative_input():
    sparse = synthesis.synthesize(_dna("tabular_regression_rmse", n_distractors=0))
    dense = synthesis.synthesize(_dna("tabular_regression_rmse", n_distractors=0,
                                      rule_inputs=dna_lib.ALL_INPUTS))
    shape = SEEDS["tabular_regression_rmse"].input_shape
    informative = shape["n_features"] + shape["n_categorical"]  # numeric, categorical effects
    assert [sum(w != 0.0 for w in output) for output in zip(*dense.rule["weights"])] == [
        informative]
    assert [sum(w != 0.0 for w in output) for output in zip(*sparse.rule["weights"])][0] <= 4
