"""A real task's DNA, read off its files: the structure every micro task grown from it keeps.

`read_seed_dna(task)` reads a loaded task (one of ours, or an MLE-bench competition imported by
`tasks.mlebench`) the way a data scientist would before copying it: modality, task type, metric
and direction, submission format, label cardinality and class shares, feature count per type
(numeric, categorical, free text, image file names, a time index), missing-value and outlier
rates, id column and sizes, and how learnable, how linear and how dense it is (`seed_signal`).
`seed_from_task` turns it into a `Seed`; `micro_expectation` says which of those fields a micro
descendant must show and with which values, and `drift` lists where a generated task departs
from them (the generator's `seed_dna_kept` gate).

Tolerance, stated once: a micro table holds at most MAX_NUMERIC numeric and MAX_CATEGORICAL
categorical columns (the domain vocabularies' sizes), so a wider seed keeps its column counts up
to those caps; a text seed keeps one free-text column and its numeric side columns (capped
alike) and drops its other side columns (categorical, time); image, series, audio and graph
seeds keep their modality's generator shape (a graph its numeric node features, capped alike); multi-target regression keeps at most MAX_VALUE_TARGETS targets and
multilabel at most MAX_LABELS labels. Class shares, missing and outlier rates, signal, linearity
and relevant share are not structural: they steer the mutations (imbalance, gaps, outliers,
label noise, non-linearity, distractors and how many inputs the rule reads); the micro scale
sets the sizes, and the generator names and types the id column.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from sandmle_jax import dataclass_keys
from sandmle_jax.synth import seed_signal
from sandmle_jax.synth.seeds import MODALITIES, TASK_TYPES, Seed, SeedError
from sandmle_jax.tasks import metrics as metrics_lib
from sandmle_jax.tasks import profile
from sandmle_jax.tasks.task import Task

MAX_NUMERIC = 14  # numeric features every domain vocabulary names
MAX_CATEGORICAL = 3  # categorical features every domain vocabulary names
MAX_VALUE_TARGETS = 3  # regression targets every domain names
MAX_LABELS = 5  # multilabel labels every domain names
_MAX_ROWS_READ = 50_000
_CLASS_TYPES = ("binary", "multiclass", "ordinal")
# What a micro descendant must show whatever its modality.
_ALWAYS_KEPT = ("modality", "task_type", "metric", "lower_is_better", "submission", "n_targets",
                "n_classes")


@dataclasses.dataclass(frozen=True)
class SeedDNA:
    source: str  # the task id it was read from
    modality: str
    task_type: str
    metric: str
    lower_is_better: bool
    submission: str  # metrics.Kind value: what the submission's target columns hold
    n_targets: int  # submission target columns
    n_classes: int  # 0 where the target is not categorical
    class_shares: tuple[float, ...]  # training label shares, largest first (() if none)
    n_numeric: int
    n_categorical: int
    n_text: int
    n_image: int  # columns of image file names
    time_column: str  # "" without a time index
    text_words: int  # mean words per free-text cell (0 without text)
    missing_rate: float  # empty cells over all feature cells of train.csv
    outlier_rate: float  # numeric cells far out (beyond 3 IQR of the quartiles) over all
    id_column: str
    id_kind: str  # "integer" or "string"
    train_rows: int
    test_rows: int
    signal: float | None = None  # seed_signal: best CV gain over constant, share of possible
    linearity: float | None = None  # seed_signal: linear model's share of that gain
    relevant_share: float | None = None  # seed_signal: share of columns informative alone

    def __post_init__(self):
        object.__setattr__(self, "class_shares", tuple(float(s) for s in self.class_shares))

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["class_shares"] = list(self.class_shares)
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SeedDNA:
        dataclass_keys.check_keys(cls, raw, "seed dna", error=SeedError, require=True)
        return cls(**raw)


def _read_table(task: Task, name: str, nrows: int | None = None) -> pd.DataFrame:
    path = task.public_dir / name
    if not path.is_file():
        raise SeedError(f"{path}: missing; a seed needs public/train.csv and public/test.csv")
    try:
        return pd.read_csv(path, nrows=nrows)
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise SeedError(f"{path}: cannot read it: {' '.join(str(e).split())[:200]}") from None


def _count_rows(task: Task, name: str) -> int:
    with open(task.public_dir / name, "rb") as f:
        return max(sum(1 for _ in f) - 1, 0)


def _feature_types(train: pd.DataFrame, features: list[str]) -> dict[str, Any]:
    kinds = {"n_numeric": 0, "n_categorical": 0, "n_text": 0, "n_image": 0, "time_column": ""}
    text_columns = []
    for column in features:
        kind = profile.column_kind(str(column), train[column])
        if kind == "time":
            kinds["time_column"] = kinds["time_column"] or str(column)
        else:
            kinds[f"n_{kind}"] += 1
        if kind == "text":
            text_columns.append(column)
    words = [train[c].dropna().astype(str).str.split().str.len().mean() for c in text_columns]
    kinds["text_words"] = int(round(float(np.mean(words)))) if words else 0
    return kinds


def _labels(task: Task, train: pd.DataFrame, test_columns: list[str]) -> pd.Series | None:
    """The training label column: the target named in train.csv, else the one column that
    train.csv has and test.csv lacks (a class-probability task trains on one label column)."""
    named = [c for c in task.spec.target_columns if c in train.columns]
    if len(named) == 1:
        return train[named[0]]
    extra = [c for c in train.columns if c not in test_columns and c != task.spec.id_column]
    return train[extra[0]] if len(extra) == 1 else None


def _outlier_rate(cells: pd.DataFrame) -> float:
    """Tukey's far-out cells: beyond 3 interquartile ranges of the quartiles, in numeric
    columns whose quartiles differ; over all numeric cells."""
    numeric = cells.select_dtypes("number").select_dtypes(exclude="bool")
    if numeric.empty:
        return 0.0
    q1, q3 = numeric.quantile(0.25), numeric.quantile(0.75)
    spread = q3 - q1
    far = (numeric.lt(q1 - 3 * spread) | numeric.gt(q3 + 3 * spread)) & spread.gt(0)
    return round(float(far.to_numpy().sum() / numeric.notna().to_numpy().sum()), 4)


def read_seed_dna(task: Task, measure_signal: bool = True) -> SeedDNA:
    """The task's DNA; SeedError names the file or field that cannot be read. Without
    `measure_signal` the measured `signal`, `linearity` and `relevant_share` are left out (the
    drift gate reads only structure)."""
    spec = task.spec
    where = f"seed {task.root}"
    try:
        metric = metrics_lib.get_metric(spec.metric)
    except KeyError:
        raise SeedError(f"{where}: task.json metric {spec.metric!r} is not a registered metric "
                        f"(a seed's descendants are graded by it); registered: "
                        f"{metrics_lib.metric_names()}") from None
    train = _read_table(task, "train.csv", nrows=_MAX_ROWS_READ)
    test_columns = list(_read_table(task, "test.csv", nrows=5).columns)
    features = [c for c in test_columns if c != spec.id_column and c in train.columns]
    if not features:
        raise SeedError(f"{task.public_dir / 'test.csv'}: no feature column shared with "
                        "train.csv besides the id")
    modality = spec.modality if spec.modality in MODALITIES else profile.infer_modality(
        task.public_dir, skip_columns=(spec.id_column,))
    task_type = spec.task_type if spec.task_type in TASK_TYPES else profile.infer_task_type(
        metric, task.answers[list(spec.target_columns)], modality)
    labels = _labels(task, train, test_columns)
    n_classes, shares = 0, ()
    if task_type in _CLASS_TYPES:
        if labels is None:
            raise SeedError(f"{task.public_dir / 'train.csv'}: no training label column for "
                            f"the targets {list(spec.target_columns)}")
        counts = labels.dropna().astype(str).value_counts(normalize=True)
        shares = tuple(round(float(s), 4) for s in counts.values)
        n_classes = (len(spec.target_columns) if metric.kind == metrics_lib.Kind.CLASS_PROBABILITIES
                     else len(set(labels.dropna().astype(str))
                              | set(task.answers[spec.target_columns[0]])))
    target = labels if labels is not None else next(
        (train[c] for c in spec.target_columns if c in train.columns), None)
    measured = relevant = None
    if target is not None and measure_signal:
        measured = seed_signal.measure(train, features, target, task_type)
        relevant = seed_signal.relevant_share(train, features, target, task_type)
    cells = train[features]
    ids = train[spec.id_column] if spec.id_column in train.columns else pd.Series([], dtype=str)
    return SeedDNA(
        source=spec.id, modality=modality, task_type=task_type, metric=metric.name,
        lower_is_better=metric.lower_is_better, submission=metric.kind.value,
        n_targets=len(spec.target_columns), n_classes=n_classes, class_shares=shares,
        **_feature_types(train, features),
        missing_rate=round(float(cells.isna().to_numpy().mean()), 4),
        outlier_rate=_outlier_rate(cells),
        id_column=spec.id_column,
        id_kind="integer" if pd.api.types.is_integer_dtype(ids) else "string",
        train_rows=_count_rows(task, "train.csv"), test_rows=_count_rows(task, "test.csv"),
        signal=measured[0] if measured else None, linearity=measured[1] if measured else None,
        relevant_share=relevant)


def micro_shape(dna: SeedDNA) -> dict[str, int]:
    """The input shape a micro descendant's generator is asked for (see the module's caps)."""
    if dna.modality == "tabular":
        numeric = min(dna.n_numeric, MAX_NUMERIC)
        categorical = min(dna.n_categorical, MAX_CATEGORICAL)
        if numeric + categorical == 0:
            raise SeedError(f"seed {dna.source}: a tabular seed needs a numeric or categorical "
                            "feature column")
        return {"n_numeric": numeric, "n_categorical": categorical}
    if dna.modality == "text":
        return {"n_cues": 5, "words": int(np.clip(dna.text_words or 30, 12, 60)),
                "n_numeric": min(dna.n_numeric, MAX_NUMERIC)}
    if dna.modality == "timeseries":
        return {"length": 32, "horizon": dna.n_targets if dna.task_type == "forecasting" else 0}
    if dna.modality == "graph":
        return {"n_features": int(np.clip(dna.n_numeric, 2, MAX_NUMERIC)), "communities": 4,
                "degree": 6}
    if dna.modality == "audio":
        return {"samples": 4000}
    return {"side": 32}


def _micro_targets(dna: SeedDNA) -> int:
    if dna.task_type == "regression":
        return min(dna.n_targets, MAX_VALUE_TARGETS)
    if dna.task_type == "multilabel":
        return min(dna.n_targets, MAX_LABELS)
    return dna.n_targets


def micro_expectation(dna: SeedDNA) -> dict[str, Any]:
    """The fields a micro descendant's re-read DNA must equal (the module's tolerance)."""
    expected = {name: getattr(dna, name) for name in _ALWAYS_KEPT}
    expected["n_targets"] = _micro_targets(dna)
    if dna.submission == metrics_lib.Kind.CLASS_PROBABILITIES.value:
        expected["n_classes"] = expected["n_targets"]
    if dna.modality == "tabular":
        shape = micro_shape(dna)
        expected |= {"n_numeric": shape["n_numeric"], "n_categorical": shape["n_categorical"],
                     "n_text": 0, "n_image": 0}
    elif dna.modality == "text":
        expected |= {"n_text": 1, "n_image": 0, "n_numeric": micro_shape(dna)["n_numeric"]}
    elif dna.modality == "image":
        expected |= {"n_image": 1, "n_text": 0}
    return expected


def drift(expected: Mapping[str, Any], found: SeedDNA) -> list[str]:
    """`field: seed implies X, task has Y` for every expected field the task departs from."""
    return [f"{name}: seed implies {value!r}, task has {getattr(found, name)!r}"
            for name, value in expected.items() if getattr(found, name) != value]


def seed_from_task(task: Task, seed_id: str | None = None, source: str = "") -> Seed:
    """A seed carrying the task's DNA; its descendants keep `micro_expectation(dna)`."""
    dna = read_seed_dna(task)
    if dna.task_type in _CLASS_TYPES and dna.n_classes < 2:
        raise SeedError(f"seed {task.root}: a {dna.task_type} task needs >= 2 classes in its "
                        f"training labels, found {dna.n_classes}")
    expected = micro_expectation(dna)
    return Seed(id=seed_id or task.id, modelled_on=task.id, modality=dna.modality,
                task_type=dna.task_type, metric=dna.metric, input_shape=micro_shape(dna),
                n_classes=expected["n_classes"], n_targets=expected["n_targets"],
                dna=dna.to_dict(), source=source or str(task.root))
