"""Importing a prepared MLE-bench competition, and MLE-bench-shaped aggregate reports."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from sandmle_jax.tasks import grading, mlebench
from sandmle_jax.tasks.task import TaskError

COMP = "toy-cactus"


def _layout(tmp_path, *, grader_name="auc-roc", grade_fn=None, answers_extra=False, teams=120):
    comp = tmp_path / "registry" / COMP
    data = tmp_path / "data"
    public = data / COMP / "prepared" / "public"
    private = data / COMP / "prepared" / "private"
    for d in (comp, public, private):
        d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    ids = [f"img{i}.jpg" for i in range(30)]
    y = rng.integers(0, 2, size=30)
    y[:2] = [0, 1]
    answers = pd.DataFrame({"id": ids, "has_cactus": y})
    if answers_extra:
        answers["usage"] = "Private"
    answers.to_csv(private / "test.csv", index=False)
    pd.DataFrame({"id": ids, "has_cactus": 0.5}).to_csv(public / "sample_submission.csv",
                                                        index=False)
    pd.DataFrame({"id": ["a.jpg"], "has_cactus": [1]}).to_csv(public / "train.csv", index=False)
    (comp / "description.md").write_text("# Toy cactus\n")
    # Leaderboard listed best first, AUC: team i scores 1 - i/1000.
    pd.DataFrame({"teamName": [f"t{i}" for i in range(teams)],
                  "score": [1 - i / 1000 for i in range(teams)]}).to_csv(
                      comp / "leaderboard.csv", index=False)
    config = (f"id: {COMP}\nname: Toy Cactus\ncompetition_type: code\nawards_medals: false\n"
              f"dataset:\n  answers: {COMP}/prepared/private/test.csv\n"
              f"  sample_submission: {COMP}/prepared/public/sample_submission.csv\n"
              f"grader:\n  name: {grader_name}\n")
    if grade_fn:
        config += f"  grade_fn: {grade_fn}\n"
    (comp / "config.yaml").write_text(config)
    return comp, data, answers


def test_import_uses_our_metric_and_leaderboard_medals(tmp_path):
    comp, data, answers = _layout(tmp_path, teams=120)
    task = mlebench.import_competition(comp, data, tmp_path / "task", modality="image",
                                       task_type="classification")
    assert task.spec.metric == "roc_auc" and task.spec.grader is None
    assert not task.spec.lower_is_better
    # 120 teams: gold = position 10, silver = position 24, bronze = position 48.
    t = task.spec.thresholds
    assert (t.gold, t.silver, t.bronze) == pytest.approx((0.991, 0.977, 0.953))
    assert (task.private_dir / "leaderboard.csv").is_file()
    assert not (task.public_dir / "test.csv").exists()  # answers never in public/
    scores = np.random.default_rng(3).random(30)
    sub = tmp_path / "submission.csv"
    pd.DataFrame({"id": answers["id"], "has_cactus": scores}).to_csv(sub, index=False)
    report = grading.grade(task, sub)
    assert report.score == pytest.approx(roc_auc_score(answers["has_cactus"], scores))
    # HumanRank on the 120-team board: first position whose score the submission ties/beats.
    board = np.array([1 - i / 1000 for i in range(120)])
    beaten = np.flatnonzero(report.score >= board)
    p = beaten[0] + 1 if len(beaten) else 121
    assert report.humanrank == pytest.approx((120 - p + 1) / 120)


def test_import_falls_back_to_mlebench_grade_fn(tmp_path, monkeypatch):
    module_dir = tmp_path / "mods"
    module_dir.mkdir()
    (module_dir / "toy_grade.py").write_text(
        "def grade(submission, answers):\n"
        "    merged = submission.merge(answers, on='id')\n"
        "    return float((merged['has_cactus_x'].round() == merged['has_cactus_y']).mean())\n")
    monkeypatch.syspath_prepend(str(module_dir))
    comp, data, answers = _layout(tmp_path, grader_name="cactus-rounded-agreement",
                                  answers_extra=True, grade_fn="toy_grade:grade")
    task = mlebench.import_competition(comp, data, tmp_path / "task")
    assert task.spec.grader == "toy_grade:grade"
    assert task.spec.metric == "cactus-rounded-agreement"
    sub = tmp_path / "submission.csv"
    pd.DataFrame({"id": answers["id"], "has_cactus": answers["has_cactus"]}).to_csv(
        sub, index=False)
    assert grading.grade(task, sub).score == 1.0


def test_extra_answer_columns_are_dropped_and_our_metric_grades(tmp_path):
    comp, data, answers = _layout(tmp_path, answers_extra=True)  # a Kaggle-style "usage" column
    task = mlebench.import_competition(comp, data, tmp_path / "task")
    assert task.spec.metric == "roc_auc" and task.spec.grader is None
    assert list(task.answers.columns) == ["id", "has_cactus"]


def test_import_errors(tmp_path):
    comp, data, _ = _layout(tmp_path, grader_name="cactus-special-score")  # and no grade_fn
    with pytest.raises(TaskError, match="not one whose metric is computed here.*no grade_fn"):
        mlebench.import_competition(comp, data, tmp_path / "task")
    (data / COMP / "prepared" / "private" / "test.csv").unlink()
    with pytest.raises(TaskError, match="mlebench prepare"):
        mlebench.import_competition(comp, data, tmp_path / "task")


def test_aggregate_reports_has_mlebench_fields(tmp_path):
    comp, data, answers = _layout(tmp_path)
    task = mlebench.import_competition(comp, data, tmp_path / "task")
    good = tmp_path / "good.csv"
    pd.DataFrame({"id": answers["id"], "has_cactus": answers["has_cactus"]}).to_csv(
        good, index=False)
    reports = [grading.grade(task, good), grading.grade(task, tmp_path / "absent.csv")]
    summary = mlebench.aggregate_reports(reports)
    assert summary == {
        "total_runs": 2, "total_runs_with_submissions": 1, "total_valid_submissions": 1,
        "total_medals": 1, "total_gold_medals": 1, "total_silver_medals": 0,
        "total_bronze_medals": 0, "total_above_median": 1,
        "competition_reports": [r.to_dict() for r in reports]}
