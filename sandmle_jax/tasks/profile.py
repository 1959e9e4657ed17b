"""What a competition's data looks like, read off its files: modality and task type.

Used where a task arrives without them (an imported MLE-bench competition). The rules, in order:
audio files under public/ (or a column of their names) make it `audio`; an edge list
(`edges.csv`, `*edges*.csv`, `links.csv`) beside the tables makes it `graph`; image files (or a
column of image file names) make it `image`; a column of long, wordy strings makes it `text`; a
column of dates or times makes it `timeseries`; else `tabular`.
The task type follows from the metric's kind, and for a class-label metric from how many
classes the answers hold.
"""

from __future__ import annotations

import pathlib
import warnings

import pandas as pd

from sandmle_jax.tasks import metrics as metrics_lib

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".gif", ".webp")
AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".ogg", ".aif", ".aiff", ".m4a")
_TEXT_MIN_CHARS = 40  # mean length of a free-text column
_TEXT_MIN_WORDS = 4
_SAMPLE_ROWS = 2000
_TIME_NAMES = ("date", "time", "timestamp", "datetime", "day", "month", "year", "week")


def training_table(public_dir: pathlib.Path, exclude: tuple[str, ...] = ()) -> pd.DataFrame:
    """The first rows of the public training CSV (train*.csv, else the largest CSV that is
    not a test or sample file); empty when there is none."""
    csvs = [p for p in public_dir.glob("*.csv") if p.name not in exclude]
    train = [p for p in csvs if p.stem.lower().startswith("train")]
    others = [p for p in csvs if not p.stem.lower().startswith(("test", "sample"))]
    pick = sorted(train) or sorted(others, key=lambda p: -p.stat().st_size)
    if not pick:
        return pd.DataFrame()
    return pd.read_csv(pick[0], nrows=_SAMPLE_ROWS)


def _has_files(public_dir: pathlib.Path, suffixes: tuple[str, ...]) -> bool:
    return any(p.suffix.lower() in suffixes for p in public_dir.rglob("*"))


def _names_end(column: pd.Series, suffixes: tuple[str, ...]) -> bool:
    values = column.dropna().astype(str)
    return len(values) > 0 and values.str.lower().str.endswith(suffixes).mean() > 0.9


def is_image_names(column: pd.Series) -> bool:
    return _names_end(column, IMAGE_SUFFIXES)


def is_media_names(column: pd.Series) -> bool:
    """A column naming per-row image or audio files."""
    return _names_end(column, IMAGE_SUFFIXES + AUDIO_SUFFIXES)


def is_text(column: pd.Series) -> bool:
    values = column.dropna().astype(str)
    if values.empty or pd.api.types.is_numeric_dtype(column):
        return False
    return (values.str.len().mean() >= _TEXT_MIN_CHARS
            and values.str.split().str.len().mean() >= _TEXT_MIN_WORDS)


def is_time(name: str, column: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(column):
        return False
    values = column.dropna().astype(str).head(200)
    if values.empty:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns when it guesses a format per element
        parsed = pd.to_datetime(values, errors="coerce", format="mixed")
    looks_like_time = parsed.notna().mean() > 0.95 and values.str.contains(r"\d").all()
    return looks_like_time and (any(t in name.lower() for t in _TIME_NAMES)
                                or values.str.contains(r"[-/:]").mean() > 0.95)


def column_kind(name: str, column: pd.Series) -> str:
    """One input column's kind: `image` (file names), `text`, `time`, `numeric` (booleans are
    not) or `categorical`, tested in that order."""
    if is_image_names(column):
        return "image"
    if is_text(column):
        return "text"
    if is_time(name, column):
        return "time"
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return "numeric"
    return "categorical"


def infer_modality(public_dir: str | pathlib.Path, skip_columns: tuple[str, ...] = ()) -> str:
    """`audio`, `graph`, `image`, `text`, `timeseries` or `tabular` (the module docstring)."""
    public_dir = pathlib.Path(public_dir)
    table = training_table(public_dir)
    columns = [c for c in table.columns if c not in skip_columns]
    if _has_files(public_dir, AUDIO_SUFFIXES) or any(
            _names_end(table[c], AUDIO_SUFFIXES) for c in columns):
        return "audio"
    if any(p.name.lower() == "links.csv" or "edges" in p.stem.lower()
           for p in public_dir.glob("*.csv")):
        return "graph"
    if _has_files(public_dir, IMAGE_SUFFIXES) or any(is_image_names(table[c]) for c in columns):
        return "image"
    if any(is_text(table[c]) for c in columns):
        return "text"
    if any(is_time(str(c), table[c]) for c in columns):
        return "timeseries"
    return "tabular"


def infer_task_type(metric: metrics_lib.Metric | None, targets: pd.DataFrame,
                    modality: str) -> str:
    """From the metric's kind; without a metric (a custom grader), from the answers' values."""
    if metric is None:
        return _task_type_from_values(targets, modality)
    kind = metric.kind
    Kind = metrics_lib.Kind
    if kind in (Kind.RANKED_LIST, Kind.ITEM_SCORES):
        return "ranking"
    if kind == Kind.MULTILABEL_PROBABILITIES:
        return "multilabel"
    if kind == Kind.CLASS_PROBABILITIES:
        return "multiclass"
    if kind == Kind.ORDINAL:
        return "ordinal"
    if kind == Kind.VALUE:
        return "forecasting" if modality == "timeseries" else "regression"
    if kind == Kind.PROBABILITY:
        return "binary"
    return "binary" if targets.iloc[:, 0].nunique() <= 2 else "multiclass"


def _task_type_from_values(targets: pd.DataFrame, modality: str) -> str:
    numeric = targets.apply(pd.to_numeric, errors="coerce")
    if numeric.notna().all().all():
        if numeric.isin([0, 1]).all().all():
            return "multilabel" if targets.shape[1] > 1 else "binary"
        if targets.shape[1] > 1 or numeric.iloc[:, 0].nunique() > 20:
            return "forecasting" if modality == "timeseries" else "regression"
    return "binary" if targets.iloc[:, 0].nunique() <= 2 else "multiclass"
