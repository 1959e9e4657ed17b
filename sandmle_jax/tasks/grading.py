"""grade(task, submission) -> GradeReport: never raises on a bad submission.

Three outcomes are kept apart, because RL treats them differently:
- a valid submission: `score` and medals;
- an invalid submission (the agent's fault): `valid_submission=False` and `error` says why;
- a failure of our own grading code or of the task (`grader_error`): not the agent's fault, so
  callers drop the episode instead of punishing the policy.

The report's fields are MLE-bench's `CompetitionReport` fields plus `error`, `grader_error` and
`humanrank`. Unlike MLE-bench the score is not rounded to 5 decimals: RL rewards use it raw.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib
import importlib.util
import io
import os
import pathlib
import sys
import traceback
from collections.abc import Callable
from typing import Any

import pandas as pd

from sandmle_jax.tasks import medals as medals_lib
from sandmle_jax.tasks import metrics as metrics_lib
from sandmle_jax.tasks import submission as submission_lib
from sandmle_jax.tasks.task import Task, Thresholds


@dataclasses.dataclass(frozen=True)
class GradeReport:
    competition_id: str
    score: float | None
    gold_threshold: float
    silver_threshold: float
    bronze_threshold: float
    median_threshold: float
    any_medal: bool
    gold_medal: bool
    silver_medal: bool
    bronze_medal: bool
    above_median: bool
    submission_exists: bool
    valid_submission: bool
    is_lower_better: bool
    submission_path: str
    created_at: str
    error: str | None = None
    grader_error: str | None = None
    humanrank: float | None = None

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(median=self.median_threshold, bronze=self.bronze_threshold,
                          silver=self.silver_threshold, gold=self.gold_threshold)

    def reached(self, level: str) -> bool:
        """Whether the score ties or beats `level` ("median", "bronze", "silver" or "gold")."""
        if self.score is None:
            return False
        return medals_lib.reaches(self.score, getattr(self.thresholds, level),
                                  self.is_lower_better)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> GradeReport:
        return cls(**raw)


def _report(task: Task, path: pathlib.Path, *, score: float | None, exists: bool,
            error: str | None = None, grader_error: str | None = None) -> GradeReport:
    spec = task.spec
    got = medals_lib.medals(score, spec.thresholds, spec.lower_is_better)
    rank = None
    if task.leaderboards:
        rank = medals_lib.humanrank(score, task.leaderboards, spec.lower_is_better)
    return GradeReport(
        competition_id=spec.id, score=score,
        gold_threshold=spec.thresholds.gold, silver_threshold=spec.thresholds.silver,
        bronze_threshold=spec.thresholds.bronze, median_threshold=spec.thresholds.median,
        any_medal=got.any_medal, gold_medal=got.gold_medal, silver_medal=got.silver_medal,
        bronze_medal=got.bronze_medal, above_median=got.above_median,
        submission_exists=exists, valid_submission=score is not None,
        is_lower_better=spec.lower_is_better, submission_path=str(path),
        created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(),
        error=error, grader_error=grader_error, humanrank=rank)


def invalid_report(task: Task, path: str | os.PathLike, error: str, *,
                   exists: bool = True) -> GradeReport:
    """The report of a submission refused before grading (e.g. unsafe to read)."""
    return _report(task, pathlib.Path(path), score=None, exists=exists, error=error)


def _describe_bug(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def grade(task: Task, submission_path: str | os.PathLike) -> GradeReport:
    """Grades one submission file against the task's hidden answers."""
    path = pathlib.Path(submission_path)
    try:
        if task.spec.grader is not None:
            score = _grade_custom(task, path)
        else:
            y_true, y_pred = submission_lib.read_submission(task, path)
            score = float(task.metric(y_true, y_pred))
    except submission_lib.SubmissionMissing as e:
        return _report(task, path, score=None, exists=False, error=str(e))
    except submission_lib.InvalidSubmission as e:
        return _report(task, path, score=None, exists=True, error=str(e))
    except metrics_lib.MetricUndefined as e:
        return _report(task, path, score=None, exists=True,
                       grader_error=f"metric undefined on this task's answers: {e}")
    except Exception as e:  # our bug, or the task's: reported, never blamed on the agent
        return _report(task, path, score=None, exists=path.exists(),
                       grader_error=_describe_bug(e))
    return _report(task, path, score=score, exists=True)


def _grade_custom(task: Task, path: pathlib.Path) -> float:
    """Runs a task's own `grade(submission_df, answers_df) -> float` (MLE-bench's signature).

    File-level checks (symlink, size, encoding, CSV syntax) still come first. An exception whose
    class is named like MLE-bench's `InvalidSubmissionError` marks the submission invalid; any
    other exception is a grader error.
    """
    text = submission_lib.read_text(task, path)
    try:
        submission_df = pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as e:
        raise submission_lib.InvalidSubmission(f"{path.name} is not a well-formed CSV: {e}")
    answers_df = pd.read_csv(task.private_dir / "answers.csv")
    grade_fn = load_grade_fn(task)
    try:
        score = grade_fn(submission_df, answers_df)
    except Exception as e:
        if "InvalidSubmission" in type(e).__name__:
            raise submission_lib.InvalidSubmission(f"{path.name}: {e}") from None
        raise
    score = float(score)
    if score != score:
        raise submission_lib.InvalidSubmission(f"{path.name}: the grader returned NaN")
    return score


def load_grade_fn(task: Task) -> Callable[[pd.DataFrame, pd.DataFrame], float]:
    """`private/grader.py:grade` (a file in the task) or `package.module:function` (installed)."""
    target, _, fn_name = task.spec.grader.partition(":")
    fn_name = fn_name or "grade"
    file = task.root / target
    if target.endswith(".py") and file.is_file():
        name = f"_sandmle_task_grader_{task.spec.id.replace('-', '_')}"
        spec = importlib.util.spec_from_file_location(name, file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    return getattr(module, fn_name)
