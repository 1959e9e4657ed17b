"""A candidate task: what the four roles produced, before the gates decide its fate.

Also the draft: the candidate's data written as a task with placeholder thresholds, so that every
score (ladder rungs, MLOps checks, the leak scan) comes from `tasks.grading` on real files
before the real thresholds exist.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections.abc import Mapping
from typing import Any

import pandas as pd

from sandmle_jax.synth.dna import TaskDNA
from sandmle_jax.synth.ladder import RungResult
from sandmle_jax.synth.synthesis import TaskData
from sandmle_jax.tasks import evaluators, grading
from sandmle_jax.tasks.task import Task, TaskSpec, Thresholds, save_task

GENERATOR_VERSION = "1"
_DRAFT_DESCRIPTION = "Draft task: the description is written after the checks.\n"


@dataclasses.dataclass(frozen=True)
class Candidate:
    task_id: str
    dna: TaskDNA
    data: TaskData
    title: str
    thresholds: Thresholds | None  # None when the ladder did not yield four scores
    ladder: Mapping[str, RungResult]
    checks: Mapping[str, float | None]  # MLOps: sample, gold, constant, shuffled scores
    description: str
    replay_digest: str  # digest of the data synthesised a second time from the same DNA
    backend: str
    evaluator: str | None = None  # MLOps: evaluator.py (release contract), kept in private/
    evaluator_problems: tuple[str, ...] = ()  # its disagreements with the registry

    def spec(self, thresholds: Thresholds | None = None) -> TaskSpec:
        dna, data = self.dna, self.data
        return TaskSpec(
            id=self.task_id, title=self.title, modality=dna.modality, task_type=dna.task_type,
            metric=dna.metric, lower_is_better=dna.lower_is_better, id_column=data.id_column,
            target_columns=data.target_columns, thresholds=thresholds or self.thresholds,
            seed_id=dna.seed_id, dna=dna.to_dict(),
            generator={"backend": self.backend, "version": GENERATOR_VERSION, "seed": dna.seed},
            sizes={"train_rows": len(data.train), "test_rows": len(data.test),
                   "extra_files": len(data.files)})

    def baselines_json(self) -> str:
        """The measured ladder, checks and hidden rule. Wall times are left out: they differ
        from run to run, and a task's bytes must not (the determinism contract)."""
        return json.dumps({"ladder": {k: v.to_dict() | {"wall_s": None}
                                      for k, v in self.ladder.items()},
                           "checks": dict(self.checks),
                           "thresholds": self.thresholds.to_dict() if self.thresholds else None,
                           "rule": dict(self.data.rule)}, indent=2, sort_keys=True)

    def save(self, out_dir: pathlib.Path) -> Task:
        """Writes the final task (validated and checksummed by `save_task`)."""
        public = {**self.data.public_files(), "description.md": self.description}
        private = {**self.data.private_files(), "baselines.json": self.baselines_json()}
        if self.evaluator is not None:
            private[evaluators.EVALUATOR] = self.evaluator
        return save_task(out_dir, self.spec(), public=public, private=private)


def placeholder_thresholds(lower_is_better: bool) -> Thresholds:
    step = -1.0 if lower_is_better else 1.0
    return Thresholds(median=0.0, bronze=step, silver=2 * step, gold=3 * step)


def write_draft(task_id: str, dna: TaskDNA, data: TaskData, out_dir: pathlib.Path,
                backend: str) -> Task:
    """The data as a gradable task with placeholder thresholds (scores only, no medals)."""
    draft = Candidate(task_id=task_id, dna=dna, data=data, title="draft", thresholds=None,
                      ladder={}, checks={}, description="", replay_digest="", backend=backend)
    spec = draft.spec(placeholder_thresholds(dna.lower_is_better))
    public = {**data.public_files(), "description.md": _DRAFT_DESCRIPTION}
    return save_task(out_dir, spec, public=public, private=data.private_files())


def score_file(task: Task, path: pathlib.Path) -> tuple[float | None, str | None]:
    """Grades a submission file through `tasks.grading`; (score, why not)."""
    report = grading.grade(task, path)
    return report.score, report.error or report.grader_error


def score_frame(task: Task, frame: pd.DataFrame,
                path: pathlib.Path) -> tuple[float | None, str | None]:
    """Grades a submission DataFrame, written to `path`, through `tasks.grading`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return score_file(task, path)


def record(candidate: Candidate, gates: list[dict[str, Any]]) -> dict[str, Any]:
    """What the manifest and the yield report keep about one candidate."""
    dna = candidate.dna
    return {"task_id": candidate.task_id, "seed_id": dna.seed_id, "modality": dna.modality,
            "task_type": dna.task_type, "domain": dna.domain, "metric": dna.metric,
            "backend": candidate.backend, "gates": gates,
            "accepted": all(g["passed"] for g in gates),
            "ladder": {k: v.to_dict() for k, v in candidate.ladder.items()}}
