"""The task directory: what a task is on disk, how it is checked on load and written atomically.

Layout (MLE-bench-compatible split; hidden data never sits beside public data):

    <task_id>/
      task.json    the TaskSpec below, as JSON
      public/      all an agent sees: description.md, sample_submission.csv, train/test data
      private/     answers.csv, baselines.json (score ladder), optional grader.py, leaderboard.csv,
                   evaluator.py (the release-contract twin of our grading, see evaluators.py)

`load_task` refuses a broken directory with a `TaskError` that names the file and the problem,
so a bad task is rejected before any episode runs on it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import pathlib
import shutil
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from sandmle_jax import dataclass_keys, paths
from sandmle_jax.errors import UserError
from sandmle_jax.tasks import metrics as metrics_lib

TASK_JSON = "task.json"
PUBLIC = "public"
PRIVATE = "private"
DESCRIPTION = "description.md"
SAMPLE_SUBMISSION = "sample_submission.csv"
ANSWERS = "answers.csv"
LEVELS = ("median", "bronze", "silver", "gold")
# Names that must never appear under public/: they would hand the agent the labels.
_HIDDEN_NAMES = {ANSWERS, "baselines.json", "grader.py", "leaderboard.csv", "evaluator.py",
                 "answer.csv"}


class TaskError(UserError, ValueError):
    """A task directory is broken; the message says which file and what is wrong."""


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Scores that reach each level; strictly better from median to gold."""

    median: float
    bronze: float
    silver: float
    gold: float

    def check_monotone(self, lower_is_better: bool, *, strict: bool = True) -> None:
        """Synthetic ladders must be strict; a real leaderboard may tie two tiers."""
        values = [self.median, self.bronze, self.silver, self.gold]
        if not all(np.isfinite(values)):
            raise TaskError(f"thresholds must be finite numbers, got {self.to_dict()}")
        pairs = zip(LEVELS, values, LEVELS[1:], values[1:])
        for lo_name, lo, hi_name, hi in pairs:
            if strict:
                ok = hi < lo if lower_is_better else hi > lo
            else:
                ok = hi <= lo if lower_is_better else hi >= lo
            if not ok:
                direction = "below" if lower_is_better else "above"
                qualifier = "strictly " if strict else ""
                raise TaskError(
                    f"thresholds not {qualifier}monotone: {hi_name}={hi} must be {qualifier}"
                    f"{direction} {lo_name}={lo} (lower_is_better={lower_is_better})")

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """Everything task.json holds. `grader` names a custom grading function, if any."""

    id: str
    title: str
    modality: str
    task_type: str
    metric: str
    lower_is_better: bool
    id_column: str
    target_columns: tuple[str, ...]
    thresholds: Thresholds
    seed_id: str = ""
    dna: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    generator: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    sizes: Mapping[str, int] = dataclasses.field(default_factory=dict)
    checksums: Mapping[str, str] = dataclasses.field(default_factory=dict)
    grader: str | None = None
    leaderboard: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["target_columns"] = list(self.target_columns)
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str = TASK_JSON) -> TaskSpec:
        dataclass_keys.check_keys(cls, raw, where, error=TaskError, require=True)
        values = dict(raw)
        thresholds = values["thresholds"]
        if not isinstance(thresholds, Mapping) or sorted(thresholds) != sorted(LEVELS):
            raise TaskError(f"{where}: thresholds must map exactly {list(LEVELS)} to numbers, "
                            f"got {thresholds!r}")
        try:
            values["thresholds"] = Thresholds(**{k: float(v) for k, v in thresholds.items()})
        except (TypeError, ValueError) as e:
            raise TaskError(f"{where}: thresholds must be numbers: {e}") from None
        targets = values["target_columns"]
        if isinstance(targets, str) or not targets:
            raise TaskError(f"{where}: target_columns must be a non-empty list of column names")
        values["target_columns"] = tuple(str(t) for t in targets)
        if not isinstance(values["lower_is_better"], bool):
            raise TaskError(f"{where}: lower_is_better must be true or false")
        for name in ("id", "title", "modality", "task_type", "metric", "id_column"):
            if not isinstance(values[name], str) or not values[name]:
                raise TaskError(f"{where}: {name} must be a non-empty string")
        return cls(**values)


@dataclasses.dataclass(frozen=True, eq=False)
class Task:
    """A loaded, validated task. `answers` is held in memory: grading reads it thousands of times.

    Compared and hashed by identity, so per-task caches (e.g. parsed answers) can key on it.
    """

    root: pathlib.Path
    spec: TaskSpec
    answers: pd.DataFrame = dataclasses.field(repr=False, compare=False)
    sample_submission: pd.DataFrame = dataclasses.field(repr=False, compare=False)
    # Score columns of private/leaderboard.csv (`score`, then `public_score` if present), for
    # HumanRank; empty without a leaderboard. Read once here, like the answers.
    leaderboards: tuple[tuple[float, ...], ...] = ()

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def public_dir(self) -> pathlib.Path:
        return self.root / PUBLIC

    @property
    def private_dir(self) -> pathlib.Path:
        return self.root / PRIVATE

    @property
    def metric(self) -> metrics_lib.Metric:
        return metrics_lib.get_metric(self.spec.metric)

    @property
    def submission_columns(self) -> list[str]:
        return [self.spec.id_column, *self.spec.target_columns]


def sha256_file(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _data_files(root: pathlib.Path) -> list[str]:
    """Relative paths of every file under public/ and private/, sorted."""
    files = []
    for sub in (PUBLIC, PRIVATE):
        base = root / sub
        if base.is_dir():
            files += [p.relative_to(root).as_posix() for p in base.rglob("*") if p.is_file()]
    return sorted(files)


def compute_checksums(root: pathlib.Path) -> dict[str, str]:
    return {rel: sha256_file(root / rel) for rel in _data_files(root)}


def read_csv_strict(path: pathlib.Path, what: str) -> pd.DataFrame:
    """Reads one of our own CSVs (answers, sample submission), naming the file on failure."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise TaskError(f"{path}: cannot read {what}: {e}") from None


def load_task(root: str | os.PathLike, *, verify_checksums: bool = True) -> Task:
    """Loads and validates a task directory; raises TaskError naming what is broken and where.

    The task's root is made absolute: its public/ is handed to programs running elsewhere."""
    root = paths.absolute(root)
    if not root.is_dir():
        raise TaskError(f"{root}: not a directory")
    spec_path = root / TASK_JSON
    try:
        raw = json.loads(spec_path.read_text())
    except FileNotFoundError:
        raise TaskError(f"{spec_path}: missing") from None
    except (OSError, json.JSONDecodeError) as e:
        raise TaskError(f"{spec_path}: not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise TaskError(f"{spec_path}: must hold a JSON object")
    spec = TaskSpec.from_dict(raw, where=str(spec_path))

    if spec.grader is None:
        _check_metric(spec, spec_path)
    spec.thresholds.check_monotone(spec.lower_is_better, strict=spec.leaderboard is None)
    for sub, name in ((PUBLIC, DESCRIPTION), (PUBLIC, SAMPLE_SUBMISSION), (PRIVATE, ANSWERS)):
        if not (root / sub / name).is_file():
            raise TaskError(f"{root / sub / name}: required file missing")
    leaked = sorted(p.relative_to(root).as_posix() for p in (root / PUBLIC).rglob("*")
                    if p.name in _HIDDEN_NAMES)
    if leaked:
        raise TaskError(f"{root / PUBLIC}: hidden files must live in private/, found {leaked}")
    if verify_checksums:
        _check_checksums(root, spec)

    answers = read_csv_strict(root / PRIVATE / ANSWERS, "answers")
    sample = read_csv_strict(root / PUBLIC / SAMPLE_SUBMISSION, "sample submission")
    task = Task(root=root, spec=spec, answers=answers, sample_submission=sample,
                leaderboards=_read_leaderboards(root, spec))
    _check_answers_and_sample(task)
    return task


def _read_leaderboards(root: pathlib.Path, spec: TaskSpec) -> tuple[tuple[float, ...], ...]:
    if spec.leaderboard is None:
        return ()
    path = root / spec.leaderboard
    try:
        board = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise TaskError(f"{path}: cannot read the leaderboard: {e}") from None
    columns = [c for c in ("score", "public_score") if c in board.columns]
    if not columns:
        raise TaskError(f"{path}: needs a `score` column")
    return tuple(tuple(board[c].dropna().astype(float)) for c in columns)


def _check_metric(spec: TaskSpec, where: pathlib.Path) -> None:
    try:
        metrics_lib.check_direction(spec.metric, spec.lower_is_better)
    except (KeyError, ValueError) as e:
        raise TaskError(f"{where}: {e.args[0]}") from None


def _check_checksums(root: pathlib.Path, spec: TaskSpec) -> None:
    if not spec.checksums:
        raise TaskError(f"{root / TASK_JSON}: no checksums; write the task with save_task")
    on_disk = set(_data_files(root))
    listed = set(spec.checksums)
    if on_disk - listed:
        raise TaskError(f"{root}: files not in task.json checksums: {sorted(on_disk - listed)}")
    if listed - on_disk:
        raise TaskError(f"{root}: files in checksums but missing: {sorted(listed - on_disk)}")
    for rel, expected in sorted(spec.checksums.items()):
        if sha256_file(root / rel) != expected:
            raise TaskError(f"{root / rel}: checksum mismatch (file changed after the task was "
                            "written; regenerate the task)")


def _check_answers_and_sample(task: Task) -> None:
    spec, answers, sample = task.spec, task.answers, task.sample_submission
    answers_path = task.private_dir / ANSWERS
    sample_path = task.public_dir / SAMPLE_SUBMISSION
    missing = [c for c in task.submission_columns if c not in answers.columns]
    if missing and spec.grader is None:
        raise TaskError(f"{answers_path}: columns {missing} missing (has {list(answers.columns)})")
    if list(sample.columns) != task.submission_columns:
        raise TaskError(f"{sample_path}: columns {list(sample.columns)} must be exactly "
                        f"{task.submission_columns}")
    if answers.empty:
        raise TaskError(f"{answers_path}: no rows")
    checked = [(sample, sample_path)] if spec.grader else [(answers, answers_path),
                                                             (sample, sample_path)]
    for frame, path in checked:
        dup = frame[spec.id_column][frame[spec.id_column].duplicated()]
        if len(dup):
            raise TaskError(f"{path}: duplicate ids {dup.head(5).tolist()}")
    if spec.grader is None and set(sample[spec.id_column]) != set(answers[spec.id_column]):
        raise TaskError(f"{sample_path}: ids differ from the answers' ids")


Content = bytes | str | pd.DataFrame | pathlib.Path


def save_task(out_dir: str | os.PathLike, spec: TaskSpec, public: Mapping[str, Content],
              private: Mapping[str, Content]) -> Task:
    """Writes a task atomically: a half-written task is never visible under `out_dir`.

    Files are given as bytes, text, DataFrames (written as CSV without index) or paths to copy
    (files or directories). Checksums are computed here and stored in task.json; the result is
    loaded back through `load_task`, so an invalid task never lands.
    """
    out_dir = paths.absolute(out_dir)
    if out_dir.exists():
        raise TaskError(f"{out_dir}: already exists; remove it or choose another directory")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for sub, files in ((PUBLIC, public), (PRIVATE, private)):
            (staging / sub).mkdir()
            for name, content in files.items():
                _write_content(staging / sub / name, content)
        spec = dataclasses.replace(spec, checksums=compute_checksums(staging))
        (staging / TASK_JSON).write_text(json.dumps(spec.to_dict(), indent=2, sort_keys=True))
        load_task(staging)  # refuse to publish a task that would not load
        os.rename(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return load_task(out_dir)


def _write_content(path: pathlib.Path, content: Content) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, pd.DataFrame):
        buffer = io.StringIO()
        content.to_csv(buffer, index=False)
        path.write_text(buffer.getvalue())
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, pathlib.Path):
        if content.is_dir():
            shutil.copytree(content, path)
        else:
            shutil.copyfile(content, path)
    else:
        raise TypeError(f"{path.name}: unsupported content type {type(content).__name__}")
