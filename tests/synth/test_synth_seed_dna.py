"""Seed DNA read off real competitions (benchmarks/real_seeds.py's tables, imported as MLE-bench
competitions) and off hand-made edge cases, each field checked against the table itself."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from benchmarks.real_competitions import write
from benchmarks.real_seeds import SEEDS
from sandmle_jax.synth import seed_dna
from sandmle_jax.synth.seeds import SeedError
from sandmle_jax.tasks import mlebench
from sandmle_jax.tasks import task as task_lib

BY_ID = {c.id: c for c in SEEDS}


def _imported(tmp_path, comp_id):
    root = tmp_path / "comps"
    write(BY_ID[comp_id], root, root)
    return mlebench.import_competition(root / comp_id, root, tmp_path / "tasks" / comp_id)


def _features(task):
    train = pd.read_csv(task.public_dir / "train.csv")
    test = pd.read_csv(task.public_dir / "test.csv")
    return train, [c for c in test.columns if c != task.spec.id_column]


def test_binary_probability_seed(tmp_path):
    task = _imported(tmp_path, "pima-diabetes")
    dna = seed_dna.read_seed_dna(task)
    train, features = _features(task)
    shares = train["type"].value_counts(normalize=True)
    assert (dna.modality, dna.task_type, dna.metric, dna.submission) == (
        "tabular", "binary", "roc_auc", "probability")
    assert (dna.n_classes, dna.n_targets, dna.lower_is_better) == (2, 1, False)
    assert dna.class_shares == pytest.approx(tuple(shares.round(4)))
    assert dna.n_numeric == len(features) == 7 and dna.n_categorical == 0
    assert (dna.n_text, dna.n_image, dna.time_column, dna.missing_rate) == (0, 0, "", 0.0)
    assert (dna.id_column, dna.id_kind) == ("id", "string")  # ids r0000...
    assert (dna.train_rows, dna.test_rows) == (len(train), 532 - len(train))


def test_multiclass_labels_with_categoricals_and_gaps(tmp_path):
    task = _imported(tmp_path, "penguin-species")
    dna = seed_dna.read_seed_dna(task)
    train, features = _features(task)
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(train[c])]
    assert (dna.task_type, dna.submission, dna.n_classes) == ("multiclass", "label", 3)
    assert dna.n_numeric == len(numeric) == 5  # bill x2, flipper, mass, year
    assert dna.n_categorical == len(features) - len(numeric) == 2  # island, sex
    assert dna.missing_rate == pytest.approx(train[features].isna().to_numpy().mean(), abs=1e-4)
    assert dna.missing_rate > 0


def test_class_probability_and_text_and_value_seeds(tmp_path):
    glass = seed_dna.read_seed_dna(_imported(tmp_path, "glass-types"))
    assert (glass.submission, glass.n_targets, glass.n_classes, glass.lower_is_better) == (
        "class_probabilities", 6, 6, True)
    tweets = seed_dna.read_seed_dna(_imported(tmp_path, "trump-tweets-android"))
    assert (tweets.modality, tweets.n_text, tweets.time_column) == ("text", 1, "created_at")
    assert tweets.n_numeric == 2 and 5 < tweets.text_words < 60
    wage = seed_dna.read_seed_dna(_imported(tmp_path, "wage"))
    assert (wage.task_type, wage.submission, wage.n_classes, wage.class_shares) == (
        "regression", "value", 0, ())
    assert wage.n_categorical >= 5 and wage.n_numeric >= 2  # maritl, race, ...; year, age


def test_outlier_rate_counts_far_out_cells(tmp_path):
    task = _imported(tmp_path, "boston-medv")
    dna = seed_dna.read_seed_dna(task)
    train, features = _features(task)
    far = cells = 0
    for column in features:
        values = train[column].dropna().to_numpy(dtype=float)
        q1, q3 = np.percentile(values, [25, 75])
        cells += len(values)
        if q3 > q1:
            far += int(((values < q1 - 3 * (q3 - q1)) | (values > q3 + 3 * (q3 - q1))).sum())
    assert dna.outlier_rate == pytest.approx(far / cells, abs=1e-4) and far > 0  # crim, zn


def _save(root, train, test, answers, metric, targets, id_column="id", task_type="binary"):
    spec = task_lib.TaskSpec(
        id="edge", title="Edge", modality="tabular", task_type=task_type, metric=metric,
        lower_is_better=metric.endswith("log_loss"), id_column=id_column,
        target_columns=tuple(targets),
        thresholds=task_lib.Thresholds(median=0.5, bronze=0.4, silver=0.3, gold=0.2)
        if metric.endswith("log_loss") else task_lib.Thresholds(0.5, 0.6, 0.7, 0.8))
    sample = answers.copy()
    for t in targets:
        sample[t] = 1 / len(targets) if len(targets) > 1 else answers[t].iloc[0]
    return task_lib.save_task(root, spec, public={
        "description.md": "# Edge\n", "train.csv": train, "test.csv": test,
        "sample_submission.csv": sample}, private={"answers.csv": answers})


def test_hand_made_edge_cases(tmp_path):
    rng = np.random.default_rng(0)
    n, classes = 90, [f"k{j}" for j in range(12)]
    ids = [f"row-{i}" for i in range(n)]
    label = rng.choice(classes, size=n)
    note = [" ".join(rng.choice(["alpha", "beta", "gamma", "delta"], size=9)) for _ in range(n)]
    x = rng.normal(size=n)
    x[::10] = np.nan
    frame = pd.DataFrame({"key": ids, "x": x, "note": note, "label": label})
    train, test = frame.iloc[:60], frame.iloc[60:].drop(columns="label")
    answers = pd.DataFrame({"key": test["key"], **{c: (label[60:] == c).astype(int)
                                                  for c in classes}})
    task = _save(tmp_path / "t", train, test, answers, "multiclass_log_loss", classes,
                 id_column="key", task_type="multiclass")
    dna = seed_dna.read_seed_dna(task)
    assert (dna.id_column, dna.id_kind) == ("key", "string")
    assert (dna.submission, dna.n_targets, dna.n_classes) == ("class_probabilities", 12, 12)
    assert (dna.n_numeric, dna.n_text, dna.n_categorical) == (1, 1, 0)
    assert dna.missing_rate == pytest.approx(6 / (60 * 2))
    assert dna.text_words == 9


def test_expectation_caps_and_drift():
    base = seed_dna.SeedDNA(
        source="wide", modality="tabular", task_type="regression", metric="rmse",
        lower_is_better=True, submission="value", n_targets=5, n_classes=0, class_shares=(),
        n_numeric=40, n_categorical=7, n_text=0, n_image=0, time_column="", text_words=0,
        missing_rate=0.0, outlier_rate=0.0, id_column="id", id_kind="integer", train_rows=5000,
        test_rows=1000)
    expected = seed_dna.micro_expectation(base)
    assert (expected["n_numeric"], expected["n_categorical"], expected["n_targets"]) == (
        seed_dna.MAX_NUMERIC, seed_dna.MAX_CATEGORICAL, seed_dna.MAX_VALUE_TARGETS)
    found = dataclasses.replace(base, n_numeric=seed_dna.MAX_NUMERIC, n_categorical=3,
                                n_targets=3, train_rows=120)
    assert seed_dna.drift(expected, found) == []
    drifted = dataclasses.replace(found, n_categorical=1, metric="mae")
    assert seed_dna.drift(expected, drifted) == [
        "metric: seed implies 'rmse', task has 'mae'",
        "n_categorical: seed implies 3, task has 1"]


def test_unreadable_seeds_name_the_file_or_field(tmp_path):
    task = _imported(tmp_path, "boston-medv")
    (task.public_dir / "train.csv").unlink()
    with pytest.raises(SeedError, match=r"public/train.csv: missing"):
        seed_dna.read_seed_dna(task)
    custom = _imported(tmp_path, "pima-diabetes")
    custom = dataclasses.replace(custom, spec=dataclasses.replace(custom.spec, metric="my_f2"))
    with pytest.raises(SeedError, match="metric 'my_f2' is not a registered metric"):
        seed_dna.read_seed_dna(custom)


def test_a_long_format_time_series_seed_is_read(tmp_path):
    """economics (a date column, one row per month): the date is the time index, not a
    categorical with one class per row (which once crashed the relevance measurement)."""
    from benchmarks.real_competitions import COMPETITIONS
    root = tmp_path / "comps"
    comp = next(c for c in COMPETITIONS if c.id == "unemployment")
    write(comp, root, root)
    task = mlebench.import_competition(root / comp.id, root, tmp_path / "task")
    dna = seed_dna.read_seed_dna(task)
    assert (dna.modality, dna.task_type, dna.time_column) == ("timeseries", "forecasting", "date")
    assert dna.n_numeric == 4 and dna.relevant_share is not None and dna.signal is not None
    assert seed_dna.micro_shape(dna) == {"length": 32, "horizon": 1}
