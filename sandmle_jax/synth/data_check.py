"""Does a Developer's data hold what its DNA asked for? Checked before the baselines run, so an
LLM-written data script that ignores the DNA goes back to its author with the reasons.

What is checked, each with room for sampling noise: row counts (exact), the input kind against
the modality, every class of the DNA present in train.csv, the share of empty input cells
against `missing_rate` (tabular inputs; within 0.05 plus three binomial standard deviations),
and label noise (every DNA asks for some): the answers must not be the noise-free rule's
predictions on every test row. The procedural Developer's data pass on every shipped seed
(tests/synth/test_synth_data_check.py).
"""

from __future__ import annotations

import math

from sandmle_jax.synth.dna import TaskDNA
from sandmle_jax.synth.synthesis import TaskData

LABEL_OUTPUTS = ("probability", "label", "class_probabilities", "ordinal")


def _missing_rate_problem(dna: TaskDNA, data: TaskData) -> str | None:
    cells = data.train[list(data.baseline.feature_columns)]
    if cells.size == 0:
        return None
    observed = float(cells.isna().to_numpy().mean())
    slack = 0.05 + 3 * math.sqrt(max(dna.missing_rate * (1 - dna.missing_rate), 1e-4)
                                 / cells.size)
    if abs(observed - dna.missing_rate) > slack:
        return (f"train.csv's inputs have {observed:.1%} empty cells; the DNA asks for "
                f"missing_rate {dna.missing_rate:.1%} (within {slack:.1%})")
    return None


def _classes_problem(dna: TaskDNA, data: TaskData) -> str | None:
    target = data.baseline.train_targets[0]
    if target not in data.train.columns:
        return f"train.csv has no target column {target!r}"
    seen = data.train[target].dropna().astype(str).nunique()
    wanted = 2 if data.baseline.output == "probability" else dna.n_classes
    if seen < wanted:
        return (f"train.csv's {target!r} holds {seen} classes; the DNA has {wanted} "
                f"(n_classes), each of which must appear")
    return None


def _noise_problem(data: TaskData) -> str | None:
    columns = list(data.target_columns)
    answers = data.answers.set_index(data.id_column)[columns].sort_index()
    gold = data.gold.set_index(data.id_column)[columns].sort_index()
    if answers.shape != gold.shape or not answers.index.equals(gold.index):
        return None  # the task's own checks name a mismatch of ids or columns
    if answers.astype(str).equals(gold.astype(str)):
        return ("answers.csv equals gold_submission.csv on every test row: the labels carry "
                "none of the DNA's noise; draw them from the rule plus noise")
    return None


def mismatches(dna: TaskDNA, data: TaskData) -> list[str]:
    """What in `data` departs from `dna`; empty when it holds."""
    problems = []
    for name, frame, wanted in (("train.csv", data.train, dna.n_train),
                                ("test.csv", data.test, dna.n_test)):
        if len(frame) != wanted:
            problems.append(f"{name} has {len(frame)} rows; the DNA asks for {wanted}")
    if data.baseline.feature_kind != dna.modality:
        problems.append(f"task_info.json says feature_kind {data.baseline.feature_kind!r}; the "
                        f"DNA's modality is {dna.modality!r}")
    if dna.modality == "tabular":
        problems.append(_missing_rate_problem(dna, data))
    if data.baseline.output in LABEL_OUTPUTS and dna.task_type != "regression":
        problems.append(_classes_problem(dna, data))
    problems.append(_noise_problem(data))
    return [p for p in problems if p]
