"""The task prompt's grading line: the metric, its direction and, for a registered metric, what
one prediction is, in the word the reference programs name that kind by."""

import re

import pytest

from sandmle_jax.agent import prompts, strategies
from sandmle_jax.tasks import metrics


def _registered():
    return [name.replace("@k", "@5") for name in metrics.metric_names()]


@pytest.mark.parametrize("name", _registered())
def test_a_registered_metric_says_what_one_prediction_is(name):
    kind = metrics.get_metric(name).kind
    line = prompts.grading_line(name, lower_is_better=True)
    assert line.startswith(f"Graded by {name} on the hidden test labels (lower is better)")
    clause = re.fullmatch(r".*, one prediction per test row: (an? [^.]+)\.", line)
    assert clause, line
    if kind.value in strategies.SHARED_KINDS:  # the word a shared program's KIND line holds
        assert kind.value in clause[1].split(), (kind, line)


def test_the_three_tabular_families_read_as_three_different_words():
    words = {name: prompts.grading_line(name, False).rsplit(": ", 1)[1]
             for name in ("roc_auc", "log_loss", "accuracy", "mcc", "rmse", "mae", "r2")}
    assert words == {"roc_auc": "a probability.", "log_loss": "a probability.",
                     "accuracy": "a label.", "mcc": "a label.", "rmse": "a value.",
                     "mae": "a value.", "r2": "a value."}


def test_a_task_graded_by_its_own_grader_gets_no_prediction_clause():
    line = prompts.grading_line("spacenet_iou_grader", lower_is_better=False)
    assert line == "Graded by spacenet_iou_grader on the hidden test labels (higher is better)."


def test_the_grading_line_survives_a_cut_description(tmp_path):
    (tmp_path / "train.csv").write_text("id,y\n1,0.5\n")
    grading = prompts.grading_line("rmse", True)
    text = prompts.task_prompt("x" * 50_000, tmp_path, max_chars=2_000, grading=grading)
    assert len(text) <= 2_000 and "[... cut ...]" in text
    assert text.splitlines()[-2] == grading
