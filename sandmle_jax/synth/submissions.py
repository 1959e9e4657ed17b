"""Reference submissions the MLOps checks and the leak scan grade, built on the host.

- constant: the training prior or mean, in the submission's format;
- shuffled: the gold reference with its rows permuted (right values, wrong ids);
- single column: a depth-4 tree fitted on one training column alone (the leak scan).
"""

from __future__ import annotations

import collections

import numpy as np
import pandas as pd
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from sandmle_jax.synth.synthesis import TaskData


def _frame(data: TaskData, columns: dict[str, object]) -> pd.DataFrame:
    frame = pd.DataFrame({data.id_column: data.test[data.id_column].to_numpy()})
    for name, values in columns.items():
        frame[name] = values
    return frame


def _ranked(items: list[str], scores: np.ndarray, k: int) -> list[str]:
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [" ".join(items[j] for j in row) for row in order]


def _multi_hot(cells: pd.Series) -> tuple[list[str], np.ndarray]:
    lists = [str(c).split() for c in cells.fillna("")]
    items = sorted({i for cell in lists for i in cell})
    return items, np.array([[i in cell for i in items] for cell in lists], dtype=float)


def constant(data: TaskData) -> pd.DataFrame:
    spec, train, n = data.baseline, data.train, len(data.test)
    target = train[spec.train_targets[0]]
    cols = spec.submission_columns
    if spec.output in ("probability", "multilabel", "value"):
        means = train[list(spec.train_targets)].astype(float).mean()
        return _frame(data, {c: np.full(n, float(means.iloc[j])) for j, c in enumerate(cols)})
    if spec.output in ("label", "ordinal"):
        mode = collections.Counter(target.tolist()).most_common(1)[0][0]
        return _frame(data, {cols[0]: [mode] * n})
    if spec.output == "class_probabilities":
        freq = target.value_counts(normalize=True)
        return _frame(data, {c: np.full(n, float(freq.get(c, 0.0))) for c in cols})
    items, hot = _multi_hot(target)
    return _frame(data, {cols[0]: _ranked(items, np.tile(hot.mean(axis=0), (n, 1)), spec.k)})


def shuffled(data: TaskData, rng: np.random.Generator) -> pd.DataFrame:
    gold = data.gold.copy()
    order = rng.permutation(len(gold))
    for column in data.target_columns:
        gold[column] = gold[column].to_numpy()[order]
    return gold


def _encode(train: pd.Series, test: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """One column as numbers: numeric as is (NaN -> median), anything else by category code."""
    numeric = pd.to_numeric(pd.concat([train, test]), errors="coerce")
    if numeric.notna().mean() > 0.9:
        filled = numeric.fillna(numeric.median() if numeric.notna().any() else 0.0)
        values = filled.to_numpy(dtype=float)
    else:
        text = pd.concat([train, test]).map(str)
        codes = {v: i for i, v in enumerate(sorted(text.unique()))}
        values = np.array([codes[v] for v in text], dtype=float)
    return values[: len(train), None], values[len(train):, None]


def single_column(data: TaskData, column: str) -> pd.DataFrame:
    """Predictions of a depth-4 tree that sees only `column`."""
    spec = data.baseline
    x, xt = _encode(data.train[column], data.test[column])
    targets = data.train[list(spec.train_targets)]
    cols = spec.submission_columns

    def tree(kind):
        cls = DecisionTreeClassifier if kind == "classify" else DecisionTreeRegressor
        return cls(max_depth=4, min_samples_leaf=3, random_state=0)

    def prob_of_one(y: np.ndarray) -> np.ndarray:
        if len(np.unique(y)) < 2:
            return np.full(len(xt), float(y[0]))
        model = tree("classify").fit(x, y)
        return model.predict_proba(xt)[:, list(model.classes_).index(1)]

    if spec.output in ("probability", "multilabel"):
        return _frame(data, {c: prob_of_one(targets[t].to_numpy(dtype=int))
                             for c, t in zip(cols, spec.train_targets)})
    if spec.output == "value":
        model = tree("regress").fit(x, targets.to_numpy(dtype=float))
        pred = model.predict(xt).reshape(len(xt), -1)
        if spec.non_negative:
            pred = np.clip(pred, 0.0, None)
        return _frame(data, {c: pred[:, j] for j, c in enumerate(cols)})
    y = targets.iloc[:, 0].astype(str).to_numpy()
    if spec.output in ("label", "ordinal"):
        return _frame(data, {cols[0]: tree("classify").fit(x, y).predict(xt)})
    if spec.output == "class_probabilities":
        model = tree("classify").fit(x, y)
        proba = model.predict_proba(xt)
        known = list(model.classes_)
        return _frame(data, {c: proba[:, known.index(c)] if c in known else np.zeros(len(xt))
                             for c in cols})
    items, hot = _multi_hot(targets.iloc[:, 0])
    scores = np.column_stack([prob_of_one(hot[:, j].astype(int)) for j in range(len(items))])
    return _frame(data, {cols[0]: _ranked(items, scores, spec.k)})
