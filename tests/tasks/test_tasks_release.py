"""The release's task layout both ways: export ours, import a bundle (ours or written as the
authors' are: answers and evaluator in public/), through the real sandbox."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import write_task

from sandbox_runner import Limits, Pool, Sandbox
from sandmle_jax.tasks import evaluators, grading, load_task, release

LIMITS = Limits(wall_s=60, memory_bytes=2 << 30, cpus=1)
LOWER = {"median": 3.0, "bronze": 2.0, "silver": 1.0, "gold": 0.5}
N = 30


@pytest.fixture(scope="module")
def pool():
    with Pool(Sandbox(backend="auto"), workers=1) as p:
        yield p


def _tasks(root):
    rng = np.random.default_rng(0)
    ids = np.arange(200, 200 + N)
    classes = np.eye(3, dtype=int)[np.arange(N) % 3]
    return {
        "auc": write_task(root / "auc", task_id="auc", n=N),
        "reg": write_task(root / "reg", task_id="reg", metric="rmse", lower_is_better=True,
                          thresholds=LOWER,
                          answers=pd.DataFrame({"id": ids, "target": rng.uniform(1, 9, N)})),
        "words": write_task(root / "words", task_id="words", metric="accuracy",
                            answers=pd.DataFrame({"id": ids,
                                                  "target": rng.choice(["ox", "elk"], N)})),
        "classes": write_task(root / "classes", task_id="classes",
                              metric="multiclass_log_loss", lower_is_better=True,
                              thresholds=LOWER, targets=("a", "b", "c"),
                              answers=pd.DataFrame({"id": ids, "a": classes[:, 0],
                                                    "b": classes[:, 1], "c": classes[:, 2]})),
    }


def test_export_then_import_gives_back_each_task(tmp_path, pool):
    tasks = _tasks(tmp_path / "tasks")
    exported = release.export_all(tmp_path / "tasks", tmp_path / "bundle")
    assert [r.refused for r in exported] == [None] * 4
    assert json.loads((tmp_path / "bundle" / release.OK_LIST).read_text()) == sorted(tasks)
    for task_id in tasks:
        public = tmp_path / "bundle" / task_id / "prepared" / "public"
        assert not (public / evaluators.ANSWER_FILE).exists()
        assert (public / evaluators.EVALUATOR).read_text() == release.SHIM
    imported = release.import_all(tmp_path / "bundle", tmp_path / "back", pool, LIMITS)
    assert [r.refused for r in imported] == [None] * 4
    rng = np.random.default_rng(1)
    for result in imported:
        original, back = tasks[result.competition_id], result.task
        assert back.spec.metric == original.spec.metric, result.line()
        assert back.spec.thresholds == original.spec.thresholds
        for field in ("modality", "task_type", "title", "target_columns"):
            assert getattr(back.spec, field) == getattr(original.spec, field), field
        assert back.spec.lower_is_better == original.spec.lower_is_better
        assert back.answers.equals(original.answers[back.answers.columns])
        submission = original.sample_submission.copy()
        targets = list(original.spec.target_columns)
        if original.spec.metric == "accuracy":
            submission[targets[0]] = rng.choice(["ox", "elk"], N)
        else:
            submission[targets] = rng.uniform(0.05, 0.95, (N, len(targets)))
        path = tmp_path / f"{result.competition_id}.csv"
        submission.to_csv(path, index=False)
        assert grading.grade(back, path).score == grading.grade(original, path).score
        assert (back.private_dir / evaluators.EVALUATOR).is_file()


def test_an_export_whose_task_json_contradicts_its_evaluator_is_refused(tmp_path, pool):
    write_task(tmp_path / "tasks" / "auc", task_id="auc", n=N)
    release.export_all(tmp_path / "tasks", tmp_path / "bundle")
    recorded = tmp_path / "bundle" / "auc" / "prepared" / "private" / "task.json"
    spec = json.loads(recorded.read_text())
    recorded.write_text(json.dumps({**spec, "metric": "accuracy"}))
    (result,) = release.import_all(tmp_path / "bundle", tmp_path / "back", pool, LIMITS)
    assert "says accuracy, but its evaluator scores as ['roc_auc'" in result.refused


def test_exported_evaluator_runs_as_the_release_runs_it(tmp_path):
    """SynScoreTool: `python evaluator.py --submission_path X`, cwd = prepared/public."""
    task = write_task(tmp_path / "tasks" / "reg", task_id="reg", metric="rmse",
                      lower_is_better=True, thresholds=LOWER,
                      answers=pd.DataFrame({"id": range(N), "target": np.arange(N) / 3}))
    release.export_all(tmp_path / "tasks", tmp_path / "bundle")
    public = tmp_path / "bundle" / "reg" / "prepared" / "public"
    sample = task.public_dir / "sample_submission.csv"
    relative = os.path.relpath(sample, public)
    done = subprocess.run([sys.executable, "evaluator.py", "--submission_path", relative],
                          cwd=public, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["score"] == pytest.approx(grading.grade(task, sample).score, rel=1e-12)
    assert (out["is_lower_better"], out["gold_threshold"]) == (True, 0.5)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,target\n0,1.0\n")
    done = subprocess.run([sys.executable, "evaluator.py", "--submission_path", str(bad)],
                          cwd=public, capture_output=True, text=True)
    assert done.returncode == 1 and "ids must be exactly the test ids" in done.stderr


MAE_EVALUATOR = '''
import argparse, json, sys
import pandas as pd
parser = argparse.ArgumentParser()
parser.add_argument("--submission_path")
args = parser.parse_args()
truth = pd.read_csv("answer.csv")
sub = pd.read_csv(args.submission_path)
if len(sub) != len(truth):
    sys.exit("wrong number of rows")
merged = truth.merge(sub, on="id", suffixes=("", "_p"))
score = SCORE
print(json.dumps({"score": float(score), "is_lower_better": True, "gold_threshold": 0.2,
                  "silver_threshold": 0.5, "bronze_threshold": 1.0, "median_threshold": 2.0}))
'''


def _release_bundle(root, task_id, score_line, listed=True):
    """A task as the authors' bundle has it: answers and evaluator beside the public data."""
    public = root / task_id / "prepared" / "public"
    public.mkdir(parents=True)
    rng = np.random.default_rng(3)
    ids = np.arange(100, 100 + N)
    x = rng.normal(size=2 * N)
    y = 3 * x + rng.normal(size=2 * N)
    pd.DataFrame({"id": ids - 100, "x": x[:N], "y": y[:N]}).to_csv(public / "train.csv",
                                                                  index=False)
    pd.DataFrame({"id": ids, "x": x[N:]}).to_csv(public / "test.csv", index=False)
    pd.DataFrame({"id": ids, "y": 0.0}).to_csv(public / "sample_submission.csv", index=False)
    pd.DataFrame({"id": ids, "y": y[N:]}).to_csv(public / "answer.csv", index=False)
    (public / "description.md").write_text(f"# Growth of {task_id}\n\nPredict y from x.\n")
    (public / "evaluator.py").write_text(MAE_EVALUATOR.replace("SCORE", score_line))
    ok = root / release.OK_LIST
    listed_ids = json.loads(ok.read_text()) if ok.is_file() else []
    ok.write_text(json.dumps(listed_ids + [task_id] if listed else listed_ids))


def test_import_of_a_bundle_in_the_authors_layout(tmp_path, pool):
    bundle = tmp_path / "bundle"
    _release_bundle(bundle, "plants", "(merged['y'] - merged['y_p']).abs().mean()")
    _release_bundle(bundle, "unlisted", "(merged['y'] - merged['y_p']).abs().mean()",
                    listed=False)
    _release_bundle(bundle, "median-error", "(merged['y'] - merged['y_p']).abs().median()")
    _release_bundle(bundle, "crashing", "1 / 0")
    results = {r.competition_id: r for r in release.import_all(bundle, tmp_path / "ours", pool,
                                                               LIMITS)}
    assert sorted(results) == ["crashing", "median-error", "plants"]  # the ok-list rules
    plants = results["plants"].task
    assert (plants.spec.metric, plants.spec.lower_is_better) == ("mae", True)
    assert plants.spec.thresholds.gold == 0.2 and plants.spec.title == "Growth of plants"
    assert plants.spec.task_type == "regression"
    assert not (plants.public_dir / "answer.csv").exists()
    assert not (plants.public_dir / "evaluator.py").exists()
    assert "abs().mean()" in (plants.private_dir / "evaluator.py").read_text()
    assert load_task(plants.root).spec.generator["backend"] == "release"
    assert "match no registry metric" in results["median-error"].refused
    assert "ZeroDivisionError" in results["crashing"].refused
    # Imported once, kept on a second run.
    again = release.import_all(bundle, tmp_path / "ours", pool, LIMITS, ids=["plants"])
    assert again[0].earlier


def test_export_refuses_a_task_graded_by_its_own_code(tmp_path):
    write_task(tmp_path / "tasks" / "custom", task_id="custom", grader="private/grader.py:grade",
               extra_private={"grader.py": "def grade(s, a):\n    return 1.0\n"})
    (result,) = release.export_all(tmp_path / "tasks", tmp_path / "bundle")
    assert result.task is None and "graded by its own code" in result.refused
    assert json.loads((tmp_path / "bundle" / release.OK_LIST).read_text()) == []


def test_launchers_export_and_import_with_relative_paths(tmp_path):
    """As a user runs them: relative paths from another cwd, exit status and one line each."""
    _tasks(tmp_path / "tasks")
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    done = subprocess.run([sys.executable, "-m", "launch.export_release", "--tasks=tasks",
                           "--out=bundle"], cwd=tmp_path, capture_output=True, text=True,
                          env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("exported ") == 4
    done = subprocess.run([sys.executable, "-m", "launch.import_release", "--bundle=bundle",
                           "--out=back", "--ids=reg,auc"], cwd=tmp_path, capture_output=True,
                          text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "imported reg: rmse (lower is better)" in done.stdout
    assert "imported auc: roc_auc (higher is better)" in done.stdout
    done = subprocess.run([sys.executable, "-m", "launch.import_release", "--bundle=nowhere",
                           "--out=back"], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert done.returncode == 2 and "no such directory" in done.stdout + done.stderr
