"""load_task accepts a good task and rejects each kind of broken one with a precise TaskError."""

import json

import pandas as pd
import pytest
from conftest import write_task

from sandmle_jax.tasks import task as task_lib


def _edit_spec(root, **changes):
    path = root / "task.json"
    raw = json.loads(path.read_text())
    raw.update(changes)
    path.write_text(json.dumps(raw))


def test_round_trip(tmp_path):
    task = write_task(tmp_path / "t")
    again = task_lib.load_task(tmp_path / "t")
    assert again.spec == task.spec
    assert again.spec.target_columns == ("target",)
    assert set(again.spec.checksums) == {
        "private/answers.csv", "public/description.md", "public/sample_submission.csv",
        "public/test.csv", "public/train.csv"}
    assert again.submission_columns == ["id", "target"]
    assert len(again.answers) == 20


def test_save_refuses_existing_dir(tmp_path):
    write_task(tmp_path / "t")
    with pytest.raises(task_lib.TaskError, match="already exists"):
        write_task(tmp_path / "t")


def test_failed_save_leaves_nothing_behind(tmp_path):
    with pytest.raises(task_lib.TaskError, match="strictly monotone"):
        write_task(tmp_path / "t", thresholds={"median": 0.9, "bronze": 0.7, "silver": 0.8,
                                               "gold": 0.95})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("lower, thresholds, ok", [
    (False, {"median": 0.5, "bronze": 0.6, "silver": 0.7, "gold": 0.8}, True),
    (False, {"median": 0.5, "bronze": 0.6, "silver": 0.6, "gold": 0.8}, False),
    (True, {"median": 0.8, "bronze": 0.7, "silver": 0.6, "gold": 0.5}, True),
    (True, {"median": 0.5, "bronze": 0.6, "silver": 0.7, "gold": 0.8}, False),
    (False, {"median": float("nan"), "bronze": 0.6, "silver": 0.7, "gold": 0.8}, False),
])
def test_threshold_monotonicity(lower, thresholds, ok):
    t = task_lib.Thresholds(**thresholds)
    if ok:
        t.check_monotone(lower)
    else:
        with pytest.raises(task_lib.TaskError):
            t.check_monotone(lower)


def test_leaderboard_thresholds_may_tie():
    t = task_lib.Thresholds(median=0.5, bronze=0.6, silver=0.6, gold=0.8)
    t.check_monotone(False, strict=False)
    with pytest.raises(task_lib.TaskError):
        t.check_monotone(False, strict=True)


@pytest.mark.parametrize("break_it, message", [
    (lambda r: (r / "task.json").unlink(), "task.json: missing"),
    (lambda r: (r / "task.json").write_text("{not json"), "not valid JSON"),
    (lambda r: (r / "task.json").write_text("[1, 2]"), "JSON object"),
    (lambda r: _edit_spec(r, colour="blue"), r"unknown keys \['colour'\]"),
    (lambda r: _edit_spec(r, thresholds={"gold": 1}), "thresholds must map exactly"),
    (lambda r: _edit_spec(r, thresholds={"median": 0.9, "bronze": 0.7, "silver": 0.8,
                                         "gold": 0.95}), "bronze=0.7 must be strictly above"),
    (lambda r: _edit_spec(r, metric="no_such_metric"), "no_such_metric"),
    (lambda r: _edit_spec(r, lower_is_better=True), "contradicts metric"),
    (lambda r: _edit_spec(r, target_columns=[]), "target_columns"),
    (lambda r: _edit_spec(r, lower_is_better="no"), "true or false"),
    (lambda r: (r / "public" / "description.md").unlink(), "description.md: required"),
    (lambda r: (r / "private" / "answers.csv").rename(r / "public" / "answers.csv"),
     "answers.csv: required file missing"),
    (lambda r: (r / "public" / "train.csv").write_text("id,x\n1,999\n"), "checksum mismatch"),
    (lambda r: (r / "public" / "extra.csv").write_text("a\n1\n"), "not in task.json checksums"),
    (lambda r: (r / "public" / "test.csv").unlink(), "in checksums but missing"),
])
def test_broken_task_is_rejected(tmp_path, break_it, message):
    write_task(tmp_path / "t")
    break_it(tmp_path / "t")
    with pytest.raises(task_lib.TaskError, match=message):
        task_lib.load_task(tmp_path / "t")


def test_hidden_file_in_public_is_rejected(tmp_path):
    answers = pd.DataFrame({"id": [1, 2], "target": [0, 1]})
    with pytest.raises(task_lib.TaskError, match="hidden files must live in private"):
        write_task(tmp_path / "t", answers=answers, extra_public={"answers.csv": answers})


def test_duplicate_answer_ids_rejected(tmp_path):
    answers = pd.DataFrame({"id": [1, 1, 2, 3], "target": [0, 1, 0, 1]})
    with pytest.raises(task_lib.TaskError, match=r"duplicate ids \['1'\]"):
        write_task(tmp_path / "t", answers=answers)


def test_sample_must_match_answers(tmp_path):
    write_task(tmp_path / "t")
    root = tmp_path / "t"
    (root / "public" / "sample_submission.csv").write_text("id,target\n1,0.5\n2,0.5\n")
    _edit_spec(root, checksums=task_lib.compute_checksums(root))
    with pytest.raises(task_lib.TaskError, match="ids differ from the answers"):
        task_lib.load_task(root)
    (root / "public" / "sample_submission.csv").write_text("id,prob\n1,0.5\n")
    _edit_spec(root, checksums=task_lib.compute_checksums(root))
    with pytest.raises(task_lib.TaskError, match=r"must be exactly \['id', 'target'\]"):
        task_lib.load_task(root)


def test_missing_directory():
    with pytest.raises(task_lib.TaskError, match="not a directory"):
        task_lib.load_task("/nonexistent/task")
