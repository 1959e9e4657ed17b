"""Solution programs the reference agent writes: real ML code, in tiers of different quality.

Each program is self-contained Python that reads the task's files from ./data/, takes the id
and target columns from the sample submission (the training label is the column train.csv has
and test.csv lacks), infers feature types at run time (numeric, categorical, free text, image
files), fits a model of its tier and writes submission.csv in the sample submission's format.
Nothing task-specific is written into a program except the branch for the task's submission
kind and the tier's model: the same program serves every task of a kind, which is what lets a
tiny policy learn to write it. A task graded by its own grader (no registered metric) takes its
kind from its task type. Real tables need more, and only where a table needs it (`_needs`, read
off the public files as an agent reads them) does its program carry it: the label found by the
sample's target name (train.csv holds other columns test.csv lacks), rows without a label
dropped, boolean features one-hot encoded. Other programs stay the text the tiny policy learns:
six such lines added to every program took its held-out valid rate after SFT from 0.70 to 0.10
(benchmarks/RESULTS.md). Every program
builds all four tiers' models and picks one in a single line, `TIER = "forest"`: a policy that
imitates them chooses its model with one token, which the rest of the program cannot
contradict. The tiers give evaluation a ladder of baselines and SFT data of varied quality:

    constant   class prior / training mean (what a careless agent gets)
    linear     imputation + scaling + one-hot + TF-IDF, then logistic / ridge regression
    forest     the same features, random forest
    boosting   the same features, histogram gradient boosting

and, outside that ladder, `lightgbm` (the same features, LightGBM: the gradient-boosting library
the release's agents use; its lines go only into its own program, and it runs where the sandbox
imports lightgbm) and `tuned`: whichever of linear, forest and boosting cross-validates best
on the task's training rows (three folds), refitted on all of them. It is the reference agent's
default as a baseline: no single model family wins on every real table (boosting did worse
than the class prior on a 270-row table that a linear model fits).
"""

from __future__ import annotations

import functools
import inspect
import pathlib
import textwrap
import typing

import pandas as pd

from sandmle_jax.agent import prompts
from sandmle_jax.tasks import class_columns
from sandmle_jax.tasks import metrics as metrics_lib
from sandmle_jax.tasks.task import Task

TIERS = ("constant", "linear", "forest", "boosting")  # each a model, chosen in one line
LIBRARY_TIERS = ("lightgbm",)  # a model from prompts.OPTIONAL_LIBRARIES, in its own program
TUNED = "tuned"
AGENT_TIERS = TIERS + LIBRARY_TIERS + (TUNED,)  # what the reference agent can be asked to play


def check_tier(tier: str) -> None:
    """ValueError for a tier the reference agent does not play."""
    known = AGENT_TIERS
    if tier not in known:
        raise ValueError(f"unknown tier {tier!r}; known: {known}")


# Outside the agent's tiers: the fidelity benchmark's seven-strategy ladder adds two weak
# learners. Their model lines, and the library tiers', go only into their own programs. LightGBM's
# defaults are for large tables: 20 rows a leaf would leave a 100-row task with a few splits.
LADDER = ("constant", "knn", "tree", "linear", "forest", "boosting", TUNED)
_LIGHTGBM = ("n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=5, "
             "subsample=0.8,\n    subsample_freq=1, colsample_bytree=0.8, random_state=0, "
             "verbose=-1")
_OWN_MODELS = {
    "classifier": {
        "lightgbm": "from lightgbm import LGBMClassifier\n"
                    f"MODELS[\"lightgbm\"] = LGBMClassifier(\n    {_LIGHTGBM})\n",
        "knn": "from sklearn.neighbors import KNeighborsClassifier\n"
               "MODELS[\"knn\"] = KNeighborsClassifier(n_neighbors=15)\n",
        "tree": "from sklearn.tree import DecisionTreeClassifier\n"
                "MODELS[\"tree\"] = DecisionTreeClassifier(max_depth=4, random_state=0)\n"},
    "regressor": {
        "lightgbm": "from lightgbm import LGBMRegressor\n"
                    f"MODELS[\"lightgbm\"] = LGBMRegressor(\n    {_LIGHTGBM})\n",
        "knn": "from sklearn.neighbors import KNeighborsRegressor\n"
               "MODELS[\"knn\"] = KNeighborsRegressor(n_neighbors=15)\n",
        "tree": "from sklearn.tree import DecisionTreeRegressor\n"
                "MODELS[\"tree\"] = DecisionTreeRegressor(max_depth=4, random_state=0)\n"},
}

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
{labels}features = [c for c in test.columns if c != ID and c in train.columns]
kinds = {{"num": [], "cat": [], "txt": [], "img": []}}
for c in features:
    col = train[c].astype(str)
{bools}    if pd.api.types.is_numeric_dtype(train[c]):
        kinds["num"].append(c)
    elif col.str.lower().str.endswith((".png", ".jpg")).all():
        kinds["img"].append(c)
    else:
        kinds["txt" if col.str.len().mean() > 25 else "cat"].append(c){extra_kinds}
parts = [("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), kinds["num"]),
         ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                               OneHotEncoder(handle_unknown="ignore")), kinds["cat"])]
parts = [p for p in parts if p[2]] + [(c, TfidfVectorizer(max_features=2000), c)
                                      for c in kinds["txt"]]


def images(frame):
    from PIL import Image
    pixels = [np.stack([np.asarray(Image.open(D + "/" + p).convert("RGB").resize((8, 8)),
                                   dtype=np.float32).ravel() / 255 for p in frame[c]])
              for c in kinds["img"]]
    return np.hstack(pixels) if pixels else np.zeros((len(frame), 0))


prep = ColumnTransformer(parts, sparse_threshold=1.0) if parts else None
X = sparse.hstack([sparse.csr_matrix(prep.fit_transform(train[features]) if prep else
                                     np.zeros((len(train), 0))), images(train)]).tocsr()
Xt = sparse.hstack([sparse.csr_matrix(prep.transform(test[features]) if prep else
                                      np.zeros((len(test), 0))), images(test)]).tocsr()
X, Xt = X.toarray(), Xt.toarray()
{extra_features}sub = pd.DataFrame({{ID: test[ID]}})
'''

# Only in the programs of tasks that need them (`_needs`): audio clips and a graph's edges.
_AUDIO_KINDS = '''
kinds["aud"] = [c for c in kinds["cat"]
                if train[c].astype(str).str.endswith(".wav").all()]
kinds["cat"] = [c for c in kinds["cat"] if c not in kinds["aud"]]'''
_AUDIO = '''

def sounds(frame):
    import wave
    rows = []
    for path in frame[kinds["aud"][0]]:
        with wave.open(D + "/" + path) as clip:
            x = np.frombuffer(clip.readframes(clip.getnframes()), dtype="<i2") / 32768.0
        spectrum = np.abs(np.fft.rfft(x))
        bands = np.array_split(spectrum[1:], 24)
        frames = x[: len(x) // 200 * 200].reshape(-1, 200)
        energy = np.sqrt((frames ** 2).mean(axis=1))
        loud = energy > 2 * np.median(energy)
        rows.append([*np.log1p([b.sum() for b in bands]), energy.max(), energy.std(),
                     np.sum(np.diff(loud.astype(int)) == 1)])
    return np.array(rows)


X, Xt = np.hstack([X, sounds(train)]), np.hstack([Xt, sounds(test)])
'''
_GRAPH = '''edges = pd.read_csv(D + "/edges.csv")
nodes = pd.Series(np.arange(len(train) + len(test)), index=pd.concat([train[ID], test[ID]]))
a = nodes.reindex(edges.iloc[:, 0]).to_numpy()
b = nodes.reindex(edges.iloc[:, 1]).to_numpy()
keep = ~(np.isnan(a) | np.isnan(b))
a, b = a[keep].astype(int), b[keep].astype(int)
A = sparse.coo_matrix((np.ones(2 * len(a)), (np.r_[a, b], np.r_[b, a])),
                      shape=(len(nodes), len(nodes))).tocsr()
degree = np.asarray(A.sum(axis=1)).ravel()
Z = np.vstack([X, Xt])
Z = np.hstack([Z, (A @ Z) / np.maximum(degree, 1)[:, None], degree[:, None]])
X, Xt = Z[:len(train)], Z[len(train):]
'''

_TUNED = '''from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

MODELS["tuned"] = GridSearchCV(Pipeline([("model", MODELS["linear"])]), {"model": [
    MODELS["linear"], MODELS["forest"], MODELS["boosting"]]}, cv=3)
'''

_LABELS = "labels = [c for c in train.columns if c not in test.columns and c != ID]\n"
_LABELS_BY_NAME = ("labels = ([c for c in TARGETS if c in train.columns] or\n"
                   "          [c for c in train.columns if c not in test.columns and c != ID])\n")
_DROP_UNLABELLED = "train = train.dropna(subset=labels).reset_index(drop=True)\n"
_BOOLS = '''    if pd.api.types.is_bool_dtype(train[c]):
        train[c], test[c] = col, test[c].astype(str)
        kinds["cat"].append(c)
        continue
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
proba = model.predict_proba(Xt)
column = match_columns(list(model.classes_), TARGETS) or {{}}
for c in TARGETS:
    sub[c] = 0.0
for j, label in enumerate(model.classes_):
    if label in column:
        sub[column[label]] = proba[:, j]
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
    "ranked_list": '''K = {k}
lists = train[labels[0]].astype(str).str.split()
if lists.str.len().eq(1).all():  # one item per row: rank the items by predicted probability
    model = new_model().fit(X, lists.str[0])
    best = np.argsort(-model.predict_proba(Xt), axis=1)[:, :K]
    sub[TARGETS[0]] = [" ".join(map(str, model.classes_[row])) for row in best]
else:  # several per row: the most frequent items
    sub[TARGETS[0]] = " ".join(lists.explode().value_counts().index[:K].astype(str))
''',
}
_BRANCHES["ordinal"] = _BRANCHES["label"]
_BRANCHES["item_scores"] = _BRANCHES["value"]
_CLASSIFICATION = ("probability", "label", "ordinal", "class_probabilities",
                   "multilabel_probabilities")

_EPILOGUE = '''sub[list(sample.columns)].to_csv("submission.csv", index=False)
print("wrote submission.csv", sub.shape)
'''


# A custom grader's task: the submission kind its task type implies.
_KIND_OF_TASK_TYPE = {"binary": "label", "multiclass": "label", "ordinal": "ordinal",
                      "multilabel": "multilabel_probabilities", "ranking": "ranked_list"}


def submission_kind(task: Task) -> tuple[str, int]:
    """The submission's kind (a `metrics.Kind` value) and its ranking cutoff (10 if none)."""
    try:
        metric = metrics_lib.get_metric(task.spec.metric)
    except KeyError:  # graded by the task's own grader
        return _KIND_OF_TASK_TYPE.get(task.spec.task_type, "value"), 10
    return metric.kind.value, metric.k or 10


class _Needs(typing.NamedTuple):
    """What a task's public files ask of its programs beyond the common text."""

    by_name: bool  # the label found by the sample's target name
    unlabelled: bool  # rows without a label to drop
    bools: bool  # boolean features to one-hot encode
    audio: bool  # rows name .wav clips
    graph: bool  # edges.csv links the rows


@functools.lru_cache(maxsize=256)
def _needs(public_dir: pathlib.Path) -> _Needs:
    """Read off the task's public files once; the first three where they cannot be read.
    Cached: a task's files never change (checksums), and every episode's program asks again."""
    graph = (public_dir / "edges.csv").is_file()
    try:
        train = pd.read_csv(public_dir / "train.csv")
        test = pd.read_csv(public_dir / "test.csv", nrows=5)
        sample = pd.read_csv(public_dir / "sample_submission.csv", nrows=5)
    except (OSError, ValueError, pd.errors.ParserError):
        return _Needs(True, True, True, False, graph)
    id_column, targets = sample.columns[0], list(sample.columns[1:])
    missing = [c for c in train.columns if c not in test.columns and c != id_column]
    labels = [c for c in targets if c in train.columns] or missing
    features = [c for c in test.columns if c != id_column and c in train.columns]
    audio = any(not pd.api.types.is_numeric_dtype(train[c])
                and train[c].astype(str).str.endswith(".wav").all() for c in features)
    return _Needs(labels != missing, bool(train[labels].isna().any().any()) if labels else False,
                  any(pd.api.types.is_bool_dtype(train[c]) for c in features), audio, graph)


# Shared programs: one text for every task of these kinds, which it picks in its first line.
SHARED_KINDS = ("probability", "label", "ordinal", "value")
_SHARED_IMPORTS = '''from sklearn.base import clone
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                              RandomForestClassifier, RandomForestRegressor)
from sklearn.linear_model import LogisticRegression, Ridge

'''


def _model_dict(family: str) -> str:
    """The `MODELS = {...}` statement of a family's model block, without its imports."""
    return "MODELS =" + _MODELS[family].split("\nMODELS =", 1)[1]


def _shared_models() -> str:
    return (_SHARED_IMPORTS + 'if KIND == "value":\n' + textwrap.indent(
        _model_dict("regressor"), "    ") + "else:\n" + textwrap.indent(
        _model_dict("classifier"), "    "))


def _shared_branches(value: str) -> str:
    return ('if KIND == "probability":\n' + textwrap.indent(_BRANCHES["probability"], "    ")
            + 'elif KIND == "value":\n' + textwrap.indent(value, "    ")
            + "else:\n" + textwrap.indent(_BRANCHES["label"], "    "))


def solution_code(task: Task, tier: str, data_dir: str = prompts.DATA_DIR, *,
                  shared: bool = False) -> str:
    """A complete program that trains a `tier` model (of LADDER or LIBRARY_TIERS) and writes
    submission.csv, reading the task's files from `data_dir` (the agent's ./data link by
    default). `shared`: for a task of SHARED_KINDS, the text every such task gets, with the
    task's kind in its first line (`KIND = "value"`) and both model families and every kind's
    branch in its body, so that a policy imitating it names the kind with one token."""
    if tier not in LADDER + LIBRARY_TIERS:
        raise ValueError(f"unknown tier {tier!r}; known: {LADDER + LIBRARY_TIERS}")
    kind, k = submission_kind(task)
    shared = shared and kind in SHARED_KINDS
    log_target = task.spec.metric in ("rmsle", "mean_columnwise_rmsle")
    needs = _needs(task.public_dir)
    labels = ((_LABELS_BY_NAME if needs.by_name else _LABELS)
              + (_DROP_UNLABELLED if needs.unlabelled else ""))
    preamble = _PREAMBLE.format(data=data_dir, labels=labels,
                                bools=_BOOLS if needs.bools else "",
                                extra_kinds=_AUDIO_KINDS if needs.audio else "",
                                extra_features=((_AUDIO if needs.audio else "")
                                                + (_GRAPH if needs.graph else "")))
    if kind == "class_probabilities":  # the label -> column match, as the importer makes it
        preamble += "\n\n" + inspect.getsource(class_columns.match_columns) + "\n\n"
    family = "classifier" if kind in _CLASSIFICATION + ("ranked_list",) else "regressor"
    models = _shared_models() if shared else _MODELS[family]
    if tier == TUNED:
        models += "\n" + _TUNED
    elif tier in _OWN_MODELS[family]:
        if shared:
            raise ValueError(f"tier {tier!r} has no shared program (its model is one family's)")
        models += "\n" + _OWN_MODELS[family][tier]
    value = _BRANCHES["value"].format(
        fit_target="np.log1p(y.clip(lower=0))" if log_target else "y",
        unfit="np.expm1(pred).clip(min=0)" if log_target else "pred")
    branch = (_shared_branches(value) if shared else
              value if kind in ("value", "item_scores") else _BRANCHES[kind].format(k=k))
    head = f'KIND = "{kind}"\n' if shared else ""
    return head + preamble + models + _CHOICE.format(tier=tier) + branch + _EPILOGUE
