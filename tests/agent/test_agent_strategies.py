"""Every tier's program runs and writes a valid submission for every submission kind, and the
learned tiers beat the constant one on learnable data."""

import dataclasses
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from sandmle_jax.agent import prompts, strategies
from sandmle_jax.tasks import grading, metrics
from sandmle_jax.tasks import task as task_lib

N_TRAIN, N_TEST = 150, 80


def _frame(seed):
    rng = np.random.default_rng(seed)
    n = N_TRAIN + N_TEST
    x = rng.normal(size=(n, 3))
    frame = pd.DataFrame({"id": np.arange(n), "a": x[:, 0], "b": x[:, 1], "c": x[:, 2],
                          "city": rng.choice(["oslo", "rome", "lima"], size=n),
                          "note": [" ".join(rng.choice(["alpha", "beta", "gamma", "delta"], 8))
                                   for _ in range(n)]})
    frame.loc[rng.random(n) < 0.05, "b"] = np.nan  # missing values
    return frame, x


def _task(root, metric, targets, answers_fn):
    frame, x = _frame(1)
    train_targets, answers = answers_fn(frame, x)
    train = frame.iloc[:N_TRAIN].join(train_targets.iloc[:N_TRAIN])
    test = frame.iloc[N_TRAIN:]
    answers = answers.iloc[N_TRAIN:].reset_index(drop=True)
    sample = answers.copy()
    for t in targets:
        sample[t] = 0.5 if pd.api.types.is_float_dtype(answers[t]) else answers[t].iloc[0]
    lower = metrics.get_metric(metric).lower_is_better
    levels = (9.0, 8.0, 7.0, 6.0) if lower else (0.1, 0.2, 0.3, 0.4)
    spec = task_lib.TaskSpec(
        id=f"k-{metric}", title="t", modality="tabular", task_type="x", metric=metric,
        lower_is_better=lower, id_column="id", target_columns=tuple(targets),
        thresholds=task_lib.Thresholds(*levels))
    return task_lib.save_task(root, spec, public={
        "description.md": "d", "train.csv": train, "test.csv": test,
        "sample_submission.csv": sample}, private={"answers.csv": answers})


def _binary(frame, x):
    y = pd.Series((x[:, 0] + x[:, 2] > 0).astype(int), name="label")
    return y.to_frame(), pd.DataFrame({"id": frame["id"], "label": y})


def _multiclass(frame, x):
    y = pd.Series(np.where(x[:, 0] > 0.5, "hi", np.where(x[:, 0] < -0.5, "lo", "mid")),
                  name="band")
    onehot = pd.get_dummies(y).astype(int)
    return y.to_frame(), pd.concat([frame[["id"]], onehot], axis=1)


def _labels(frame, x):
    y = pd.Series((x[:, 1] > 0).astype(int) + (x[:, 2] > 0).astype(int), name="grade")
    return y.to_frame(), pd.DataFrame({"id": frame["id"], "grade": y})


def _regression(frame, x):
    y = pd.Series(np.exp(1 + 0.5 * x[:, 0]) + (frame["city"] == "rome") * 2, name="price")
    return y.to_frame(), pd.DataFrame({"id": frame["id"], "price": y})


def _multilabel(frame, x):
    ys = pd.DataFrame({"p": (x[:, 0] > 0).astype(int), "q": (x[:, 2] < 0).astype(int)})
    return ys, pd.concat([frame[["id"]], ys], axis=1)


KINDS = {
    "roc_auc": (["label"], _binary),
    "multiclass_log_loss": (["hi", "lo", "mid"], _multiclass),
    "accuracy": (["grade"], _labels),
    "quadratic_weighted_kappa": (["grade"], _labels),
    "rmsle": (["price"], _regression),
    "mean_columnwise_roc_auc": (["p", "q"], _multilabel),
}


def _score(task, tier, tmp_path):
    workdir = tmp_path / tier
    workdir.mkdir()
    (workdir / prompts.DATA_DIR).symlink_to(task.public_dir)  # as tools.new_episode does
    (workdir / "s.py").write_text(strategies.solution_code(task, tier))
    done = subprocess.run([sys.executable, "s.py"], cwd=workdir, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = grading.grade(task, workdir / "submission.csv")
    assert report.valid_submission, report.error
    return report.score


def _better(task, a, b):
    return a < b if task.spec.lower_is_better else a > b


@pytest.mark.parametrize("metric", sorted(KINDS))
def test_linear_and_lightgbm_beat_constant(tmp_path, metric):
    """The lightgbm tier's lines go into its own program only."""
    targets, make = KINDS[metric]
    task = _task(tmp_path / "task", metric, targets, make)
    constant = _score(task, "constant", tmp_path)
    for tier in ("linear", "lightgbm"):
        score = _score(task, tier, tmp_path)
        assert _better(task, score, constant), (tier, constant, score)
    assert "from lightgbm import" in strategies.solution_code(task, "lightgbm")
    assert not any("lightgbm" in strategies.solution_code(task, tier)
                   for tier in strategies.TIERS + (strategies.TUNED,))


@pytest.mark.slow
@pytest.mark.parametrize("metric", sorted(KINDS))
def test_tree_tiers_beat_constant(tmp_path, metric):
    targets, make = KINDS[metric]
    task = _task(tmp_path / "task", metric, targets, make)
    constant = _score(task, "constant", tmp_path)
    for tier in ("forest", "boosting"):
        assert _better(task, _score(task, tier, tmp_path), constant), tier


def test_unknown_tier():
    with pytest.raises(ValueError, match="unknown tier"):
        strategies.solution_code(None, "magic")



def _renamed_copy(root, task):
    """The same data under other column names, id column and target."""
    names = {"id": "row_key", "label": "is_positive", "a": "alpha"}

    def read(path):
        return pd.read_csv(path).rename(columns=names)

    spec = dataclasses.replace(task.spec, id="renamed", id_column="row_key",
                               target_columns=("is_positive",))
    public = {name: read(task.public_dir / name)
              for name in ("train.csv", "test.csv", "sample_submission.csv")}
    return task_lib.save_task(root, spec, public={"description.md": "other words", **public},
                              private={"answers.csv": read(task.private_dir / "answers.csv")})


def test_one_program_per_kind_and_tier_and_the_tier_in_one_place(tmp_path):
    """Two tasks of one kind with different columns, ids and targets get the same program (it
    reads everything task-specific at run time), and tiers differ only in the `TIER =` line."""
    binary = _task(tmp_path / "a", "roc_auc", ["label"], _binary)
    renamed = _renamed_copy(tmp_path / "c", binary)
    other_kind = _task(tmp_path / "b", "accuracy", ["grade"], _labels)
    for tier in strategies.TIERS:
        assert strategies.solution_code(binary, tier) == strategies.solution_code(renamed, tier)
    assert (strategies.solution_code(binary, "linear")
            != strategies.solution_code(other_kind, "linear"))
    lines = [strategies.solution_code(binary, tier).splitlines() for tier in strategies.TIERS]
    assert len({len(program) for program in lines}) == 1
    differing = [i for i, row in enumerate(zip(*lines)) if len(set(row)) > 1]
    assert [[program[i] for i in differing] for program in lines] == [
        [f'TIER = "{tier}"'] for tier in strategies.TIERS]


def _real_world_quirks(frame, x):
    """A table like Kaggle's: a boolean feature, a column train.csv has besides the label (an
    outcome known only afterwards), and training rows without a label."""
    frame["member"] = x[:, 1] > 0  # read back by pandas as a bool column
    y = pd.Series((x[:, 0] + x[:, 1] > 0).astype(float), name="label")
    train_only = pd.DataFrame({"refund": np.abs(x[:, 2]), "label": y})
    train_only.loc[::17, "label"] = np.nan
    answers = pd.DataFrame({"id": frame["id"], "label": y.fillna(0).astype(int)})
    return train_only, answers


def test_real_world_quirks_get_their_lines_and_only_they(tmp_path):
    quirky = _task(tmp_path / "quirky", "roc_auc", ["label"], _real_world_quirks)
    plain = _task(tmp_path / "plain", "roc_auc", ["label"], _binary)
    code = strategies.solution_code(quirky, "linear")
    extra = (strategies._LABELS_BY_NAME, strategies._DROP_UNLABELLED, strategies._BOOLS)
    assert all(part in code for part in extra)
    assert not any(part in strategies.solution_code(plain, "linear") for part in extra)
    assert _better(quirky, _score(quirky, "linear", tmp_path), 0.5)  # AUC of a constant: 0.5


@pytest.mark.parametrize("metric", ["multiclass_log_loss", "rmsle"])
def test_ladder_only_tiers_run_from_an_absolute_data_dir_and_beat_constant(tmp_path, metric):
    """knn and tree (the fidelity ladder's weak learners) read the task's public/ by its path,
    as the sandboxed ladder runs them; the agent's programs never carry their model lines."""
    targets, make = KINDS[metric]
    task = _task(tmp_path / "task", metric, targets, make)
    constant = _score(task, "constant", tmp_path)
    for tier in ("knn", "tree"):
        code = strategies.solution_code(task, tier, data_dir=str(task.public_dir))
        assert f'D = "{task.public_dir}"' in code
        workdir = tmp_path / f"abs-{tier}"
        workdir.mkdir()
        (workdir / "s.py").write_text(code)
        subprocess.run([sys.executable, "s.py"], cwd=workdir, check=True, timeout=300)
        score = grading.grade(task, workdir / "submission.csv").score
        assert _better(task, score, constant), (tier, score, constant)
    for tier in strategies.TIERS + (strategies.TUNED,):
        code = strategies.solution_code(task, tier)
        assert "KNeighbors" not in code and "DecisionTree" not in code


SHARED = {"roc_auc": (["label"], _binary), "accuracy": (["grade"], _labels),
          "rmse": (["price"], _regression)}


def test_shared_programs_differ_only_in_kind_and_tier_and_run_for_each_kind(tmp_path):
    """One text for a binary, a label and a value task: the first line names the kind, the
    `TIER =` line the model; each program writes a valid submission that beats the constant."""
    tasks = {metric: _task(tmp_path / metric, metric, *SHARED[metric]) for metric in SHARED}
    programs = {(metric, tier): strategies.solution_code(task, tier, shared=True).splitlines()
                for metric, task in tasks.items() for tier in ("constant", "linear")}
    assert len({len(lines) for lines in programs.values()}) == 1
    differing = {i for i, row in enumerate(zip(*programs.values())) if len(set(row)) > 1}
    kind_line = programs["rmse", "linear"].index('TIER = "linear"')
    assert differing == {0, kind_line}
    assert [programs[m, "linear"][0] for m in SHARED] == [
        'KIND = "probability"', 'KIND = "label"', 'KIND = "value"']
    for metric, task in tasks.items():
        (tmp_path / metric / "run").mkdir()
        code = strategies.solution_code(task, "linear", shared=True)
        assert code != strategies.solution_code(task, "linear")  # per-kind text by default
        scores = {}
        for tier in ("constant", "linear"):
            workdir = tmp_path / metric / "run" / tier
            workdir.mkdir()
            (workdir / prompts.DATA_DIR).symlink_to(task.public_dir)
            (workdir / "s.py").write_text(strategies.solution_code(task, tier, shared=True))
            done = subprocess.run([sys.executable, "s.py"], cwd=workdir, capture_output=True,
                                  text=True, timeout=300)
            assert done.returncode == 0, done.stderr[-2000:]
            report = grading.grade(task, workdir / "submission.csv")
            assert report.valid_submission, report.error
            scores[tier] = report.score
        assert _better(task, scores["linear"], scores["constant"]), (metric, scores)


def test_shared_programs_keep_their_own_text_for_other_kinds(tmp_path):
    """A kind outside SHARED_KINDS gets its per-kind program; a library tier has none shared."""
    task = _task(tmp_path / "m", "multiclass_log_loss", *KINDS["multiclass_log_loss"])
    assert (strategies.solution_code(task, "linear", shared=True)
            == strategies.solution_code(task, "linear"))
    binary = _task(tmp_path / "b", "roc_auc", *SHARED["roc_auc"])
    with pytest.raises(ValueError, match="no shared program"):
        strategies.solution_code(binary, "lightgbm", shared=True)
