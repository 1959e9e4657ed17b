"""The ML Developer's baseline ladder: five real programs run in the sandbox.

Each rung is a self-contained Python script that reads the task's public/ train.csv and test.csv
and writes submission.csv in its workspace, exactly as an agent would. The scripts share one
prelude (loading, featurising per modality, fitting and writing the submission per output kind)
and differ in the model: constant (train prior or mean), simple (25 nearest neighbours), linear
(softmax or ridge regression on standardised features; these three in numpy, cheap to
start), tree ensemble (random forest) and tuned
(3-fold CV model selection over forests, extra trees, boosting and linear models).

A rung's `BaselineSpec` carries everything the prelude needs, so the same scripts serve every
modality, task type and the LLM backend's data. Probabilities are shrunk 15% towards the
training prior and clipped to [0.01, 0.99]: an overconfident tree would otherwise score an absurd
log loss and break the ladder's order.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

RUNGS = ("constant", "simple", "linear", "tree_ensemble", "tuned")
# Output kinds: how the model's predictions become submission columns.
OUTPUT_KINDS = ("probability", "label", "class_probabilities", "multilabel", "value", "ordinal",
                "ranked_list")
# What a submission row holds for each output kind, with an example (header, then one row): the
# LLM roles are shown these so the files they write and describe follow the graders' formats.
SUBMISSION_FORMATS = {
    "probability": ("one column: the probability that the binary target is 1",
                    "id,default\n17,0.83"),
    "label": ("one column: the predicted class label, spelled as in train.csv",
              "id,species\n17,Gentoo"),
    "class_probabilities": ("one column per class, named by the class, each row's "
                            "probabilities summing to 1", "id,Adelie,Chinstrap,Gentoo\n"
                            "17,0.7,0.2,0.1"),
    "multilabel": ("one column per label: the probability that the label applies",
                   "id,toxic,obscene\n17,0.9,0.05"),
    "value": ("one numeric column per target", "id,price\n17,231.5"),
    "ordinal": ("one column: the predicted grade, an integer as in train.csv",
                "id,quality\n17,3"),
    "ranked_list": ("one column: the k predicted items, best first, separated by spaces",
                    "id,items\n17,b17 a03 c11"),
}


@dataclasses.dataclass(frozen=True)
class BaselineSpec:
    """What a baseline script must know about a task (all of it public information)."""

    id_column: str
    feature_kind: str  # tabular | text | image | timeseries
    feature_columns: tuple[str, ...]  # input columns of train.csv/test.csv
    train_targets: tuple[str, ...]  # target columns in train.csv
    submission_columns: tuple[str, ...]  # target columns of submission.csv
    output: str  # one of OUTPUT_KINDS
    classes: tuple[str, ...] = ()  # class_probabilities: class names in column order
    k: int = 0  # ranked_list: how many items to list
    non_negative: bool = False  # value: clip predictions at 0 (rmsle)

    def __post_init__(self):
        if self.output not in OUTPUT_KINDS:
            raise ValueError(f"BaselineSpec.output must be one of {OUTPUT_KINDS}, "
                             f"got {self.output!r}")
        for name in ("feature_columns", "train_targets", "submission_columns", "classes"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> BaselineSpec:
        return cls(**raw)


_PRELUDE = r'''
import json, os, sys
import numpy as np
import pandas as pd

SPEC = json.loads(__SPEC__)
RUNG = __RUNG__
PUBLIC = os.environ["PUBLIC_DIR"]
train = pd.read_csv(os.path.join(PUBLIC, "train.csv"))
test = pd.read_csv(os.path.join(PUBLIC, "test.csv"))
OUT = SPEC["output"]
CLASSIFY = OUT in ("probability", "label", "class_probabilities", "ordinal")
MULTI_BINARY = OUT in ("multilabel", "ranked_list")


def featurise(frames):
    kind, cols = SPEC["feature_kind"], SPEC["feature_columns"]
    both = pd.concat(frames, ignore_index=True)
    if kind == "text":
        import collections, re
        docs = [re.findall(r"[a-z_]+", str(t).lower()) for t in both[cols[0]].fillna("")]
        frequency = collections.Counter(w for d in docs for w in d)
        vocab = {w: j for j, (w, _) in enumerate(frequency.most_common(400))}
        X = np.zeros((len(docs), len(vocab)))
        for i, doc in enumerate(docs):
            for w in doc:
                if w in vocab:
                    X[i, vocab[w]] += 1.0
    elif kind == "image":
        from PIL import Image
        rows = []
        for rel in both[cols[0]]:
            img = np.asarray(Image.open(os.path.join(PUBLIC, rel)), dtype=float) / 255.0
            h, w = img.shape
            small = img[: h - h % 4, : w - w % 4].reshape(h // 4, 4, w // 4, 4).mean(axis=(1, 3))
            grad = np.abs(np.diff(img, axis=0)).mean() + np.abs(np.diff(img, axis=1)).mean()
            rows.append(np.concatenate([small.ravel(), [img.mean(), img.std(), (img > 0.5).mean(),
                                                        (img > 0.75).mean(), grad]]))
        X = np.array(rows)
    elif kind == "timeseries":
        V = both[cols].to_numpy(dtype=float)
        t = np.arange(V.shape[1]) - (V.shape[1] - 1) / 2
        slope = (V - V.mean(axis=1, keepdims=True)) @ t / (t @ t)
        stats = [V.mean(1), V.std(1), V.min(1), V.max(1), V[:, -1], slope,
                 np.diff(V, axis=1).std(1)]
        X = np.column_stack([V, *stats])
    else:
        numeric = both[cols].select_dtypes(include="number")
        numeric = numeric.fillna(numeric.median()).fillna(0.0)
        categorical = [c for c in cols if c not in numeric.columns]
        parts = [numeric] + ([pd.get_dummies(both[categorical].astype(str), dtype=float)]
                             if categorical else [])
        X = pd.concat(parts, axis=1).to_numpy(float)
    n = len(frames[0])
    return X[:n], X[n:]


X, Xt = featurise([train, test])
targets = SPEC["train_targets"]
if OUT == "ranked_list":
    items = sorted({i for cell in train[targets[0]].fillna("") for i in str(cell).split()})
    Y = np.array([[i in str(cell).split() for i in items] for cell in train[targets[0]].fillna("")],
                 dtype=int)
elif OUT == "multilabel":
    Y = train[targets].to_numpy(dtype=int)
elif CLASSIFY:
    y_raw = train[targets[0]].astype(str).to_numpy()
    CLASSES = list(SPEC["classes"]) if OUT == "class_probabilities" else sorted(set(y_raw))
    Y = np.array([CLASSES.index(v) for v in y_raw])
else:
    Y = train[targets].to_numpy(dtype=float)


def fit_predict(make, X, Y, Xt):
    """Predictions in one canonical form: class probabilities (n, C), per-column P(1) (n, L)
    or values (n, T)."""
    if CLASSIFY:
        out = np.zeros((len(Xt), len(CLASSES)))
        present = np.unique(Y)
        if len(present) == 1:
            out[:, present[0]] = 1.0
            return out
        model = make("classify").fit(X, Y)
        out[:, model.classes_] = model.predict_proba(Xt)
        return out
    if MULTI_BINARY:
        cols = []
        for j in range(Y.shape[1]):
            if Y[:, j].min() == Y[:, j].max():
                cols.append(np.full(len(Xt), float(Y[0, j])))
            else:
                cols.append(make("classify").fit(X, Y[:, j]).predict_proba(Xt)[:, 1])
        return np.column_stack(cols)
    model = make("regress").fit(X, Y if Y.shape[1] > 1 else Y[:, 0])
    return np.asarray(model.predict(Xt), dtype=float).reshape(len(Xt), -1)


def constant(X, Y, Xt):
    if CLASSIFY:
        prior = np.bincount(Y, minlength=len(CLASSES)) / len(Y)
        return np.tile(prior, (len(Xt), 1))
    return np.tile(Y.mean(axis=0), (len(Xt), 1))


def write(pred):
    pred = np.asarray(pred, dtype=float)
    sub = pd.DataFrame({SPEC["id_column"]: test[SPEC["id_column"]]})
    cols = SPEC["submission_columns"]
    if OUT in ("probability", "class_probabilities", "multilabel"):
        pred = np.clip(0.85 * pred + 0.15 * constant(X, Y, Xt), 0.01, 0.99)
    if OUT == "probability":
        sub[cols[0]] = pred[:, CLASSES.index("1")]
    elif OUT == "class_probabilities":
        pred = pred / pred.sum(axis=1, keepdims=True)
        for j, c in enumerate(cols):
            sub[c] = pred[:, j]
    elif OUT in ("label", "ordinal"):
        sub[cols[0]] = [CLASSES[j] for j in pred.argmax(axis=1)]
    elif OUT == "multilabel":
        for j, c in enumerate(cols):
            sub[c] = pred[:, j]
    elif OUT == "ranked_list":
        order = np.argsort(-pred, axis=1, kind="stable")[:, : SPEC["k"]]
        sub[cols[0]] = [" ".join(items[j] for j in row) for row in order]
    else:
        if SPEC["non_negative"]:
            pred = np.clip(pred, 0.0, None)
        for j, c in enumerate(cols):
            sub[c] = pred[:, j]
    sub.to_csv("submission.csv", index=False)
    print(f"{RUNG}: wrote {len(sub)} rows")
'''

_MODELS = {
    "constant": r'''
write(constant(X, Y, Xt))
''',
    "simple": r'''
# 25 nearest neighbours on standardised features, in numpy (chunked for large test sets).
mu, sd = X.mean(axis=0), X.std(axis=0) + 1e-9
A, B = (X - mu) / sd, (Xt - mu) / sd
T = np.eye(len(CLASSES))[Y] if CLASSIFY else Y.astype(float)
k = min(25, len(A))
pred = []
for start in range(0, len(B), 512):
    rows = B[start:start + 512]
    d = (rows ** 2).sum(1)[:, None] - 2 * rows @ A.T + (A ** 2).sum(1)
    near = np.argpartition(d, k - 1, axis=1)[:, :k]
    pred.append(T[near].mean(axis=1))
write(np.concatenate(pred))
''',
    "linear": r'''
# L2-regularised softmax regression (gradient descent) or ridge regression, in numpy.
mu, sd = X.mean(axis=0), X.std(axis=0) + 1e-9
A = np.column_stack([(X - mu) / sd, np.ones(len(X))])
B = np.column_stack([(Xt - mu) / sd, np.ones(len(Xt))])
penalty = np.eye(A.shape[1])
penalty[-1, -1] = 0.0  # no penalty on the intercept

def softmax_fit_predict(onehot):
    W = np.zeros((A.shape[1], onehot.shape[1]))
    for _ in range(300):
        Z = A @ W
        P = np.exp(Z - Z.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
        W -= 0.5 * (A.T @ (P - onehot) + 2.0 * penalty @ W) / len(A)
    Z = B @ W
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    return P / P.sum(axis=1, keepdims=True)

if CLASSIFY:
    pred = softmax_fit_predict(np.eye(len(CLASSES))[Y])
elif MULTI_BINARY:
    pred = np.column_stack([softmax_fit_predict(np.eye(2)[Y[:, j]])[:, 1]
                            for j in range(Y.shape[1])])
else:
    W = np.linalg.solve(A.T @ A + 3.0 * penalty, A.T @ Y)
    pred = B @ W
write(pred)
''',
    "tree_ensemble": r'''
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
def make(task):
    cls = RandomForestClassifier if task == "classify" else RandomForestRegressor
    return cls(n_estimators=100, min_samples_leaf=2, random_state=0, n_jobs=1)
write(fit_predict(make, X, Y, Xt))
''',
    "tuned": r'''
from sklearn.ensemble import (ExtraTreesClassifier, ExtraTreesRegressor,
                              GradientBoostingClassifier, GradientBoostingRegressor,
                              RandomForestClassifier, RandomForestRegressor)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

def forest(leaf):
    return lambda t: (RandomForestClassifier if t == "classify" else RandomForestRegressor)(
        n_estimators=60, min_samples_leaf=leaf, max_features=0.5, random_state=0, n_jobs=1)
def extra(t):
    return (ExtraTreesClassifier if t == "classify" else ExtraTreesRegressor)(
        n_estimators=60, min_samples_leaf=2, random_state=0, n_jobs=1)
def boost(t):
    return (GradientBoostingClassifier if t == "classify" else GradientBoostingRegressor)(
        n_estimators=60, max_depth=2, learning_rate=0.15, subsample=0.8, random_state=0)
def linear(c):
    return lambda t: make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000)
                                   if t == "classify" else Ridge(alpha=1.0 / c))
candidates = {"forest_leaf1": forest(1), "forest_leaf4": forest(4), "extra_trees": extra,
              "linear_c0.1": linear(0.1), "linear_c3": linear(3.0)}
if MULTI_BINARY:  # one model per column: keep the search small
    candidates = {k: candidates[k] for k in ("forest_leaf4", "extra_trees", "linear_c0.1")}
elif CLASSIFY or Y.shape[1] == 1:
    candidates["boosting"] = boost

def loss(pred, truth):
    if CLASSIFY:
        p = np.clip(pred, 0.01, 0.99)
        p = p / p.sum(axis=1, keepdims=True)
        return -np.mean(np.log(p[np.arange(len(truth)), truth]))
    if MULTI_BINARY:
        p = np.clip(pred, 0.01, 0.99)
        return -np.mean(truth * np.log(p) + (1 - truth) * np.log(1 - p))
    return np.mean(((pred - truth) / (truth.std(axis=0) + 1e-9)) ** 2)

folds = list(KFold(3, shuffle=True, random_state=0).split(X))
cv = {name: np.mean([loss(fit_predict(make, X[a], Y[a], X[b]), Y[b]) for a, b in folds])
      for name, make in candidates.items()}
best = min(cv, key=cv.get)
print("cv losses:", {k: round(float(v), 4) for k, v in cv.items()}, "chosen:", best)
write(fit_predict(candidates[best], X, Y, Xt))
''',
}


def script(rung: str, spec: BaselineSpec) -> str:
    """The full Python program for one rung; reads $PUBLIC_DIR, writes ./submission.csv."""
    if rung not in _MODELS:
        raise KeyError(f"unknown baseline rung {rung!r}; rungs: {list(RUNGS)}")
    prelude = (_PRELUDE.replace("__SPEC__", repr(json.dumps(spec.to_dict())))
               .replace("__RUNG__", repr(rung)))
    return prelude + _MODELS[rung]
