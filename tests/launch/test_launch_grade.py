"""launch.grade prints a report as JSON; exit codes separate bad submissions from broken tasks."""

import json
import pathlib
import subprocess
import sys

import pandas as pd
from conftest import write_task

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _grade(task_dir, submission):
    return subprocess.run(
        [sys.executable, "-m", "launch.grade", f"--task={task_dir}", f"--submission={submission}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_valid_and_invalid_submissions_exit_zero(tmp_path):
    task = write_task(tmp_path / "task")
    good = tmp_path / "good.csv"
    pd.DataFrame({"id": task.answers["id"], "target": task.answers["target"].astype(float)}
                 ).to_csv(good, index=False)
    result = _grade(task.root, good)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["score"] == 1.0 and report["gold_medal"] and report["valid_submission"]

    bad = tmp_path / "bad.csv"
    bad.write_text("id;target\n1;0.5\n")
    result = _grade(task.root, bad)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert not report["valid_submission"] and "comma-separated" in report["error"]


def test_broken_task_exits_two(tmp_path):
    task = write_task(tmp_path / "task")
    (task.root / "task.json").write_text("{}")
    result = _grade(task.root, tmp_path / "s.csv")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "task.json" in result.stderr and "Traceback" not in result.stderr
