"""The MLOps cross-check: a task's evaluator.py must agree with the metric registry.

It runs (in the sandbox) on the valid reference submissions (sample, gold, constant, shuffled)
and on malformed ones (a column missing, a row dropped, unknown ids, an empty cell, an id twice,
bytes that are no table). Each disagreement is one line a model can act on: a score off by
more than `evaluators.TOLERANCE` (relative above 1), a crash on a valid submission, a score
for a malformed one, a wrong direction or wrong thresholds. A malformed probe the registry
itself accepts (an empty ranked list is a valid guess) is not asked about.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from sandmle_jax.synth.candidate import score_file, score_frame
from sandmle_jax.synth.roles import Workshop
from sandmle_jax.tasks import evaluators
from sandmle_jax.tasks.task import LEVELS, Task, Thresholds

def malformed_submissions(sample: pd.DataFrame, id_column: str,
                          target_columns: tuple[str, ...]) -> dict[str, bytes]:
    """Submissions no grader may score, derived from the sample."""
    def csv(frame: pd.DataFrame) -> bytes:
        return frame.to_csv(index=False).encode()

    unknown = sample.copy()
    unknown[id_column] = [f"unknown_{i}" for i in range(len(sample))]
    empty = sample.astype(str)
    empty.loc[empty.index[0], target_columns[0]] = ""
    return {"missing_column": csv(sample.drop(columns=[target_columns[-1]])),
            "dropped_row": csv(sample.iloc[1:]),
            "unknown_ids": csv(unknown),
            "empty_cell": csv(empty),
            "duplicated_id": csv(pd.concat([sample, sample.iloc[:1]])),
            "not_a_table": b"\x00\x01\x02 not a table\n"}


def disagreements(source: str, draft: Task, thresholds: Thresholds,
                  valid: Mapping[str, pd.DataFrame], workshop: Workshop) -> list[str]:
    """Where `source` and the registry part ways on `draft`'s answers; empty when they agree."""
    scratch = workshop.scratch / draft.id / "evaluator-check"
    expected: dict[str, float] = {}
    probes: dict[str, bytes] = {}
    for name, frame in valid.items():
        score, _ = score_frame(draft, frame, scratch / f"{name}.csv")
        if score is not None:
            expected[name] = score
            probes[name] = frame.to_csv(index=False).encode()
    refused: dict[str, str] = {}
    bad = malformed_submissions(draft.sample_submission, draft.spec.id_column,
                                draft.spec.target_columns)
    for name, data in bad.items():
        path = scratch / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        score, why = score_file(draft, path)
        if score is None:
            refused[name] = why or "refused"
            probes[name] = data
    verdicts = evaluators.run_probes(source, draft.answers, probes, workshop.pool,
                                     workshop.limits)
    metric = draft.spec.metric
    problems = []
    for name, score in expected.items():
        got = verdicts[name]
        if got.score is None:
            problems.append(f"the {name} submission is valid ({metric} {score:.9g}) but the "
                            f"evaluator gave no score: {got.error}")
        elif not evaluators.agrees(got.score, score):
            problems.append(f"on the {name} submission the evaluator says {got.score:.9g}, "
                            f"{metric} is {score:.9g}")
    for name, why in refused.items():
        if verdicts[name].score is not None:
            problems.append(f"the {name} submission is malformed ({why[:200]}) but the "
                            f"evaluator scored it {verdicts[name].score:.9g}")
    printed = [v for v in verdicts.values() if v.score is not None]
    lower = draft.spec.lower_is_better
    if any(v.is_lower_better is not lower for v in printed):
        problems.append(f"is_lower_better must be {str(lower).lower()} ({metric})")
    want = thresholds.to_dict()
    if any(v.thresholds is None or not all(
            evaluators.agrees(v.thresholds.to_dict()[level], want[level]) for level in LEVELS)
           for v in printed):
        problems.append(f"the thresholds printed must be {want}")
    return problems
