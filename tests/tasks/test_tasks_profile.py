"""Modality and task type read off a competition's files."""

import numpy as np
import pandas as pd
import pytest

from sandmle_jax.tasks import metrics, profile


def _public(tmp_path, frame, files=()):
    public = tmp_path / "public"
    public.mkdir()
    frame.to_csv(public / "train.csv", index=False)
    frame.drop(columns=["y"]).to_csv(public / "test.csv", index=False)
    for name in files:
        (public / name).parent.mkdir(parents=True, exist_ok=True)
        (public / name).write_bytes(b"\x89PNG")
    return public


RNG = np.random.default_rng(0)
WORDS = ["the", "model", "fits", "a", "curve", "over", "noisy", "data", "quickly", "today"]


@pytest.mark.parametrize("columns, files, expected", [
    ({"x": RNG.random(30), "colour": ["red", "blue", "green"] * 10}, (), "tabular"),
    ({"x": RNG.random(30)}, ("images/a.png",), "image"),
    ({"image": [f"img/{i}.jpg" for i in range(30)]}, (), "image"),
    ({"review": [" ".join(RNG.choice(WORDS, 12)) for _ in range(30)]}, (), "text"),
    ({"date": pd.date_range("2020-01-01", periods=30).astype(str), "x": RNG.random(30)}, (),
     "timeseries"),
])
def test_modality(tmp_path, columns, files, expected):
    frame = pd.DataFrame({"id": range(30), **columns, "y": RNG.integers(0, 2, 30)})
    assert profile.infer_modality(_public(tmp_path, frame, files), ("id",)) == expected


@pytest.mark.parametrize("metric, targets, modality, expected", [
    ("roc_auc", {"y": [0, 1, 1]}, "tabular", "binary"),
    ("accuracy", {"y": ["a", "b", "a"]}, "tabular", "binary"),
    ("accuracy", {"y": ["a", "b", "c"]}, "image", "multiclass"),
    ("multiclass_log_loss", {"a": [1, 0], "b": [0, 1]}, "text", "multiclass"),
    ("mean_columnwise_roc_auc", {"a": [1, 0], "b": [0, 1]}, "tabular", "multilabel"),
    ("quadratic_weighted_kappa", {"y": [1, 2, 3]}, "tabular", "ordinal"),
    ("rmse", {"y": [1.5, 2.5]}, "tabular", "regression"),
    ("mae", {"y": [1.5, 2.5]}, "timeseries", "forecasting"),
    ("map@5", {"y": ["a b", "c"]}, "tabular", "ranking"),
    (None, {"y": list(range(40))}, "tabular", "regression"),  # a custom grader: from values
    (None, {"y": [0, 1, 0]}, "tabular", "binary"),
    (None, {"y": ["x", "y", "z"]}, "tabular", "multiclass"),
])
def test_task_type(metric, targets, modality, expected):
    m = metrics.get_metric(metric) if metric else None
    assert profile.infer_task_type(m, pd.DataFrame(targets), modality) == expected


def test_column_kind_names_each_kind_of_input_column():
    rows = 30
    frame = pd.DataFrame({
        "scan": [f"images/{i}.png" for i in range(rows)],
        "review": ["the delivery came late and the box was badly damaged again"] * rows,
        "day": pd.date_range("2024-01-01", periods=rows).astype(str),
        "price": np.linspace(1.0, 9.0, rows),
        "member": [True, False] * (rows // 2),
        "colour": ["red", "blue", "green"] * (rows // 3)})
    assert {c: profile.column_kind(c, frame[c]) for c in frame.columns} == {
        "scan": "image", "review": "text", "day": "time", "price": "numeric",
        "member": "categorical", "colour": "categorical"}
