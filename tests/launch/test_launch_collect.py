"""`launch.collect` as a user runs it (a subprocess, relative paths): the Seed-SFT data step on a
folder of tasks, its resume, and the set-up errors that stop it with one line and exit 2."""

import json
import pathlib
import subprocess
import sys

import pytest
from conftest import write_tabular_task

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIG = f"--config={ROOT / 'configs' / 'tiny_cpu.py'}"


def _collect(cwd: pathlib.Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "launch.collect", CONFIG, *flags], cwd=cwd,
                          capture_output=True, text=True, timeout=900)


def test_collect_then_resume_from_a_folder_of_tasks(tmp_path):
    for i in range(2):
        write_tabular_task(tmp_path / "tasks" / f"churn-{i}", seed=i, task_id=f"churn-{i}")
    done = _collect(tmp_path, "--tasks=tasks", "--policy=reference", "--tier=forest",
                    "--out=data", "--filter=above_median")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "data" / "collect.json").read_text())
    assert summary | {"episodes": 2, "kept": 2, "rows": 2, "filter": "above_median"} == summary
    assert "collected: 2 of 2 episodes kept" in done.stdout
    assert (tmp_path / "data" / "logs").is_dir()
    again = _collect(tmp_path, "--tasks=tasks", "--policy=reference", "--tier=forest",
                     "--out=data", "--filter=above_median")
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((tmp_path / "data" / "collect.json").read_text())["played_now"] == 0
    assert len((tmp_path / "data" / "sft.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize("flags, message", [
    (("--filter=best",), "--filter"),
    (("--student_dir=nowhere",), "no tokenizer there"),
    (("--policy=openai",), "--openai_base_url"),
    (("--scaffold=chess",), "--scaffold"),
])
def test_set_up_errors_are_one_line_and_exit_two(tmp_path, flags, message):
    write_tabular_task(tmp_path / "tasks" / "churn", task_id="churn")
    done = _collect(tmp_path, "--tasks=tasks", "--out=data", *flags)
    assert done.returncode == 2, done.stderr[-2000:]
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "data" / "episodes.jsonl").exists()
