"""Solution programs the reference agent writes: real ML code, in tiers of different quality.

Each program is self-contained Python that reads the task's files from ./data/, takes the id
and target columns from the sample submission, infers feature types at run time (numeric,
categorical, free text, image files), fits a model of its tier and writes submission.csv in the
sample submission's format. Nothing task-specific is written into a program except the branch
for the task's submission kind and the tier's model: the same program serves every task of a
kind, which is what lets a tiny policy learn to write it. Every program builds all four tiers'
models and picks one in a single line, `TIER = "forest"`: a policy that imitates them chooses
its model with one token, which the rest of the program cannot contradict. The tiers give
evaluation a ladder of baselines and SFT data of varied quality:

    constant   class prior / training mean (what a careless agent gets)
    linear     imputation + scaling + one-hot + TF-IDF, then logistic / ridge regression
    forest     the same features, random forest
    boosting   the same features, histogram gradient boosting
"""

from __future__ import annotations

from sandmle_jax.agent import prompts
from sandmle_jax.tasks import metrics as metrics_lib
from sandmle_jax.tasks.task import Task

TIERS = ("constant", "linear", "forest", "boosting")

# Every tier's model, so that a program names its tier in one token (`TIER = "forest"`).
_MODELS = {
    "classifier": '''from sklearn.base import clone
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

MODELS = {"constant": DummyClassifier(strategy="prior"),
          "linear": LogisticRegression(max_iter=2000),
          "forest": RandomForestClassifier(n_estimators=300, random_state=0),
          "boosting": HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05,
                                                     random_state=0)}
''',
    "regressor": '''from sklearn.base import clone
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Ridge

MODELS = {"constant": DummyRegressor(strategy="mean"),
          "linear": Ridge(alpha=1.0),
          "forest": RandomForestRegressor(n_estimators=300, random_state=0),
          "boosting": HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05,
                                                    random_state=0)}
''',
}

EXPLORE = f'''import pandas as pd
for name in ("train.csv", "test.csv", "sample_submission.csv"):
    frame = pd.read_csv("{prompts.DATA_DIR}/" + name)
    print(name, frame.shape)
    print(frame.head(3).to_string()[:800])
'''

_PREAMBLE = '''import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

D = "{data}"
train, test = pd.read_csv(D + "/train.csv"), pd.read_csv(D + "/test.csv")
sample = pd.read_csv(D + "/sample_submission.csv")
ID, TARGETS = sample.columns[0], list(sample.columns[1:])
labels = [c for c in train.columns if c not in test.columns and c != ID]
features = [c for c in test.columns if c != ID and c in train.columns]
kinds = {{"num": [], "cat": [], "txt": [], "img": []}}
for c in features:
    col = train[c].astype(str)
    if pd.api.types.is_numeric_dtype(train[c]):
        kinds["num"].append(c)
    elif col.str.lower().str.endswith((".png", ".jpg")).all():
        kinds["img"].append(c)
    else:
        kinds["txt" if col.str.len().mean() > 25 else "cat"].append(c)
parts = [("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), kinds["num"]),
         ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                               OneHotEncoder(handle_unknown="ignore")), kinds["cat"])]
parts = [p for p in parts if p[2]] + [(c, TfidfVectorizer(max_features=2000), c)
                                      for c in kinds["txt"]]


def images(frame):
    from PIL import Image
    pixels = [np.stack([np.asarray(Image.open(D + "/" + p).convert("L").resize((16, 16)),
                                   dtype=np.float32).ravel() / 255 for p in frame[c]])
              for c in kinds["img"]]
    return np.hstack(pixels) if pixels else np.zeros((len(frame), 0))


prep = ColumnTransformer(parts, sparse_threshold=1.0) if parts else None
X = sparse.hstack([sparse.csr_matrix(prep.fit_transform(train[features]) if prep else
                                     np.zeros((len(train), 0))), images(train)]).tocsr()
Xt = sparse.hstack([sparse.csr_matrix(prep.transform(test[features]) if prep else
                                      np.zeros((len(test), 0))), images(test)]).tocsr()
X, Xt = X.toarray(), Xt.toarray()
sub = pd.DataFrame({{ID: test[ID]}})
'''

_CHOICE = '''TIER = "{tier}"


def new_model():
    return clone(MODELS[TIER])


'''

_BRANCHES = {
    "probability": '''y = train[labels[0]]
model = new_model().fit(X, y)
sub[TARGETS[0]] = model.predict_proba(Xt)[:, list(model.classes_).index(y.max())]
''',
    "label": '''model = new_model().fit(X, train[labels[0]])
sub[TARGETS[0]] = model.predict(Xt)
''',
    "class_probabilities": '''y = (train[labels[0]] if len(labels) == 1 else train[TARGETS].idxmax(axis=1)).astype(str)
model = new_model().fit(X, y)
proba, classes = model.predict_proba(Xt), [str(c) for c in model.classes_]
for c in TARGETS:
    sub[c] = proba[:, classes.index(str(c))] if str(c) in classes else 0.0
''',
    "multilabel_probabilities": '''for c in TARGETS:
    if train[c].nunique() < 2:
        sub[c] = float(train[c].iloc[0])
        continue
    model = new_model().fit(X, train[c])
    sub[c] = model.predict_proba(Xt)[:, list(model.classes_).index(1)]
''',
    "value": '''for c in TARGETS:
    y = train[c].astype(float)
    pred = new_model().fit(X, {fit_target}).predict(Xt)
    sub[c] = {unfit}
''',
    "ranked_list": '''counts = train[TARGETS[0]].fillna("").str.split().explode().value_counts()
sub[TARGETS[0]] = " ".join(counts.index[:10].astype(str))
''',
}
_BRANCHES["ordinal"] = _BRANCHES["label"]
_BRANCHES["item_scores"] = _BRANCHES["value"]
_CLASSIFICATION = ("probability", "label", "ordinal", "class_probabilities",
                   "multilabel_probabilities")

_EPILOGUE = '''sub[list(sample.columns)].to_csv("submission.csv", index=False)
print("wrote submission.csv", sub.shape)
'''


def solution_code(task: Task, tier: str) -> str:
    """A complete program that trains a `tier` model and writes submission.csv."""
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; known: {TIERS}")
    kind = metrics_lib.get_metric(task.spec.metric).kind.value
    log_target = task.spec.metric in ("rmsle", "mean_columnwise_rmsle")
    preamble = _PREAMBLE.format(data=prompts.DATA_DIR)
    models = _MODELS["classifier" if kind in _CLASSIFICATION else "regressor"]
    branch = _BRANCHES[kind].format(
        fit_target="np.log1p(y.clip(lower=0))" if log_target else "y",
        unfit="np.expm1(pred).clip(min=0)" if log_target else "pred")
    return preamble + models + _CHOICE.format(tier=tier) + branch + _EPILOGUE
