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
import weakref

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


Columns = dict[str, np.ndarray]  # column name -> stripped cell strings (object array)


def _parse(text: str, name: str) -> tuple[list[str], Columns]:
    """Strict CSV: every row has exactly the header's number of fields; cells are stripped.

    pandas would silently turn surplus leading fields into an index (or drop trailing ones), so
    rows are split with the csv module and counted first.
    """
    try:
        rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    except csv.Error as e:
        raise InvalidSubmission(f"{name} is not a well-formed CSV: {e}") from None
    if not rows:
        raise InvalidSubmission(f"{name} has no header and no rows")
    header, body = [h.strip() for h in rows[0]], rows[1:]
    if len(set(map(len, body)) | {len(header)}) > 1:
        line = next(i for i, row in enumerate(body, start=1) if len(row) != len(header))
        raise InvalidSubmission(f"{name} is not a well-formed CSV: data row {line} has "
                                f"{len(body[line - 1])} fields but the header has {len(header)}")
    table = np.array(body, dtype=str).reshape(len(body), len(header))
    columns = {column: np.strings.strip(table[:, j]).astype(object)
               for j, column in enumerate(header)}
    return header, columns


def _check_columns(header: list[str], expected: list[str], name: str) -> None:
    columns = header
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


def _align(ids: np.ndarray, truth_ids: pd.Index, name: str) -> np.ndarray:
    """Row order that puts the submission in the answers' order; refuses duplicate/missing ids."""
    index = pd.Index(ids)
    duplicated = index[index.duplicated()].unique()
    if len(duplicated):
        raise InvalidSubmission(f"{name}: {len(duplicated)} ids appear more than once: "
                                f"{_listing(duplicated)}")
    order = index.get_indexer(truth_ids)
    if (order < 0).any():
        missing = sorted(truth_ids[order < 0], key=_natural)
        raise InvalidSubmission(f"{name}: {len(missing)} test ids missing: {_listing(missing)}")
    if len(index) > len(truth_ids):
        extra = sorted(index.difference(truth_ids), key=_natural)
        raise InvalidSubmission(f"{name}: {len(extra)} ids are not test ids: {_listing(extra)}")
    return order


def _natural(value: str):
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


def _numeric(columns: Columns, names: list[str], ids: np.ndarray, name: str) -> np.ndarray:
    out = np.empty((len(ids), len(names)), dtype=np.float64)
    for j, column in enumerate(names):
        raw = columns[column]
        values = pd.to_numeric(raw, errors="coerce").astype(np.float64)
        unparsed = np.isnan(values)
        if unparsed.any():  # a literal "nan" parsed fine; it is caught as non-finite below
            literal_nan = np.array([v.lower() == "nan" for v in raw[unparsed]], dtype=bool)
            unparsed[np.flatnonzero(unparsed)[literal_nan]] = False
        bad = np.flatnonzero(unparsed)
        if len(bad):
            raise InvalidSubmission(f"{name}: column {column!r} must hold numbers; "
                                    f"{len(bad)} cells do not, e.g. {_listing(raw[bad])}")
        nonfinite = np.flatnonzero(~np.isfinite(values))
        if len(nonfinite):
            raise InvalidSubmission(f"{name}: column {column!r} has {len(nonfinite)} NaN or "
                                    f"infinite values, e.g. at ids {_listing(ids[nonfinite])}")
        out[:, j] = values
    return out


def _as_labels(raw: np.ndarray) -> np.ndarray:
    """Numbers if every label parses as one (so "1" and "1.0" agree), else the strings."""
    numeric = pd.to_numeric(raw, errors="coerce").astype(np.float64)
    return raw if np.isnan(numeric).any() else numeric


def _labels(raw: np.ndarray, truth: np.ndarray, column: str, name: str) -> np.ndarray:
    """Class labels compared in the answers' type: numbers if all answers are numbers."""
    if truth.dtype == object:
        return raw
    values = pd.to_numeric(raw, errors="coerce").astype(np.float64)
    if np.isnan(values).any():
        raise InvalidSubmission(f"{name}: column {column!r} must hold numeric class labels; "
                                f"got {_listing(raw[np.isnan(values)])}")
    return values


def _target_values(task: Task, columns: Columns, ids: np.ndarray, name: str,
                   truth: object = None):
    """The target columns in the form the metric takes; `truth` None means these ARE answers."""
    kind = task.metric.kind
    targets = list(task.spec.target_columns)
    if kind in (metrics_lib.Kind.LABEL, metrics_lib.Kind.ORDINAL):
        raw = columns[targets[0]]
        return _as_labels(raw) if truth is None else _labels(raw, truth, targets[0], name)
    if kind == metrics_lib.Kind.RANKED_LIST:
        return columns[targets[0]]
    values = _numeric(columns, targets, ids, name)
    return values[:, 0] if len(targets) == 1 and kind != metrics_lib.Kind.ITEM_SCORES else values


_TRUTH: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def truth_arrays(task: Task) -> tuple[pd.Index, object]:
    """The answers' ids and target values in the metric's form, computed once per task."""
    if task not in _TRUTH:
        columns = {c: np.asarray([str(v).strip() for v in task.answers[c]], dtype=object)
                   for c in task.submission_columns}
        ids = columns[task.spec.id_column]
        _TRUTH[task] = (pd.Index(ids), _target_values(task, columns, ids, "answers.csv"))
    return _TRUTH[task]


def read_text(task: Task, path: pathlib.Path) -> str:
    """The submission's text after the file-level checks (type, size, encoding)."""
    return _decode(read_bytes(path, size_cap(task)), path.name)


def read_submission(task: Task, path: str | os.PathLike) -> tuple[object, object]:
    """Returns (y_true, y_pred) aligned by id, or raises InvalidSubmission saying why not."""
    path = pathlib.Path(path)
    name = path.name
    header, columns = _parse(read_text(task, path), name)
    _check_columns(header, task.submission_columns, name)
    ids = columns[task.spec.id_column]
    if len(ids) == 0:
        raise InvalidSubmission(f"{name} has a header but no rows; write one row per test id")
    truth_ids, y_true = truth_arrays(task)
    order = _align(ids, truth_ids, name)
    aligned = {c: v[order] for c, v in columns.items()}
    y_pred = _target_values(task, aligned, aligned[task.spec.id_column], name, truth=y_true)
    try:
        task.metric.check(y_pred, y_true)
    except metrics_lib.PredictionError as e:
        raise InvalidSubmission(f"{name}: {e}") from None
    return y_true, y_pred
