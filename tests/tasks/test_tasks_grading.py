"""grade() scores valid submissions exactly and turns every bad-input class into a reason."""

import os
import re
import time

import numpy as np
import pandas as pd
import pytest
from conftest import write_task
from sklearn.metrics import accuracy_score, roc_auc_score

from sandmle_jax.tasks import grading


def _submission(task, tmp_path, scores=None, text=None, data=None, name="submission.csv"):
    path = tmp_path / name
    if data is not None:
        path.write_bytes(data)
    elif text is not None:
        path.write_text(text)
    else:
        ids = task.answers["id"]
        if scores is None:
            scores = np.linspace(0, 1, len(ids))
        pd.DataFrame({"id": ids, "target": scores}).to_csv(path, index=False)
    return path


def test_valid_submission_scores_like_sklearn(binary_task, tmp_path):
    rng = np.random.default_rng(1)
    scores = rng.random(len(binary_task.answers))
    report = grading.grade(binary_task, _submission(binary_task, tmp_path, scores))
    expected = roc_auc_score(binary_task.answers["target"].astype(int), scores)
    assert report.valid_submission and report.submission_exists
    assert report.error is None and report.grader_error is None
    assert report.score == pytest.approx(expected, abs=1e-12)
    assert report.is_lower_better is False
    assert report.gold_threshold == 0.9 and report.median_threshold == 0.6


def test_row_order_and_whitespace_do_not_matter(binary_task, tmp_path):
    y = binary_task.answers["target"].astype(int).to_numpy()
    ids = binary_task.answers["id"].to_numpy()
    order = np.random.default_rng(2).permutation(len(ids))
    lines = ["id, target"] + [f" {ids[i]} , {float(y[i])}" for i in order]
    report = grading.grade(binary_task, _submission(binary_task, tmp_path,
                                                    text="\n".join(lines) + "\n"))
    assert report.valid_submission, report.error
    assert report.score == 1.0 and report.gold_medal and report.any_medal


def test_columns_in_another_order_are_fine(binary_task, tmp_path):
    frame = pd.DataFrame({"target": 0.5, "id": binary_task.answers["id"]})
    path = tmp_path / "submission.csv"
    frame.to_csv(path, index=False)
    assert grading.grade(binary_task, path).score == 0.5


def test_label_metric_compares_numbers_as_numbers(tmp_path):
    answers = pd.DataFrame({"id": range(10), "target": [0, 1, 2, 1, 0, 2, 1, 0, 2, 1]})
    task = write_task(tmp_path / "t", metric="accuracy", answers=answers)
    preds = [0, 1, 2, 1, 0, 2, 1, 0, 0, 0]
    text = "id,target\n" + "".join(f"{i},{float(p)}\n" for i, p in enumerate(preds))
    report = grading.grade(task, _submission(task, tmp_path, text=text))
    assert report.score == pytest.approx(accuracy_score(answers["target"], preds))


def test_string_labels(tmp_path):
    answers = pd.DataFrame({"id": range(6), "target": ["cat", "dog", "cat", "eel", "dog", "eel"]})
    task = write_task(tmp_path / "t", metric="accuracy", answers=answers)
    text = "id,target\n0,cat\n1,dog\n2,dog\n3,eel\n4,dog\n5,cat\n"
    assert grading.grade(task, _submission(task, tmp_path, text=text)).score == pytest.approx(4 / 6)


def _rows(task, fmt="{i},{v}", v=0.5):
    return "".join(fmt.format(i=i, v=v) + "\n" for i in task.answers["id"])


BAD_INPUTS = {
    "wrong delimiter": (lambda t: "id;target\n" + _rows(t, "{i};{v}"), "not comma-separated"),
    "tab delimiter": (lambda t: "id\ttarget\n" + _rows(t, "{i}\t{v}"), "not comma-separated"),
    "no header": (lambda t: _rows(t), "no header row"),
    "extra index column": (lambda t: ",id,target\n" + "".join(
        f"{k},{i},0.5\n" for k, i in enumerate(t.answers["id"])), "to_csv\\(index=False\\)"),
    "missing column": (lambda t: "id\n" + _rows(t, "{i}"), r"missing columns \['target'\]"),
    "extra column": (lambda t: "id,target,x\n" + _rows(t, "{i},{v},1"),
                     r"unexpected columns \['x'\]"),
    "nan": (lambda t: "id,target\n" + _rows(t, v="nan"), "NaN or infinite"),
    "inf": (lambda t: "id,target\n" + _rows(t, v="inf"), "NaN or infinite"),
    "empty cell": (lambda t: "id,target\n" + _rows(t, v=""), "must hold numbers"),
    "string in numeric": (lambda t: "id,target\n" + _rows(t, v="high"),
                          "must hold numbers; 20 cells do not"),
    "duplicate ids": (lambda t: "id,target\n" + _rows(t) + "100,0.5\n",
                      r"1 ids appear more than once: \['100'\]"),
    "missing ids": (lambda t: "id,target\n" + "".join(
        f"{i},0.5\n" for i in t.answers["id"][3:]), r"3 test ids missing: \['100', '101', '102'\]"),
    "unknown ids": (lambda t: "id,target\n" + _rows(t) + "999,0.5\n",
                    r"1 ids are not test ids: \['999'\]"),
    "probability out of range": (lambda t: "id,target\n" + _rows(t, v=1.5),
                                 r"outside \[0, 1\]"),
    "repeated column": (lambda t: "id,target,target\n" + _rows(t, "{i},{v},{v}"),
                        r"columns \['target'\] appear more than once"),
    "header only": (lambda t: "id,target\n", "no rows"),
    "ragged rows": (lambda t: "id,target\n" + _rows(t, v="0.5,7,8"), "well-formed CSV"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_csv_is_an_invalid_grade_with_reason(binary_task, tmp_path, case):
    make, reason = BAD_INPUTS[case]
    report = grading.grade(binary_task, _submission(binary_task, tmp_path, text=make(binary_task)))
    assert not report.valid_submission and report.submission_exists
    assert report.score is None and not report.any_medal and not report.above_median
    assert report.grader_error is None, report.grader_error
    assert report.error and re.search(reason, report.error), report.error


@pytest.mark.parametrize("data, reason", [
    (b"\xef\xbb\xbfid,target\n100,0.5\n", "byte-order mark"),
    (b"", "empty"),
    (bytes(range(256)) * 8, "NUL bytes"),
    (b"id,target\n\xff\xfe\xfa,0.5\n", "not UTF-8"),
])
def test_bad_bytes(binary_task, tmp_path, data, reason):
    report = grading.grade(binary_task, _submission(binary_task, tmp_path, data=data))
    assert not report.valid_submission and reason in report.error


def test_missing_file(binary_task, tmp_path):
    report = grading.grade(binary_task, tmp_path / "submission.csv")
    assert not report.submission_exists and not report.valid_submission
    assert "not found" in report.error


def test_directory_named_submission(binary_task, tmp_path):
    (tmp_path / "submission.csv").mkdir()
    report = grading.grade(binary_task, tmp_path / "submission.csv")
    assert not report.valid_submission and "is a directory" in report.error


def test_symlink_to_answers_is_refused(binary_task, tmp_path):
    link = tmp_path / "submission.csv"
    os.symlink(binary_task.private_dir / "answers.csv", link)
    report = grading.grade(binary_task, link)
    assert not report.valid_submission and "symlink" in report.error


def test_fifo_is_refused_without_blocking(binary_task, tmp_path):
    os.mkfifo(tmp_path / "submission.csv")
    report = grading.grade(binary_task, tmp_path / "submission.csv")
    assert not report.valid_submission and "not a regular file" in report.error


def test_many_gigabyte_file_is_refused_in_bounded_time(binary_task, tmp_path):
    path = tmp_path / "submission.csv"
    with open(path, "wb") as f:  # sparse: 20 GB apparent size, no disk used
        f.truncate(20 << 30)
    start = time.perf_counter()
    report = grading.grade(binary_task, path)
    assert time.perf_counter() - start < 1.0
    assert not report.valid_submission and "over the" in report.error


def test_metric_undefined_is_a_grader_error(tmp_path):
    answers = pd.DataFrame({"id": range(6), "target": [1] * 6})
    task = write_task(tmp_path / "t", answers=answers)
    report = grading.grade(task, _submission(task, tmp_path))
    assert not report.valid_submission and report.error is None
    assert "undefined" in report.grader_error


def test_custom_grader(tmp_path):
    grader = (
        "class InvalidSubmissionError(Exception):\n    pass\n\n"
        "def grade(submission, answers):\n"
        "    if 'target' not in submission:\n"
        "        raise InvalidSubmissionError('need a target column')\n"
        "    if submission['target'].iloc[0] == 42:\n"
        "        raise KeyError('grader bug')\n"
        "    return float((submission['target'].round() == answers['target']).mean())\n")
    task = write_task(tmp_path / "t", grader="private/grader.py:grade",
                      extra_private={"grader.py": grader})
    ids = task.answers["id"]
    good = tmp_path / "good.csv"
    pd.DataFrame({"id": ids, "target": task.answers["target"].astype(float)}).to_csv(
        good, index=False)
    assert grading.grade(task, good).score == 1.0
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"id": ids, "pred": 0}).to_csv(bad, index=False)
    report = grading.grade(task, bad)
    assert not report.valid_submission and "need a target column" in report.error
    buggy = tmp_path / "buggy.csv"
    pd.DataFrame({"id": ids, "target": 42}).to_csv(buggy, index=False)
    report = grading.grade(task, buggy)
    assert report.grader_error and "KeyError" in report.grader_error and report.error is None


def test_report_round_trips_through_dict(binary_task, tmp_path):
    report = grading.grade(binary_task, _submission(binary_task, tmp_path))
    again = grading.GradeReport.from_dict(report.to_dict())
    assert again == report
    for key in ("score", "gold_threshold", "silver_threshold", "bronze_threshold",
                "median_threshold", "any_medal", "gold_medal", "silver_medal", "bronze_medal",
                "above_median", "submission_exists", "valid_submission", "is_lower_better"):
        assert key in report.to_dict()
