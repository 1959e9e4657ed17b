"""How learnable a real seed is, how much of it a linear model gets, and how many of its columns
matter: the numbers that set its descendants' label noise, non-linearity and rule density.

Structure alone does not make a micro task stand for its seed: on real tables that a linear
model fits (biopsy, penguins) the micro descendants drawn with random non-linearity ranked the
forest first and the linear model fourth. So the seed's training rows are cross-validated (three
folds, at most _MAX_ROWS rows, fixed seeds) with a constant model, a linear model and a random
forest on the features the strategies' programs build (numeric imputed and scaled, categorical
one-hot, text TF-IDF). `signal` is the best model's gain over the constant as a share of the
possible gain (accuracy above the majority share for classes, R^2 for values); `linearity` is the
linear model's gain as a share of the best's. `relevant_share` is the share of columns with
mutual information about the target on their own (real tables are dense: most columns matter,
where the shipped seeds' rules read 2-4). Ranking and multilabel seeds are not measured.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.feature_selection import mutual_info_classif, mutual_info_regression
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from sandmle_jax.tasks import profile

_MAX_ROWS = 2000
_RELEVANT_NATS = 0.03  # above the k-NN estimator's noise on a few hundred rows
_CLASS_TYPES = ("binary", "multiclass", "ordinal")
_VALUE_TYPES = ("regression", "forecasting")


def _features(train: pd.DataFrame, columns: list[str]) -> ColumnTransformer:
    numeric, categorical, text = [], [], []
    for column in columns:
        kind = profile.column_kind(str(column), train[column])
        if kind == "text":
            text.append(column)
        elif kind == "numeric":
            numeric.append(column)
        elif kind != "image":  # a time column is one-hot encoded as a category
            categorical.append(column)
    parts = [("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
             ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                   OneHotEncoder(handle_unknown="ignore", max_categories=20)),
              categorical)]
    parts = [p for p in parts if p[2]] + [(c, TfidfVectorizer(max_features=2000), c)
                                          for c in text]
    return ColumnTransformer(parts)


def _labelled_rows(train: pd.DataFrame, features: list[str],
                   target: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
    """The rows with a label, at most _MAX_ROWS of them (a fixed sample)."""
    keep = target.notna().to_numpy()
    train, target = train.loc[keep, features], target[keep]
    if len(train) > _MAX_ROWS:
        rows = np.random.default_rng(0).choice(len(train), _MAX_ROWS, replace=False)
        train, target = train.iloc[rows], target.iloc[rows]
    return train, target


def measure(train: pd.DataFrame, features: list[str], target: pd.Series,
            task_type: str) -> tuple[float, float] | None:
    """(signal, linearity), each in [0, 1]; None for task types it does not measure or data
    too thin to cross-validate."""
    if task_type not in _CLASS_TYPES + _VALUE_TYPES:
        return None
    train, target = _labelled_rows(train, features, target)
    classes = task_type in _CLASS_TYPES
    if classes:
        target = target.astype(str)
        common = target.map(target.value_counts()) >= 3  # a class in every fold
        train, target = train[common.to_numpy()], target[common]
        counts = target.value_counts()
        if len(counts) < 2:
            return None
        folds = StratifiedKFold(3, shuffle=True, random_state=0)
        baseline = counts.max() / len(target)
        linear, forest = LogisticRegression(max_iter=2000), RandomForestClassifier(
            n_estimators=100, random_state=0, n_jobs=1)
    else:
        target = pd.to_numeric(target, errors="coerce")
        train, target = train[target.notna().to_numpy()], target.dropna()
        folds, baseline = KFold(3, shuffle=True, random_state=0), 0.0
        linear, forest = Ridge(alpha=1.0), RandomForestRegressor(n_estimators=100,
                                                                 random_state=0, n_jobs=1)
    if len(train) < 30:
        return None
    scores = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence and constant-feature chatter
        for name, model in (("linear", linear), ("forest", forest)):
            pipeline = make_pipeline(_features(train, features), model)
            scores[name] = float(np.mean(cross_val_score(
                pipeline, train, target, cv=folds, scoring="accuracy" if classes else "r2")))
    best = max(scores.values())
    room = 1.0 - baseline
    signal = float(np.clip((best - baseline) / room, 0.0, 1.0)) if room > 0 else 0.0
    linearity = (float(np.clip((scores["linear"] - baseline) / (best - baseline), 0.0, 1.0))
                 if best > baseline else 1.0)
    return round(signal, 4), round(linearity, 4)


def relevant_share(train: pd.DataFrame, features: list[str], target: pd.Series,
                   task_type: str) -> float | None:
    """The share of feature columns that tell something about the target on their own (mutual
    information above _RELEVANT_NATS); None for task types `measure` leaves out."""
    if task_type not in _CLASS_TYPES + _VALUE_TYPES or not features:
        return None
    train, target = _labelled_rows(train, features, target)
    columns, discrete = [], []
    for column in features:  # table columns only: text, time and image columns are their own
        values = train[column]
        kind = profile.column_kind(str(column), values)
        if kind == "numeric":
            columns.append(values.fillna(values.median()).to_numpy(float))
        elif kind == "categorical":
            codes = pd.factorize(values.astype(str))[0]
            if len(set(codes)) > len(codes) // 2:  # an identifier-like column: no class repeats
                columns.append(np.zeros(len(codes)))  # tells nothing about the target
            else:
                columns.append(codes.astype(float))
        else:
            continue
        discrete.append(kind == "categorical")
    if not columns:
        return None
    matrix, discrete = np.column_stack(columns), np.array(discrete)
    if task_type in _CLASS_TYPES:
        information = mutual_info_classif(matrix, target.astype(str), discrete_features=discrete,
                                          random_state=0)
    else:
        values = pd.to_numeric(target, errors="coerce")
        known = values.notna().to_numpy()
        information = mutual_info_regression(matrix[known], values[known],
                                             discrete_features=discrete, random_state=0)
    return round(float(np.mean(information > _RELEVANT_NATS)), 4)
