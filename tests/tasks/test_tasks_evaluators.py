"""Our release-contract evaluator.py against the metric registry, and running any evaluator.

The in-process comparisons exec the generated script (numpy/pandas/scikit-learn, no import of
our package) on real task files; the contract tests run evaluators in the real sandbox.
"""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import write_task

from sandbox_runner import Limits, Pool, Sandbox
from sandmle_jax.synth.evaluator_check import malformed_submissions
from sandmle_jax.tasks import evaluators, grading, metrics as metrics_lib
from sandmle_jax.tasks.task import Thresholds

N = 40
LIMITS = Limits(wall_s=60, memory_bytes=2 << 30, cpus=1)


def _columns(rng, metric_name):
    """(answers columns, three prediction column-sets) for a metric's kind."""
    metric = metrics_lib.get_metric(metric_name)
    kind = metrics_lib.Kind
    if metric.kind == kind.LABEL:
        y = np.array([0, 1] * (N // 2))
        rng.shuffle(y)
        return {"target": y}, [{"target": rng.integers(0, 2, N)} for _ in range(3)]
    if metric.kind == kind.ORDINAL:
        # grades with gaps: Kaggle's scale runs over every grade between the extremes
        return ({"target": rng.choice([0, 1, 3], N)},
                [{"target": rng.choice([0, 1, 3, 6], N)} for _ in range(3)])
    if metric.kind == kind.PROBABILITY:
        y = np.array([0, 1] * (N // 2))
        preds = [{"target": rng.uniform(size=N)} for _ in range(2)]
        preds.append({"target": rng.choice([0.0, 1.0, 0.5], N)})  # clipping matters here
        return {"target": y}, preds
    if metric.kind in (kind.CLASS_PROBABILITIES, kind.MULTILABEL_PROBABILITIES):
        names = ["a", "b", "c"]
        if metric.kind == kind.CLASS_PROBABILITIES:
            truth = np.eye(3, dtype=int)[np.arange(N) % 3]
            preds = [rng.dirichlet(np.ones(3), N), rng.uniform(0, 3, (N, 3)),
                     np.eye(3)[rng.integers(0, 3, N)]]
        else:
            truth = (rng.uniform(size=(N, 3)) < 0.5).astype(int)
            truth[:2] = [[0, 0, 0], [1, 1, 1]]
            preds = [rng.uniform(size=(N, 3)) for _ in range(3)]
        return ({n: truth[:, j] for j, n in enumerate(names)},
                [{n: p[:, j] for j, n in enumerate(names)} for p in preds])
    if metric.kind == kind.RANKED_LIST:
        items = np.array(list("abcdef"))
        return ({"target": [" ".join(rng.choice(items, rng.integers(1, 4), replace=False))
                            for _ in range(N)]},
                [{"target": [" ".join(rng.permutation(items)[:rng.integers(0, 5)])
                             for _ in range(N)]} for _ in range(3)])
    if metric.kind == kind.ITEM_SCORES:
        names = [f"item{j}" for j in range(5)]
        truth = rng.integers(0, 4, (N, 5))
        preds = [rng.normal(size=(N, 5)), rng.integers(0, 3, (N, 5)).astype(float),
                 rng.normal(size=(N, 5))]
        return ({n: truth[:, j] for j, n in enumerate(names)},
                [{n: p[:, j] for j, n in enumerate(names)} for p in preds])
    columns = ["t1", "t2"] if metric.multi_column else ["target"]
    truth = rng.uniform(1, 10, (N, len(columns)))
    preds = [rng.uniform(0, 12, (N, len(columns))), truth + rng.normal(size=truth.shape) ** 2,
             np.full_like(truth, 4.0)]  # a constant guess: correlations define it as 0
    return ({c: truth[:, j] for j, c in enumerate(columns)},
            [{c: p[:, j] for j, c in enumerate(columns)} for p in preds])


def _metric_names():
    names = [n for n in metrics_lib.metric_names() if not n.endswith("@k")]
    return names + ["map@3", "ndcg@4"]


def _load_script(source):
    namespace = {"__name__": "evaluator"}
    exec(compile(source, "evaluator.py", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("metric_name", _metric_names())
def test_generated_evaluator_scores_as_the_registry(tmp_path, metric_name):
    metric = metrics_lib.get_metric(metric_name)
    rng = np.random.default_rng(len(metric_name))
    truth, predictions = _columns(rng, metric_name)
    ids = np.arange(500, 500 + N)
    answers = pd.DataFrame({"id": ids, **truth})
    task = write_task(tmp_path / "task", metric=metric_name, answers=answers,
                      targets=tuple(truth), lower_is_better=metric.lower_is_better,
                      thresholds={"median": 0.4, "bronze": 0.3, "silver": 0.2, "gold": 0.1}
                      if metric.lower_is_better else None)
    script = _load_script(evaluators.evaluator_source(task.spec))
    for i, columns in enumerate(predictions):
        order = rng.permutation(N)  # rows in another order than the answers
        path = tmp_path / f"submission{i}.csv"
        pd.DataFrame({"id": ids, **columns}).iloc[order].to_csv(path, index=False)
        expected = grading.grade(task, path)
        assert expected.score is not None, expected.error
        got = script["evaluate"](script["TASK"], task.private_dir / "answers.csv", path)
        assert got == pytest.approx(expected.score, rel=1e-9, abs=1e-12), (metric_name, i)


def test_generated_evaluator_refuses_what_the_registry_refuses(tmp_path):
    task = write_task(tmp_path / "task", metric="roc_auc")
    script = _load_script(evaluators.evaluator_source(task.spec))
    bad = malformed_submissions(task.sample_submission, "id", ("target",))
    for name, data in bad.items():
        path = tmp_path / f"{name}.csv"
        path.write_bytes(data)
        assert grading.grade(task, path).score is None, name
        with pytest.raises(script["Invalid"]):
            script["evaluate"](script["TASK"], task.private_dir / "answers.csv", path)


def test_evaluator_source_refuses_a_custom_grader(tmp_path):
    task = write_task(tmp_path / "task", grader="private/grader.py:grade",
                      extra_private={"grader.py": "def grade(s, a):\n    return 1.0\n"})
    with pytest.raises(evaluators.EvaluatorError, match="its own code"):
        evaluators.evaluator_source(task.spec)


@pytest.mark.parametrize("exit_code, stdout, stderr, score, error", [
    (0, '{"score": 0.5, "is_lower_better": false, "gold_threshold": 1, "silver_threshold": 0.9,'
        ' "bronze_threshold": 0.8, "median_threshold": 0.7}', "", 0.5, None),
    (0, 'loading...\n{"score": 2}', "", 2.0, None),  # logs before the JSON line
    (1, "", "Traceback...\nValueError: bad ids\n", None, "exit 1: ValueError: bad ids"),
    (0, '{"score": null}', "", None, "score is null"),
    (0, "0.5", "", None, "not a JSON object"),
    (0, "nothing", "", None, "printed no JSON"),
    (0, '{"score": "NaN"}', "", None, "score is nan"),
])
def test_parse_output(exit_code, stdout, stderr, score, error):
    verdict = evaluators.parse_output(exit_code, stdout, stderr)
    assert verdict.score == score
    assert (verdict.error is None) if error is None else (error in verdict.error)


def test_parse_output_reads_direction_and_thresholds():
    verdict = evaluators.parse_output(0, json.dumps({
        "score": 1.5, "is_lower_better": True, "gold_threshold": 1.0, "silver_threshold": 2.0,
        "bronze_threshold": 3.0, "median_threshold": 4.0}), "")
    assert verdict.is_lower_better is True
    assert verdict.thresholds == Thresholds(median=4.0, bronze=3.0, silver=2.0, gold=1.0)


@pytest.fixture(scope="module")
def pool():
    with Pool(Sandbox(backend="auto"), workers=1) as p:
        yield p


def test_run_probes_in_the_sandbox_follows_the_contract(tmp_path, pool):
    task = write_task(tmp_path / "task", metric="roc_auc")
    good = task.answers.assign(target=task.answers["target"].astype(float))
    probes = {"gold": good.to_csv(index=False).encode(),
              **malformed_submissions(task.sample_submission, "id", ("target",))}
    verdicts = evaluators.run_probes(evaluators.evaluator_source(task.spec), task.answers,
                                     probes, pool, LIMITS)
    assert verdicts["gold"].score == 1.0
    assert verdicts["gold"].is_lower_better is False
    assert verdicts["gold"].thresholds == task.spec.thresholds
    for name in probes:
        if name != "gold":
            assert verdicts[name].score is None and verdicts[name].error.startswith("exit 1"), name


def test_run_probes_reports_an_evaluator_that_kills_its_process(tmp_path, pool):
    task = write_task(tmp_path / "task")
    source = "import os\nos._exit(3)\n"
    verdicts = evaluators.run_probes(source, task.answers, {"a": b"id,target\n", "b": b""},
                                     pool, LIMITS)
    assert set(verdicts) == {"a", "b"}
    assert all("ended with 3" in v.error for v in verdicts.values())


def test_the_generated_evaluator_runs_as_a_script(tmp_path):
    """The release runs `python evaluator.py --submission_path X` from the evaluator's folder."""
    task = write_task(tmp_path / "task", metric="accuracy")
    folder = tmp_path / "release"
    folder.mkdir()
    (folder / evaluators.EVALUATOR).write_text(evaluators.evaluator_source(task.spec))
    task.answers.to_csv(folder / evaluators.ANSWER_FILE, index=False)
    sample = task.public_dir / "sample_submission.csv"
    done = subprocess.run([sys.executable, "evaluator.py", "--submission_path", str(sample)],
                          cwd=folder, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["score"] == pytest.approx(grading.grade(task, sample).score)
    assert set(out) == {"score", "is_lower_better", "gold_threshold", "silver_threshold",
                        "bronze_threshold", "median_threshold"}
    assert pathlib.Path(folder / evaluators.EVALUATOR).read_text().count("TASK = {") == 1
