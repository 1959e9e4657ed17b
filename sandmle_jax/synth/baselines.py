"""The ML Developer's baseline ladder: five real programs run in the sandbox.

Each rung is a self-contained Python script that reads the task's public/ train.csv and test.csv
and writes submission.csv in its workspace, exactly as an agent would. The scripts share one
prelude (loading, featurising each input column by what it holds, fitting and writing the
submission per output kind) and differ in the model: constant (train prior or mean), simple (25 nearest neighbours), linear
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
    feature_kind: str  # the modality (seeds.MODALITIES)
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


def text_features(docs):
    """log(1 + count) of the 200 words and word pairs found in most notes (a pair keeps a
    negation); few and dense, so neighbours in this space are neighbours in content."""
    import collections, re
    tokens = [re.findall(r"[a-z_]+", str(t).lower()) for t in docs.fillna("")]
    grams = [w + [a + " " + b for a, b in zip(w, w[1:])] for w in tokens]
    spread = collections.Counter(g for d in grams for g in set(d))
    common = sorted(spread.items(), key=lambda kv: (-kv[1], kv[0]))[:200]  # ties by name
    vocab = {g: j for j, (g, c) in enumerate(common) if c >= 3}
    X = np.zeros((len(grams), max(len(vocab), 1)))
    for i, doc in enumerate(grams):
        for g in doc:
            if g in vocab:
                X[i, vocab[g]] += 1.0
    return np.log1p(X)


def image_features(paths):
    """Each channel pooled to a 4x4 grid, channel statistics, bright and saturated shares
    (few features: the linear rung fits them from 50-200 rows)."""
    from PIL import Image
    rows = []
    for rel in paths:
        img = np.asarray(Image.open(os.path.join(PUBLIC, rel)).convert("RGB"), float) / 255.0
        h, w, _ = img.shape
        ph, pw = max(h // 4, 1), max(w // 4, 1)
        small = img[: h - h % ph, : w - w % pw].reshape(h // ph, ph, w // pw, pw, 3).mean(
            axis=(1, 3))
        grey = img.mean(axis=2)
        saturation = img.max(axis=2) - img.min(axis=2)
        vivid = saturation > 0.4
        colour = img[vivid].mean(axis=0) if vivid.any() else np.zeros(3)
        grad = np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean()
        rows.append(np.concatenate([small.ravel(), img.mean(axis=(0, 1)), img.std(axis=(0, 1)),
                                    colour, [vivid.mean(), (grey > 0.6).mean(), grad]]))
    return np.array(rows)


def audio_features(paths):
    """Log energy in 16 frequency bands, loudness, zero crossings and the envelope's bursts."""
    import wave
    rows = []
    for rel in paths:
        with wave.open(os.path.join(PUBLIC, rel)) as clip:
            x = np.frombuffer(clip.readframes(clip.getnframes()), dtype="<i2") / 32768.0
        spectrum = np.abs(np.fft.rfft(x))
        edges = np.unique(np.geomspace(4, len(spectrum) - 1, 17).astype(int))
        bands = [spectrum[a:b].sum() for a, b in zip(edges[:-1], edges[1:])]
        frames = x[: len(x) // 200 * 200].reshape(-1, 200)
        energy = np.sqrt((frames ** 2).mean(axis=1))
        loud = energy > 2.0 * np.median(energy)
        rows.append(np.concatenate([np.log1p(bands), [
            np.sqrt((x ** 2).mean()), np.abs(np.diff(np.sign(x))).mean(), energy.max(),
            energy.std(), loud.mean(), np.sum(np.diff(loud.astype(int)) == 1)]]))
    return np.array(rows)


def table_features(frame):
    numeric = frame.select_dtypes(include="number")
    numeric = numeric.fillna(numeric.median()).fillna(0.0)
    categorical = [c for c in frame.columns if c not in numeric.columns]
    parts = [numeric] + ([pd.get_dummies(frame[categorical].astype(str), dtype=float)]
                         if categorical else [])
    return pd.concat(parts, axis=1).to_numpy(float)


def neighbour_features(both, X):
    """Graph tasks: each node's mean standardised features over its edges.csv neighbours, and
    its degree."""
    edges = pd.read_csv(os.path.join(PUBLIC, "edges.csv"))
    row = {v: i for i, v in enumerate(both[SPEC["id_column"]])}
    a = edges.iloc[:, 0].map(row).to_numpy()
    b = edges.iloc[:, 1].map(row).to_numpy()
    keep = ~(np.isnan(a.astype(float)) | np.isnan(b.astype(float)))
    a, b = a[keep].astype(int), b[keep].astype(int)
    Z = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-9)
    total, degree = np.zeros_like(Z), np.zeros(len(Z))
    for u, v in ((a, b), (b, a)):
        np.add.at(total, u, Z[v])
        np.add.at(degree, u, 1.0)
    return np.column_stack([total / np.maximum(degree, 1.0)[:, None], degree])


def featurise(frames):
    """Per column: file paths as images or audio, long strings as text, the rest as a table;
    series as raw readings plus statistics; graphs add neighbour means."""
    kind, cols = SPEC["feature_kind"], SPEC["feature_columns"]
    both = pd.concat(frames, ignore_index=True)
    n = len(frames[0])
    if kind == "timeseries":
        V = both[cols].to_numpy(dtype=float)
        t = np.arange(V.shape[1]) - (V.shape[1] - 1) / 2
        slope = (V - V.mean(axis=1, keepdims=True)) @ t / (t @ t)
        stats = [V.mean(1), V.std(1), V.min(1), V.max(1), V[:, -1], slope,
                 np.diff(V, axis=1).std(1)]
        X = np.column_stack([V, *stats])
        return X[:n], X[n:]
    parts, table = [], []
    for c in cols:
        values = both[c]
        names = values.astype(str).str.lower()
        strings = not pd.api.types.is_numeric_dtype(values)
        if strings and names.str.endswith((".png", ".jpg")).all():
            parts.append(image_features(values))
        elif strings and names.str.endswith(".wav").all():
            parts.append(audio_features(values))
        elif strings and names.str.len().mean() > 40:
            parts.append(text_features(values))
        else:
            table.append(c)
    if table:
        T = table_features(both[table])
        parts.append(T)
        if kind == "graph":
            parts.append(neighbour_features(both, T))
    X = np.column_stack(parts) if parts else np.zeros((len(both), 1))
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
