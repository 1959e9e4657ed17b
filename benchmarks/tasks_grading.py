"""Grading time by submission size, against a bare read_csv + roc_auc_score baseline.

    python benchmarks/tasks_grading.py [--rows 1000,10000,100000]

The baseline does no validation at all, so the ratio is the price of our checks (file type and
size, strict CSV, columns, ids, numeric and range checks, alignment by id).
"""

import argparse
import pathlib
import tempfile

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from sandmle_jax.tasks import grading, task as task_lib
from timing import best_time
import run_facts


def _build(root: pathlib.Path, rows: int, rng: np.random.Generator):
    ids = np.arange(rows)
    answers = pd.DataFrame({"id": ids, "target": rng.integers(0, 2, rows)})
    spec = task_lib.TaskSpec(
        id=f"bench-{rows}", title="bench", modality="tabular", task_type="classification",
        metric="roc_auc", lower_is_better=False, id_column="id", target_columns=("target",),
        thresholds=task_lib.Thresholds(median=0.6, bronze=0.7, silver=0.8, gold=0.9))
    sample = answers.assign(target=0.5)
    task = task_lib.save_task(root / "task", spec, public={
        "description.md": "bench", "sample_submission.csv": sample}, private={"answers.csv": answers})
    submission = root / "submission.csv"
    answers.assign(target=rng.random(rows)).sample(frac=1, random_state=0).to_csv(
        submission, index=False)
    return task, submission


def _bare(task, submission):
    sub = pd.read_csv(submission).set_index("id").loc[task.answers["id"].astype(int)]
    return roc_auc_score(task.answers["target"].astype(int), sub["target"])


def main():
    print(run_facts.header())
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", default="1000,10000,100000")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'rows':>8} {'grade_s':>9} {'bare_s':>9} {'ratio':>6}")
    for rows in (int(r) for r in args.rows.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            task, submission = _build(pathlib.Path(tmp), rows, rng)
            report = grading.grade(task, submission)
            assert report.valid_submission, report.error
            assert abs(report.score - _bare(task, submission)) < 1e-9
            ours = best_time(lambda: grading.grade(task, submission), args.repeats)
            bare = best_time(lambda: _bare(task, submission), args.repeats)
            print(f"{rows:>8} {ours:>9.4f} {bare:>9.4f} {ours / bare:>6.2f}")


if __name__ == "__main__":
    main()
