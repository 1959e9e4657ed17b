"""MLE-bench interop: a prepared competition becomes a task; reports aggregate as MLE-bench's.

MLE-bench keeps, per competition, a registry folder (`config.yaml`, `leaderboard.csv`,
`description.md`, `grade.py`) and prepared data under `<data_dir>/<id>/prepared/{public,private}`;
`config.yaml`'s `dataset.answers` and `dataset.sample_submission` are relative to `<data_dir>`.
An imported task keeps the public files as they are, moves the answers and the leaderboard into
private/, and takes its medal thresholds from the leaderboard with MLE-bench's rank rules.

Grading uses our metric registry when the competition's metric maps to one and the answers hold
exactly the sample submission's columns; otherwise the task names MLE-bench's own grade function
(`mlebench.competitions.<id>.grade:grade`), which needs the `mlebench` package installed.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
import yaml

from sandmle_jax.tasks import medals as medals_lib
from sandmle_jax.tasks import metrics as metrics_lib
from sandmle_jax.tasks.grading import GradeReport
from sandmle_jax.tasks.task import Task, TaskError, TaskSpec, save_task

# MLE-bench grader names whose competitions score with one of our registered metrics.
GRADER_TO_METRIC = {
    "auc-roc": "roc_auc",
    "accuracy": "accuracy",
    "log-loss": "log_loss",
    "rmse": "rmse",
    "rmsle": "rmsle",
    "mae": "mae",
    "quadratic-weighted-kappa": "quadratic_weighted_kappa",
    "multi-class-log-loss": "multiclass_log_loss",
    "column-wise-auc-roc": "mean_columnwise_roc_auc",
    "mean-column-wise-rmsle": "mean_columnwise_rmsle",
}


def import_competition(competition_dir: str | os.PathLike, data_dir: str | os.PathLike,
                       out_dir: str | os.PathLike, *, modality: str = "unknown",
                       task_type: str = "unknown") -> Task:
    """Writes `<out_dir>` as a task from one MLE-bench competition; returns it loaded."""
    competition_dir = pathlib.Path(competition_dir)
    data_dir = pathlib.Path(data_dir)
    config = _read_config(competition_dir / "config.yaml")
    comp_id = config["id"]
    public_dir = data_dir / comp_id / "prepared" / "public"
    answers_path = data_dir / config["dataset"]["answers"]
    sample_path = data_dir / config["dataset"]["sample_submission"]
    board_path = competition_dir / "leaderboard.csv"
    for path in (public_dir, answers_path, sample_path, board_path):
        if not path.exists():
            raise TaskError(f"{path}: missing (prepare the competition with `mlebench prepare "
                            f"-c {comp_id}` first)")

    board = pd.read_csv(board_path)
    if "score" not in board.columns or board["score"].dropna().empty:
        raise TaskError(f"{board_path}: needs a non-empty `score` column")
    scores = board["score"].dropna().astype(float).tolist()
    lower_is_better = medals_lib.lower_is_better_from_leaderboard(scores)
    thresholds = medals_lib.leaderboard_thresholds(scores, lower_is_better)

    sample = pd.read_csv(sample_path, nrows=0)
    columns = [str(c) for c in sample.columns]
    if len(columns) < 2:
        raise TaskError(f"{sample_path}: needs an id column and at least one target column")
    grader_name = config.get("grader", {}).get("name", "")
    metric, grader = _choose_grading(config, grader_name, answers_path, columns,
                                     lower_is_better)

    public: dict[str, Any] = {p.name: p for p in sorted(public_dir.iterdir())}
    if "description.md" not in public:
        description = competition_dir / "description.md"
        if not description.is_file():
            raise TaskError(f"{description}: missing, and public/ has no description.md")
        public["description.md"] = description
    if "sample_submission.csv" not in public:
        public["sample_submission.csv"] = sample_path
    private = {"answers.csv": answers_path, "leaderboard.csv": board_path}
    spec = TaskSpec(
        id=comp_id, title=config.get("name", comp_id), modality=modality, task_type=task_type,
        metric=metric, lower_is_better=lower_is_better, id_column=columns[0],
        target_columns=tuple(columns[1:]), thresholds=thresholds, seed_id=comp_id,
        generator={"backend": "mlebench", "grader": grader_name},
        sizes={"teams": len(scores)}, grader=grader, leaderboard="private/leaderboard.csv")
    return save_task(out_dir, spec, public=public, private=private)


def _read_config(path: pathlib.Path) -> dict[str, Any]:
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise TaskError(f"{path}: cannot read the competition config: {e}") from None
    for key in ("id", "dataset"):
        if key not in (config or {}):
            raise TaskError(f"{path}: no `{key}` entry")
    return config


def _choose_grading(config: Mapping[str, Any], grader_name: str, answers_path: pathlib.Path,
                    columns: list[str], lower_is_better: bool) -> tuple[str, str | None]:
    """Our metric when it fits the data, else MLE-bench's grade function."""
    metric = GRADER_TO_METRIC.get(grader_name)
    answer_columns = [str(c) for c in pd.read_csv(answers_path, nrows=0).columns]
    if metric and set(answer_columns) == set(columns):
        try:
            metrics_lib.check_direction(metric, lower_is_better)
        except ValueError as e:
            raise TaskError(f"leaderboard direction: {e}") from None
        return metric, None
    grade_fn = config.get("grader", {}).get("grade_fn")
    if not grade_fn:
        raise TaskError(f"{config['id']}: grader {grader_name!r} has no metric here and the "
                        "config names no grade_fn")
    return grader_name or "custom", grade_fn


def aggregate_reports(reports: Iterable[GradeReport]) -> dict[str, Any]:
    """MLE-bench's summary report: the same keys, summed over runs."""
    reports = list(reports)

    def total(field: str) -> int:
        return int(sum(bool(getattr(r, field)) for r in reports))

    gold, silver, bronze = total("gold_medal"), total("silver_medal"), total("bronze_medal")
    return {
        "total_runs": len(reports),
        "total_runs_with_submissions": total("submission_exists"),
        "total_valid_submissions": total("valid_submission"),
        "total_medals": gold + silver + bronze,
        "total_gold_medals": gold,
        "total_silver_medals": silver,
        "total_bronze_medals": bronze,
        "total_above_median": total("above_median"),
        "competition_reports": [r.to_dict() for r in reports],
    }

