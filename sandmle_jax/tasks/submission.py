"""Reading an untrusted submission.csv into a table aligned with the answers, or saying why not.

The file is written by agent code, so everything about it is hostile until checked: it may be a
symlink to private data, a directory, many GB, binary, or a CSV subtly off (delimiter, header,
index column, BOM, ids, NaN). Every failure is an `InvalidSubmission` whose message names the
problem and the fix; time and memory stay bounded by a size cap checked before reading.
"""

from __future__ import annotations

import csv
import errno
import io
import os
import pathlib
import stat

import numpy as np
import pandas as pd

from sandmle_jax.tasks import metrics as metrics_lib
from sandmle_jax.tasks.task import Task

# A submission may be this many times the sample submission's size (long floats, quoting) ...
SIZE_FACTOR = 50
# ... and never smaller than this cap, so tiny samples still allow verbose floats.
MIN_SIZE_CAP = 8 << 20
_SHOWN = 5  # offending values listed in a message


class InvalidSubmission(ValueError):
    """The submission cannot be graded; the message is shown to the agent."""


class SubmissionMissing(InvalidSubmission):
    """No submission file at the path (MLE-bench: submission_exists=False)."""


def size_cap(task: Task) -> int:
    sample = task.public_dir / "sample_submission.csv"
    return max(MIN_SIZE_CAP, SIZE_FACTOR * sample.stat().st_size)


def _listing(values) -> str:
    values = list(values)
    shown = ", ".join(repr(v) for v in values[:_SHOWN])
    more = f" and {len(values) - _SHOWN} more" if len(values) > _SHOWN else ""
    return f"[{shown}{more}]"


def read_bytes(path: pathlib.Path, cap: int) -> bytes:
    """Reads a regular file without following symlinks, refusing anything over `cap` bytes."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise SubmissionMissing(f"{path.name} not found: write predictions to {path}") from None
    if stat.S_ISLNK(st.st_mode):
        raise InvalidSubmission(f"{path.name} is a symlink; write a regular file instead")
    if stat.S_ISDIR(st.st_mode):
        raise InvalidSubmission(f"{path.name} is a directory, not a CSV file")
    if not stat.S_ISREG(st.st_mode):
        raise InvalidSubmission(f"{path.name} is not a regular file")
    if st.st_size > cap:
        raise InvalidSubmission(f"{path.name} is {st.st_size} bytes, over the {cap}-byte cap; "
                                "write one row per test id and nothing else")
    if st.st_size == 0:
        raise InvalidSubmission(f"{path.name} is empty; write a header and one row per test id")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise InvalidSubmission(f"{path.name} is a symlink; write a regular file") from None
        raise InvalidSubmission(f"{path.name} cannot be opened: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # swapped after lstat
            raise InvalidSubmission(f"{path.name} is not a regular file")
        data = f.read(cap + 1)
    if len(data) > cap:
        raise InvalidSubmission(f"{path.name} grew past the {cap}-byte cap while being read")
    return data


def _decode(data: bytes, name: str) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        raise InvalidSubmission(f"{name} starts with a UTF-8 byte-order mark; write plain UTF-8 "
                                "(encoding='utf-8', not 'utf-8-sig')")
    if b"\x00" in data:
        raise InvalidSubmission(f"{name} contains NUL bytes: it is binary, not a CSV text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidSubmission(f"{name} is not UTF-8 text (bad byte at offset {e.start})") from None


def _parse(text: str, name: str) -> pd.DataFrame:
    """Strict CSV: every row has exactly the header's number of fields.

    pandas would silently turn surplus leading fields into an index, so rows are split with the
    csv module and counted first.
    """
    try:
        rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    except csv.Error as e:
        raise InvalidSubmission(f"{name} is not a well-formed CSV: {e}") from None
    if not rows:
        raise InvalidSubmission(f"{name} has no header and no rows")
    header, body = rows[0], rows[1:]
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise InvalidSubmission(f"{name} is not a well-formed CSV: data row {line - 1} has "
                                    f"{len(row)} fields but the header has {len(header)}")
    return pd.DataFrame(body, columns=[h.strip() for h in header], dtype=str)


def _check_columns(frame: pd.DataFrame, expected: list[str], name: str) -> None:
    columns = [str(c).strip() for c in frame.columns]
    if columns == expected or sorted(columns) == sorted(expected):
        return
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise InvalidSubmission(f"{name}: columns {repeated} appear more than once; expected "
                                f"exactly {expected}")
    if len(columns) == 1 and any(sep in columns[0] for sep in (";", "\t", "|")):
        raise InvalidSubmission(f"{name} is not comma-separated (header {columns[0]!r}); "
                                f"write columns {expected} separated by commas")
    extra = [c for c in columns if c not in expected]
    missing = [c for c in expected if c not in columns]
    if extra and (extra[0] == "" or extra[0].startswith("Unnamed: ")):
        raise InvalidSubmission(f"{name} has an extra unnamed first column (a DataFrame index); "
                                "write it with to_csv(index=False)")
    if set(missing) == set(expected) and len(columns) == len(expected):
        raise InvalidSubmission(f"{name} has no header row (first row {columns}); its first "
                                f"line must be {','.join(expected)}")
    parts = []
    if missing:
        parts.append(f"missing columns {missing}")
    if extra:
        parts.append(f"unexpected columns {extra}")
    raise InvalidSubmission(f"{name}: {'; '.join(parts)}; expected exactly {expected}")


def _check_ids(frame: pd.DataFrame, id_column: str, expected_ids: pd.Series, name: str) -> None:
    ids = frame[id_column].str.strip()
    duplicated = ids[ids.duplicated()].unique()
    if len(duplicated):
        raise InvalidSubmission(f"{name}: {len(duplicated)} ids appear more than once: "
                                f"{_listing(duplicated)}")
    expected = set(expected_ids)
    got = set(ids)
    missing = sorted(expected - got, key=_natural)
    extra = sorted(got - expected, key=_natural)
    if missing:
        raise InvalidSubmission(f"{name}: {len(missing)} test ids missing: {_listing(missing)}")
    if extra:
        raise InvalidSubmission(f"{name}: {len(extra)} ids are not test ids: {_listing(extra)}")


def _natural(value: str):
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


def _numeric(frame: pd.DataFrame, columns: list[str], ids: pd.Series, name: str) -> np.ndarray:
    out = np.empty((len(frame), len(columns)), dtype=np.float64)
    for j, column in enumerate(columns):
        raw = frame[column].str.strip()
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(np.isnan(values) & ~raw.str.lower().isin(["nan"]).to_numpy())
        if len(bad):
            raise InvalidSubmission(f"{name}: column {column!r} must hold numbers; "
                                    f"{len(bad)} cells do not, e.g. {_listing(raw.iloc[bad])}")
        nonfinite = np.flatnonzero(~np.isfinite(values))
        if len(nonfinite):
            raise InvalidSubmission(f"{name}: column {column!r} has {len(nonfinite)} NaN or "
                                    f"infinite values, e.g. at ids "
                                    f"{_listing(ids.iloc[nonfinite])}")
        out[:, j] = values
    return out


def _labels(frame: pd.DataFrame, column: str, truth: pd.Series, name: str) -> np.ndarray:
    """Class labels compared in the answers' type: numbers if all answers are numbers."""
    raw = frame[column].str.strip()
    truth_numeric = pd.to_numeric(truth, errors="coerce")
    if truth_numeric.notna().all():
        values = pd.to_numeric(raw, errors="coerce")
        if values.isna().any():
            bad = raw[values.isna()]
            raise InvalidSubmission(f"{name}: column {column!r} must hold numeric class labels; "
                                    f"got {_listing(bad)}")
        return values.to_numpy(dtype=np.float64)
    return raw.to_numpy(dtype=object)


def truth_arrays(task: Task) -> tuple[pd.Series, object]:
    """The answers' ids (stripped) and target values in the form the metric takes."""
    answers = task.answers
    ids = answers[task.spec.id_column].str.strip()
    return ids, _target_values(task, answers, "answers.csv", is_truth=True)


def _target_values(task: Task, frame: pd.DataFrame, name: str, is_truth: bool = False):
    metric = task.metric
    targets = list(task.spec.target_columns)
    kind = metric.kind
    if kind in (metrics_lib.Kind.LABEL, metrics_lib.Kind.ORDINAL):
        column = targets[0]
        if is_truth:
            raw = frame[column].str.strip()
            numeric = pd.to_numeric(raw, errors="coerce")
            return numeric.to_numpy(np.float64) if numeric.notna().all() else raw.to_numpy(object)
        return _labels(frame, column, task.answers[column].str.strip(), name)
    if kind == metrics_lib.Kind.RANKED_LIST:
        return frame[targets[0]].fillna("").astype(str).to_numpy(dtype=object)
    values = _numeric(frame, targets, frame[task.spec.id_column], name)
    return values[:, 0] if len(targets) == 1 and kind != metrics_lib.Kind.ITEM_SCORES else values


def read_text(task: Task, path: pathlib.Path) -> str:
    """The submission's text after the file-level checks (type, size, encoding)."""
    return _decode(read_bytes(path, size_cap(task)), path.name)


def read_submission(task: Task, path: str | os.PathLike) -> tuple[object, object]:
    """Returns (y_true, y_pred) aligned by id, or raises InvalidSubmission saying why not."""
    path = pathlib.Path(path)
    name = path.name
    text = read_text(task, path)
    frame = _parse(text, name)
    expected = task.submission_columns
    _check_columns(frame, expected, name)
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise InvalidSubmission(f"{name} has a header but no rows; write one row per test id")
    id_column = task.spec.id_column
    truth_ids, y_true = truth_arrays(task)
    _check_ids(frame, id_column, truth_ids, name)
    frame = frame.assign(**{id_column: frame[id_column].str.strip()})
    order = pd.Index(frame[id_column]).get_indexer(truth_ids)
    frame = frame.iloc[order].reset_index(drop=True)
    y_pred = _target_values(task, frame, name)
    try:
        task.metric.check(y_pred, y_true)
    except metrics_lib.PredictionError as e:
        raise InvalidSubmission(f"{name}: {e}") from None
    return y_true, y_pred
