"""MLE-bench interop: prepared competitions become tasks; reports aggregate as MLE-bench's.

MLE-bench keeps, per competition, a registry folder (`config.yaml`, `leaderboard.csv`,
`description.md`, `grade.py`) and prepared data under `<data_dir>/<id>/prepared/{public,private}`;
`config.yaml`'s `dataset.answers` and `dataset.sample_submission` are relative to `<data_dir>`.
An imported task keeps the public files as they are, puts the answers and the leaderboard in
private/, and takes its medal thresholds from the leaderboard with MLE-bench's rank rules (its
direction too: a board listed best first whose first score is the lower is lower-is-better).

Grading: MLE-bench's `grader.name` is a free-form label (its code grades through `grade_fn`), so
the name is normalised (case, `_`, spaces) and looked up in `GRADER_METRICS`; the number of
target columns picks between a metric's one-column and column-wise forms. Answers may carry
extra columns (dropped) or, for class-probability submissions, one label column (turned into one
column per class, matched to the sample's columns by `class_columns`). A grader we do not
compute falls back to the competition's own `grade_fn`, which must be importable here (the
`mlebench` package). Every import is proved before it lands: the sample submission must grade
without a grader error and, under our metric, the answers themselves must grade valid and gold.
A competition that cannot be graded is refused here, with the reason, never accepted and failed
inside episodes later.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pathlib
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import yaml

from sandmle_jax import paths
from sandmle_jax.tasks import class_columns
from sandmle_jax.tasks import grading
from sandmle_jax.tasks import medals as medals_lib
from sandmle_jax.tasks import metrics as metrics_lib
from sandmle_jax.tasks import profile
from sandmle_jax.tasks.grading import GradeReport
from sandmle_jax.tasks.task import Task, TaskError, TaskSpec, load_task, read_csv_strict, save_task

# Normalised MLE-bench grader name -> (metric for one target column, for several; "" = none).
# Names seen in MLE-bench's registry plus the spellings other tools use for the same metrics.
GRADER_METRICS: dict[str, tuple[str, str]] = {
    **dict.fromkeys(("accuracy", "multi-class-classification-accuracy",
                     "classification-accuracy", "categorization-accuracy"), ("accuracy", "")),
    "balanced-accuracy": ("balanced_accuracy", ""),
    **dict.fromkeys(("auc-roc", "roc-auc", "auc", "auroc", "area-under-the-roc-curve"),
                    ("roc_auc", "mean_columnwise_roc_auc")),
    **dict.fromkeys(("column-wise-roc-auc", "mean-column-wise-roc-auc", "auroc-multi-label",
                     "mean-columnwise-roc-auc", "column-wise-auc"),
                    ("roc_auc", "mean_columnwise_roc_auc")),
    **dict.fromkeys(("log-loss", "logloss", "binary-log-loss", "binary-cross-entropy"),
                    ("log_loss", "multiclass_log_loss")),
    **dict.fromkeys(("multi-class-log-loss", "multiclass-log-loss", "multi-class-logloss",
                     "mlogloss"), ("", "multiclass_log_loss")),
    **dict.fromkeys(("root-mean-squared-error", "rmse", "root-mean-square-error"),
                    ("rmse", "mean_columnwise_rmse")),
    **dict.fromkeys(("mean-column-wise-rmse", "mcrmse", "mean-columnwise-rmse"),
                    ("rmse", "mean_columnwise_rmse")),
    **dict.fromkeys(("root-mean-squared-log-error", "root-mean-squared-logarithmic-error",
                     "rmsle"), ("rmsle", "mean_columnwise_rmsle")),
    **dict.fromkeys(("mean-column-wise-rmsle", "mean-columnwise-rmsle"),
                    ("rmsle", "mean_columnwise_rmsle")),
    **dict.fromkeys(("mean-absolute-error", "mae"), ("mae", "")),
    **dict.fromkeys(("quadratic-weighted-kappa", "qwk", "quadratic-kappa"),
                    ("quadratic_weighted_kappa", "")),
    **dict.fromkeys(("macro-f1-score", "macro-f1", "f1-macro"), ("f1_macro", "")),
    **dict.fromkeys(("micro-f1-score", "micro-f1", "f1-micro"), ("f1_micro", "")),
    **dict.fromkeys(("f1-score", "f1"), ("f1", "")),
    **dict.fromkeys(("matthews-correlation-coefficient", "mcc"), ("mcc", "")),
    **dict.fromkeys(("pearson-correlation-coefficient", "pearson", "pearson-correlation"),
                    ("pearson", "")),
    **dict.fromkeys(("spearman", "spearman-correlation"), ("spearman", "")),
    **dict.fromkeys(("r2", "r-squared", "coefficient-of-determination"), ("r2", "")),
    **dict.fromkeys(("mape", "mean-absolute-percentage-error"), ("mape", "")),
}
# MLE-bench grades these over space-separated label *sets* in some competitions (micro-F1 of
# tags); ours compare single labels, so answers that are label sets are refused under them.
_SINGLE_LABEL_F1 = ("f1", "f1_micro", "f1_macro")
# "MAP@12", "map-at-5", "mean-average-precision-at-5", "ndcg@10": cutoff families.
_CUTOFF = re.compile(r"(map|mean-average-precision|ndcg)(?:@|-at-|-)(\d+)")
_FAMILIES = {"map": "map", "mean-average-precision": "map", "ndcg": "ndcg"}


def grader_key(name: str) -> str:
    """MLE-bench grader names normalised: lower case, words joined by '-'."""
    return re.sub(r"[\s_]+", "-", name.strip().lower())


def metric_for(grader_name: str, n_targets: int) -> str | None:
    """Our metric for an MLE-bench grader with `n_targets` submission target columns."""
    key = grader_key(grader_name)
    cutoff = _CUTOFF.fullmatch(key)
    if cutoff:
        return f"{_FAMILIES[cutoff[1]]}@{cutoff[2]}" if n_targets == 1 else None
    one, several = GRADER_METRICS.get(key, ("", ""))
    return (one if n_targets == 1 else several) or None


@dataclasses.dataclass(frozen=True)
class Imported:
    """One competition's outcome: the task, or why it was refused."""

    competition_id: str
    task: Task | None = None
    refused: str | None = None
    earlier: bool = False  # imported by an earlier run (the task was already there)

    def line(self) -> str:
        """`imported <id>: ...` or `refused <id>: why`, for the command's output."""
        if self.task is None:
            return f"refused {self.competition_id}: {self.refused}"
        s = self.task.spec
        t = s.thresholds
        how = "kept (imported earlier)" if self.earlier else "imported"
        return (f"{how} {self.competition_id}: {s.metric} "
                f"({'lower' if s.lower_is_better else 'higher'} is better), thresholds median "
                f"{t.median:.6g} bronze {t.bronze:.6g} silver {t.silver:.6g} gold {t.gold:.6g}; "
                f"{s.modality} {s.task_type}")


def import_all(competitions_dir: str | os.PathLike, data_dir: str | os.PathLike,
               out_dir: str | os.PathLike, ids: Sequence[str] = (), *,
               modality: str | None = None, task_type: str | None = None) -> list[Imported]:
    """Every competition under `competitions_dir` (or those named by `ids`) into
    `out_dir/<id>/`; a refusal never stops the others. A task already in `out_dir` that loads
    is kept as it is."""
    competitions_dir, out_dir = paths.absolute(competitions_dir), paths.absolute(out_dir)
    if (competitions_dir / "config.yaml").is_file():  # one competition's folder
        folders = {competitions_dir.name: competitions_dir}
    else:
        folders = {p.parent.name: p.parent for p in competitions_dir.glob("*/config.yaml")}
    results = []
    for comp_id in (ids or sorted(folders)):
        if comp_id not in folders:
            results.append(Imported(comp_id, refused=f"no {comp_id}/config.yaml under "
                                                     f"{competitions_dir}"))
            continue
        target = out_dir / comp_id
        try:
            if target.exists():
                results.append(Imported(comp_id, task=load_task(target), earlier=True))
                continue
            task = import_competition(folders[comp_id], data_dir, target, modality=modality,
                                      task_type=task_type)
            results.append(Imported(comp_id, task=task))
        except TaskError as e:
            results.append(Imported(comp_id, refused=" ".join(str(e).split())))
    return results


def import_competition(competition_dir: str | os.PathLike, data_dir: str | os.PathLike,
                       out_dir: str | os.PathLike, *, modality: str | None = None,
                       task_type: str | None = None) -> Task:
    """Writes `out_dir` as a task from one MLE-bench competition and returns it loaded, or
    raises TaskError saying why the competition cannot be a task. Modality and task type are
    inferred from the data unless given."""
    competition_dir, data_dir = paths.absolute(competition_dir), paths.absolute(data_dir)
    out_dir = paths.absolute(out_dir)
    config = _read_config(competition_dir / "config.yaml")
    comp_id = str(config["id"])
    dataset = config["dataset"]
    public_dir = data_dir / comp_id / "prepared" / "public"
    answers_path = data_dir / str(dataset.get("answers", ""))
    sample_path = data_dir / str(dataset.get("sample_submission", ""))
    board_path = competition_dir / "leaderboard.csv"
    for path in (public_dir, answers_path, sample_path, board_path):
        if not path.exists() or path == data_dir:
            raise TaskError(f"{path}: missing (prepare the competition with `mlebench prepare "
                            f"-c {comp_id}` first, or check config.yaml's dataset paths)")
    if answers_path.suffix.lower() != ".csv":
        raise TaskError(f"{answers_path}: answers in {answers_path.suffix or 'an unknown'} "
                        "format; only CSV answers can be graded here")

    scores = _leaderboard_scores(board_path)
    sample_columns = [str(c) for c in read_csv_strict(sample_path, "sample submission").columns]
    if len(sample_columns) < 2:
        raise TaskError(f"{sample_path}: needs an id column and at least one target column")
    grader_name = str((config.get("grader") or {}).get("name", ""))
    metric, grader, answers = _choose_grading(config, grader_name, answers_path, sample_columns)
    lower_is_better = _direction(scores, metric, board_path)
    targets = sample_columns[1:]
    modality = modality or profile.infer_modality(public_dir, skip_columns=(sample_columns[0],))
    task_type = task_type or profile.infer_task_type(
        metrics_lib.get_metric(metric) if grader is None else None,
        answers[targets] if all(t in answers for t in targets) else answers.iloc[:, 1:],
        modality)

    public: dict[str, Any] = {p.name: p for p in sorted(public_dir.iterdir())}
    if "description.md" not in public:
        description = competition_dir / "description.md"
        public["description.md"] = (description if description.is_file() else
                                    _fallback_description(config, targets, grader_name))
    public["sample_submission.csv"] = sample_path
    spec = TaskSpec(
        id=comp_id, title=str(config.get("name", comp_id)), modality=modality,
        task_type=task_type, metric=metric, lower_is_better=lower_is_better,
        id_column=sample_columns[0], target_columns=tuple(targets),
        thresholds=medals_lib.leaderboard_thresholds(scores, lower_is_better), seed_id=comp_id,
        generator={"backend": "mlebench", "grader": grader_name},
        sizes={"teams": len(scores), "test_rows": len(answers)}, grader=grader,
        leaderboard="private/leaderboard.csv")
    task = save_task(out_dir, spec, public=public,
                     private={"answers.csv": answers, "leaderboard.csv": board_path})
    try:
        _prove_grading(task)
    except TaskError:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    return task


def _read_config(path: pathlib.Path) -> dict[str, Any]:
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise TaskError(f"{path}: cannot read the competition config: {e}") from None
    if not isinstance(config, dict):
        raise TaskError(f"{path}: must hold a mapping (id, dataset, grader, ...)")
    for key in ("id", "dataset"):
        if key not in config:
            raise TaskError(f"{path}: no `{key}` entry")
    if not isinstance(config["dataset"], dict):
        raise TaskError(f"{path}: `dataset` must map answers and sample_submission to files")
    return config


def _leaderboard_scores(board_path: pathlib.Path) -> list[float]:
    try:
        board = pd.read_csv(board_path)
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise TaskError(f"{board_path}: cannot read the leaderboard: {e}") from None
    if "score" not in board.columns:
        raise TaskError(f"{board_path}: needs a `score` column")
    scores = pd.to_numeric(board["score"], errors="coerce").dropna()
    if scores.empty:
        raise TaskError(f"{board_path}: no numeric score")
    return scores.astype(float).tolist()


def _direction(scores: list[float], metric: str, board_path: pathlib.Path) -> bool:
    """MLE-bench's rule (first score below the last: lower is better); an even board (first
    equals last) takes the metric's direction. It must agree with our metric's."""
    known = None
    try:
        known = metrics_lib.get_metric(metric).lower_is_better
    except KeyError:  # a custom grader: only the board knows
        pass
    if scores[0] == scores[-1] and known is not None:
        return known
    lower = medals_lib.lower_is_better_from_leaderboard(scores)
    if known is not None and known != lower:
        listed = "lower" if lower else "higher"
        raise TaskError(f"{board_path}: listed best first, the board says {listed} is better "
                        f"(first {scores[0]:g}, last {scores[-1]:g}), but {metric} is "
                        f"{'lower' if known else 'higher'}-is-better")
    return lower


def _choose_grading(config: dict[str, Any], grader_name: str, answers_path: pathlib.Path,
                    sample_columns: list[str]) -> tuple[str, str | None, pd.DataFrame]:
    """(metric, custom grade_fn or None, answers table): our metric when one fits, else the
    competition's grade_fn when it can be imported here; TaskError otherwise."""
    answers = read_csv_strict(answers_path, "answers")
    metric = metric_for(grader_name, len(sample_columns) - 1)
    why = (f"grader {grader_name!r} is not one whose metric is computed here"
           if metric is None else "")
    if metric is not None:
        try:
            return metric, None, answers_for(metric, answers, sample_columns, answers_path)
        except TaskError as e:
            why = f"grader {grader_name!r} maps to {metric}, but {e}"
    grade_fn = str((config.get("grader") or {}).get("grade_fn") or "")
    if not grade_fn:
        raise TaskError(f"{why}, and config.yaml names no grade_fn")
    module = grade_fn.partition(":")[0]
    try:
        importlib.import_module(module)
    except Exception as e:  # noqa: BLE001 - any import failure means it cannot grade here
        raise TaskError(f"{why}, and its grade_fn {grade_fn} cannot be imported "
                        f"({type(e).__name__}: {e}); install the package that provides it "
                        "(e.g. mlebench) to import this competition") from None
    return grader_name or "custom", grade_fn, answers


def answers_for(metric: str, answers: pd.DataFrame, sample_columns: list[str],
                 answers_path: pathlib.Path) -> pd.DataFrame:
    """The answers in the sample submission's columns, or TaskError saying why not."""
    id_column, targets = sample_columns[0], sample_columns[1:]
    if id_column not in answers.columns:
        raise TaskError(f"{answers_path.name} has no id column {id_column!r} (has "
                        f"{list(answers.columns)})")
    if metric in _SINGLE_LABEL_F1 and targets[0] in answers and _label_sets(answers[targets[0]]):
        raise TaskError(f"{answers_path.name}'s {targets[0]!r} holds space-separated label sets "
                        f"(e.g. {answers[targets[0]].iloc[0]!r}); F1 over label sets is not "
                        "computed here")
    if all(t in answers.columns for t in targets):
        return answers[sample_columns]
    labels = [c for c in answers.columns if c != id_column and c not in targets]
    kind = metrics_lib.get_metric(metric).kind
    if kind == metrics_lib.Kind.CLASS_PROBABILITIES and len(labels) == 1:
        values = answers[labels[0]]
        mapping = class_columns.match_columns(sorted(set(values)), targets)
        if mapping is None:
            raise TaskError(f"the labels of {answers_path.name}'s {labels[0]!r} column "
                            f"({sorted(set(values))[:5]}) match no one-to-one set of the sample's "
                            f"class columns {targets[:5]}")
        one_hot = pd.DataFrame({t: 0 for t in targets}, index=answers.index)
        for label, column in mapping.items():
            one_hot.loc[values == label, column] = 1
        return pd.concat([answers[[id_column]], one_hot], axis=1)
    missing = [t for t in targets if t not in answers.columns]
    raise TaskError(f"{answers_path.name} lacks the sample's target columns {missing[:5]}")


def _label_sets(values: pd.Series) -> bool:
    """Whether cells are sets of space-separated labels (tags) rather than labels that happen to
    hold spaces ("Twitter for Android"): sets combine a few tokens into many distinct cells."""
    if not values.str.contains(r"\s").any():
        return False
    tokens = {token for cell in values for token in cell.split()}
    return values.nunique() > len(tokens)


def _prove_grading(task: Task) -> None:
    """The sample submission grades without a grader error; under our metric the answers
    themselves grade valid and gold. TaskError otherwise."""
    with tempfile.TemporaryDirectory(prefix="sandmle-import-") as tmp:
        sample = grading.grade(task, task.public_dir / "sample_submission.csv")
        if sample.grader_error:
            raise TaskError(f"{task.id}: grading the sample submission failed: "
                            f"{sample.grader_error}")
        if task.spec.grader is not None:
            return
        perfect = pathlib.Path(tmp) / "answers.csv"
        task.answers[task.submission_columns].to_csv(perfect, index=False)
        report = grading.grade(task, perfect)
    if not report.valid_submission:
        raise TaskError(f"{task.id}: the answers do not fit {task.spec.metric}: "
                        f"{report.error or report.grader_error}")
    if not report.gold_medal:
        raise TaskError(f"{task.id}: the answers themselves score {report.score:.6g} under "
                        f"{task.spec.metric}, short of the leaderboard's gold "
                        f"{task.spec.thresholds.gold:.6g}: the grader does not match the board")


def _fallback_description(config: dict[str, Any], targets: list[str], grader: str) -> str:
    return (f"# {config.get('name', config['id'])}\n\nPredict {', '.join(targets[:10])} for "
            f"every id in the test data and write them in the format of sample_submission.csv. "
            f"Submissions are scored with {grader or 'the competition metric'}.\n")


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
