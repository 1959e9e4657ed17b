"""Solution programs the reference agent writes: real ML code, in tiers of different quality.

Each program is self-contained Python that reads the task's public/ files, infers the feature
types at run time (numeric, categorical, free text, image files), fits a model of its tier and
writes submission.csv in the sample submission's format. The tiers give evaluation a ladder of
baselines and SFT data of varied quality:

    constant   class prior / training mean (what a careless agent gets)
    linear     imputation + scaling + one-hot + TF-IDF, then logistic / ridge regression
    forest     the same features, random forest
    boosting   the same features, histogram gradient boosting
"""

from __future__ import annotations

import json

from sandmle_jax.tasks import metrics as metrics_lib
from sandmle_jax.tasks.task import Task

TIERS = ("constant", "linear", "forest", "boosting")

EXPLORE = '''import pandas as pd
DATA = {data!r}
for name in ("train.csv", "test.csv", "sample_submission.csv"):
    frame = pd.read_csv(f"{{DATA}}/{{name}}")
    print(name, frame.shape)
    print(frame.head(3).to_string()[:800])
'''

_SOLUTION = '''import os
import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

DATA = {data!r}
ID, TARGETS, KIND, TIER, LOG_TARGET = {id_column!r}, {targets}, {kind!r}, {tier!r}, {log_target}
train = pd.read_csv(f"{{DATA}}/train.csv")
test = pd.read_csv(f"{{DATA}}/test.csv")
sample = pd.read_csv(f"{{DATA}}/sample_submission.csv")

label_columns = [c for c in train.columns if c not in test.columns and c != ID]
features = [c for c in test.columns if c != ID and c in train.columns]


def load_image(path):
    from PIL import Image
    return np.asarray(Image.open(os.path.join(DATA, path)).convert("L").resize((16, 16)),
                      dtype=np.float32).ravel() / 255.0


numeric, categorical, text, images = [], [], [], []
for c in features:
    column = train[c]
    if pd.api.types.is_numeric_dtype(column):
        numeric.append(c)
    elif column.astype(str).str.lower().str.endswith((".png", ".jpg", ".jpeg")).all():
        images.append(c)
    elif column.astype(str).str.len().mean() > 25:
        text.append(c)
    else:
        categorical.append(c)


def matrix(frame, fitted=None):
    parts = []
    if fitted is None:
        fitted = ColumnTransformer(
            [("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric)] * bool(numeric)
            + [("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                     OneHotEncoder(handle_unknown="ignore")), categorical)] * bool(categorical)
            + [(f"txt{{i}}", TfidfVectorizer(max_features=2000, ngram_range=(1, 2)), c)
               for i, c in enumerate(text)], sparse_threshold=1.0)
        fitted.fit(frame)
    if numeric or categorical or text:
        parts.append(sparse.csr_matrix(fitted.transform(frame)))
    for c in images:
        parts.append(sparse.csr_matrix(np.stack([load_image(p) for p in frame[c]])))
    if not parts:
        parts.append(sparse.csr_matrix(np.zeros((len(frame), 1))))
    return sparse.hstack(parts).tocsr(), fitted


X, fitted = matrix(train[features])
X_test, _ = matrix(test[features], fitted)
dense = TIER in ("forest", "boosting")
if dense:
    X, X_test = X.toarray(), X_test.toarray()


def classifier():
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    return {{"constant": lambda: DummyClassifier(strategy="prior"),
             "linear": lambda: LogisticRegression(max_iter=2000, C=1.0),
             "forest": lambda: RandomForestClassifier(n_estimators=300, random_state=0, n_jobs=1),
             "boosting": lambda: HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05,
                                                                random_state=0)}}[TIER]()


def regressor():
    from sklearn.dummy import DummyRegressor
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.linear_model import Ridge
    return {{"constant": lambda: DummyRegressor(strategy="mean"),
             "linear": lambda: Ridge(alpha=1.0),
             "forest": lambda: RandomForestRegressor(n_estimators=300, random_state=0, n_jobs=1),
             "boosting": lambda: HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05,
                                                               random_state=0)}}[TIER]()


def single_label():
    """The training label as one column: the label column, or argmax over one-hot columns."""
    if len(label_columns) == 1:
        return train[label_columns[0]]
    present = [c for c in TARGETS if c in train.columns]
    return train[present].idxmax(axis=1)


submission = pd.DataFrame({{ID: test[ID]}})
if KIND in ("probability", "label", "ordinal"):
    y = single_label()
    model = classifier().fit(X, y)
    if KIND == "probability":
        classes = list(model.classes_)
        positive = classes.index(1) if 1 in classes else len(classes) - 1
        submission[TARGETS[0]] = model.predict_proba(X_test)[:, positive]
    else:
        submission[TARGETS[0]] = model.predict(X_test)
elif KIND == "class_probabilities":
    y = single_label().astype(str)
    model = classifier().fit(X, y)
    proba = model.predict_proba(X_test)
    classes = [str(c) for c in model.classes_]
    for c in TARGETS:
        submission[c] = proba[:, classes.index(str(c))] if str(c) in classes else 0.0
elif KIND == "multilabel_probabilities":
    for c in TARGETS:
        y = train[c]
        if y.nunique() < 2:
            submission[c] = float(y.iloc[0])
            continue
        model = classifier().fit(X, y)
        submission[c] = model.predict_proba(X_test)[:, list(model.classes_).index(1)]
elif KIND in ("value", "item_scores"):
    for c in TARGETS:
        y = train[c].astype(float)
        y_fit = np.log1p(y.clip(lower=0)) if LOG_TARGET else y
        pred = regressor().fit(X, y_fit).predict(X_test)
        submission[c] = np.expm1(pred).clip(min=0) if LOG_TARGET else pred
elif KIND == "ranked_list":
    counts = train[TARGETS[0]].fillna("").str.split().explode().value_counts()
    submission[TARGETS[0]] = " ".join(counts.index[:10].astype(str))
else:
    raise SystemExit(f"no strategy for submissions of kind {{KIND}}")

submission = submission[list(sample.columns)]
submission.to_csv("submission.csv", index=False)
print("wrote submission.csv", submission.shape)
'''


def explore_code(task: Task) -> str:
    return EXPLORE.format(data=str(task.public_dir))


def solution_code(task: Task, tier: str) -> str:
    """A complete program that trains a `tier` model and writes submission.csv."""
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; known: {TIERS}")
    metric = metrics_lib.get_metric(task.spec.metric)
    log_target = task.spec.metric in ("rmsle", "mean_columnwise_rmsle")
    return _SOLUTION.format(data=str(task.public_dir), id_column=task.spec.id_column,
                            targets=json.dumps(list(task.spec.target_columns)),
                            kind=metric.kind.value, tier=tier, log_target=log_target)
