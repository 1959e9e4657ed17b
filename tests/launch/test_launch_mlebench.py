"""Real competitions in: `launch.import_mlebench` on MLE-bench-layout competitions built from real
data (benchmarks/real_competitions.py), then `launch.evaluate` with the reference agent under
the tiny CPU recipe in both scaffolds (ours and MLE-Dojo's), both run as a user runs them
(subprocesses, relative paths, another working directory).

Every imported competition must end its reference episode with a valid submission that beats
the constant baseline (the training prior or mean, scored here with scikit-learn), including a
64-column table under the tiny recipe's 4,096-token context and class columns named apart from
their labels; every refused one must say why.
"""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from benchmarks.real_competitions import COMPETITIONS, write
from sklearn import metrics as sk

from sandmle_jax.tasks import mlebench

ROOT = pathlib.Path(__file__).resolve().parents[2]
IMPORTED = [c for c in COMPETITIONS if not c.refuse]
REFUSED = [c for c in COMPETITIONS if c.refuse]


def _run(module: str, *flags: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *flags], cwd=cwd, capture_output=True,
                          text=True, timeout=900)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Competitions written, imported and played once for the whole module."""
    root = tmp_path_factory.mktemp("mlebench")
    truth = {c.id: write(c, root / "registry", root / "data") for c in COMPETITIONS}
    imported = _run("launch.import_mlebench", "--competitions=registry", "--data_dir=data",
                    "--out=tasks", cwd=root)
    played = _run("launch.evaluate", f"--config={ROOT / 'configs' / 'tiny_cpu.py'}",
                  "--tasks=tasks", "--policy=reference", "--scaffold=sandmle,dojo",
                  "--out=eval", cwd=root)
    return root, truth, imported, played


def test_import_lines_name_metric_direction_and_refusals(workspace):
    root, _, imported, _ = workspace
    assert imported.returncode == 1, imported.stderr[-2000:]  # some were refused, none failed
    lines = {line.split(":")[0]: line for line in imported.stdout.splitlines()}
    for comp in IMPORTED:
        line = lines[f"imported {comp.id}"]
        direction = "lower" if comp.lower_is_better else "higher"
        assert line.startswith(f"imported {comp.id}: {comp.metric} ({direction} is better)")
        assert f"; {comp.modality} " in line, line
        task = json.loads((root / "tasks" / comp.id / "task.json").read_text())
        assert task["metric"] == comp.metric and task["grader"] is None
    for comp in REFUSED:
        assert comp.refuse in lines[f"refused {comp.id}"]
        assert not (root / "tasks" / comp.id).exists()
    assert "Traceback" not in imported.stderr


def test_rerun_keeps_what_was_imported(workspace):
    root, _, _, _ = workspace
    again = _run("launch.import_mlebench", "--competitions=registry", "--data_dir=data",
                 "--out=tasks", f"--ids={IMPORTED[0].id}", cwd=root)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.startswith(f"kept (imported earlier) {IMPORTED[0].id}: ")


def _constant_score(comp, train: pd.DataFrame, test: pd.DataFrame) -> float:
    """The score of predicting the training prior or mean for every test row (scikit-learn)."""
    target = comp.targets[0]
    y, n = test[target], len(test)
    if comp.form == "value":
        truth = test[list(comp.targets)].to_numpy(float)
        guess = np.tile(train[list(comp.targets)].to_numpy(float).mean(axis=0), (n, 1))
        return {"rmse": lambda: sk.root_mean_squared_error(truth, guess),
                "mae": lambda: sk.mean_absolute_error(truth, guess),
                "rmsle": lambda: sk.root_mean_squared_log_error(truth, guess),
                "mean_columnwise_rmsle": lambda: np.mean([
                    sk.root_mean_squared_log_error(truth[:, j], guess[:, j])
                    for j in range(truth.shape[1])]),
                "pearson": lambda: 0.0}[comp.metric]()  # a constant carries no correlation
    if comp.metric in ("roc_auc", "mean_columnwise_roc_auc"):
        return 0.5
    if comp.metric == "log_loss":
        return sk.log_loss(y, np.full(n, train[target].mean()), labels=[0, 1])
    if comp.form in ("classes", "classes_by_label"):
        prior = train[target].astype(str).value_counts(normalize=True)
        classes = sorted(prior.index)
        return sk.log_loss(y.astype(str), np.tile(prior[classes].to_numpy(), (n, 1)),
                           labels=classes)
    majority = train[target].mode()[0]
    if comp.form == "ranked":
        top = train[target].value_counts().index[:5].tolist()
        return float(np.mean([1 / (top.index(v) + 1) if v in top else 0.0 for v in y]))
    guess = np.full(n, str(majority))
    truth = y.astype(str).to_numpy()
    return {"accuracy": lambda: sk.accuracy_score(truth, guess),
            "f1_macro": lambda: sk.f1_score(truth, guess, average="macro"),
            "f1_micro": lambda: sk.f1_score(truth, guess, average="micro"),
            "f1": lambda: sk.f1_score(truth.astype(int), guess.astype(int)),
            "mcc": lambda: sk.matthews_corrcoef(truth.astype(int), guess.astype(int)),
            "quadratic_weighted_kappa": lambda: sk.cohen_kappa_score(
                truth.astype(int), guess.astype(int), weights="quadratic")}[comp.metric]()


def test_reference_agent_beats_the_constant_baseline_on_every_imported_competition(workspace):
    root, truth, _, played = workspace
    assert played.returncode == 0, played.stderr[-3000:]
    episodes = {e["task_id"]: e for e in
                json.loads((root / "eval" / "report.json").read_text())["episodes"]
                if e["scaffold"] == "sandmle"}
    assert sorted(episodes) == sorted(c.id for c in IMPORTED)
    losing = {}
    for comp in IMPORTED:
        episode = episodes[comp.id]
        assert episode["valid_submission"], (comp.id, episode["termination"], episode["error"])
        constant = _constant_score(comp, truth[comp.id]["train"], truth[comp.id]["test"])
        better = (episode["score"] < constant if comp.lower_is_better
                  else episode["score"] > constant)
        if not better:
            losing[comp.id] = (episode["score"], constant)
    assert not losing, f"not better than the constant baseline (score, constant): {losing}"


def test_the_dojo_scaffold_scores_each_competition_as_ours_does(workspace):
    """Competitions others wrote, with leaderboards: the same reference program through MLE-Dojo's
    actions gets the same score and HumanRank; the report holds both scaffolds side by side."""
    root, _, _, played = workspace
    assert played.returncode == 0, played.stderr[-3000:]
    report = json.loads((root / "eval" / "report.json").read_text())
    assert sorted(report["scaffolds"]) == ["dojo", "sandmle"]
    assert report["summary"]["scaffold"] == "sandmle"
    by = {(e["scaffold"], e["task_id"]): e for e in report["episodes"]}
    for comp in IMPORTED:
        ours, dojo = by["sandmle", comp.id], by["dojo", comp.id]
        assert dojo["valid_submission"] and dojo["termination"] == "answer", dojo
        assert dojo["score"] == ours["score"] and dojo["humanrank"] == ours["humanrank"]
    assert report["scaffolds"]["dojo"]["overall"]["humanrank"]["mean"] > 0
    assert "side by side" in played.stdout and "humanrank" in played.stdout
    assert (root / "eval" / "plots" / "rates.png").is_file()


@pytest.mark.parametrize("name, n_targets, metric", [
    ("auc-roc", 1, "roc_auc"), ("AUC", 1, "roc_auc"), ("auc-roc", 9, "mean_columnwise_roc_auc"),
    ("column-wise ROC AUC", 6, "mean_columnwise_roc_auc"),
    ("mean-column-wise-roc-auc", 4, "mean_columnwise_roc_auc"),
    ("auroc-multi-label", 2, "mean_columnwise_roc_auc"),
    ("log-loss", 1, "log_loss"), ("logloss", 1, "log_loss"),
    ("multi-class-log-loss", 3, "multiclass_log_loss"), ("multi-class-log-loss", 1, None),
    ("root-mean-squared-error", 1, "rmse"), ("root_mean_squared_error", 1, "rmse"),
    ("RMSE", 2, "mean_columnwise_rmse"), ("rmsle", 1, "rmsle"),
    ("mean-column-wise-rmsle", 2, "mean_columnwise_rmsle"), ("mean-absolute-error", 1, "mae"),
    ("mean-absolute-error", 2, None), ("accuracy", 1, "accuracy"),
    ("multi-class-classification-accuracy", 1, "accuracy"),
    ("quadratic-weighted-kappa", 1, "quadratic_weighted_kappa"),
    ("MAP@12", 1, "map@12"), ("MAP@5", 1, "map@5"), ("map-at-5", 1, "map@5"),
    ("macro-f1-score", 1, "f1_macro"), ("micro-f1-score", 1, "f1_micro"),
    ("matthews-correlation-coefficient", 1, "mcc"),
    ("pearson-correlation-coefficient", 1, "pearson"),
    ("dice-coefficient", 1, None), ("levenshtein-distance", 1, None),
    ("weighted-auroc", 1, None), ("KL-divergence", 6, None),
])
def test_grader_names_map_to_metrics(name, n_targets, metric):
    assert mlebench.metric_for(name, n_targets) == metric
