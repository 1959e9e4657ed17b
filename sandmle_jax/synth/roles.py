"""The four roles behind one interface.

Data Strategist (seed -> DNA), ML Developer (DNA -> data, draft task, baseline ladder in the
sandbox, thresholds), MLOps Engineer (metric and grading checks on sample, gold, constant and
shuffled submissions; the task's evaluator.py, cross-checked against the registry) and Technical
Writer (title and description). A backend is a `Roles`
bundle (`procedural`, `llm`: named in backends.py); `build_candidate` runs the four in order.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping
from typing import Protocol

from sandbox_runner import Limits, Pool
from sandmle_jax.synth.candidate import Candidate
from sandmle_jax.synth.dna import TaskDNA
from sandmle_jax.synth.ladder import RungResult
from sandmle_jax.synth.seeds import Seed
from sandmle_jax.synth.synthesis import TaskData
from sandmle_jax.tasks.task import Task, Thresholds


@dataclasses.dataclass(frozen=True)
class Workshop:
    """Where roles work: the sandbox pool, per-execution limits and a scratch directory."""

    pool: Pool
    limits: Limits
    scratch: pathlib.Path


@dataclasses.dataclass(frozen=True)
class Development:
    """The Developer's output."""

    data: TaskData
    draft: Task  # the data as a gradable task with placeholder thresholds
    ladder: Mapping[str, RungResult]
    thresholds: Thresholds | None
    replay_digest: str


@dataclasses.dataclass(frozen=True)
class Inspection:
    """The MLOps Engineer's output: reference scores and the checked evaluator."""

    checks: dict[str, float | None]  # sample, gold, constant, shuffled scores (registry)
    evaluator: str | None  # evaluator.py in the release's contract
    evaluator_problems: tuple[str, ...] = ()  # where it disagrees with the registry


class DataStrategist(Protocol):
    def plan(self, seed: Seed, task_seed: int) -> TaskDNA: ...


class MLDeveloper(Protocol):
    def develop(self, task_id: str, dna: TaskDNA, workshop: Workshop) -> Development: ...


class MLOpsEngineer(Protocol):
    def check(self, dna: TaskDNA, development: Development, workshop: Workshop) -> Inspection: ...


class TechnicalWriter(Protocol):
    def write(self, dna: TaskDNA, data: TaskData) -> tuple[str, str]: ...  # (title, markdown)


@dataclasses.dataclass(frozen=True)
class Roles:
    backend: str
    strategist: DataStrategist
    developer: MLDeveloper
    mlops: MLOpsEngineer
    writer: TechnicalWriter


def build_candidate(roles: Roles, task_id: str, seed: Seed, task_seed: int,
                    workshop: Workshop) -> tuple[Candidate, Task]:
    """Strategist -> Developer -> MLOps -> Writer; returns the candidate and its draft."""
    dna = roles.strategist.plan(seed, task_seed)
    development = roles.developer.develop(task_id, dna, workshop)
    inspection = roles.mlops.check(dna, development, workshop)
    title, description = roles.writer.write(dna, development.data)
    candidate = Candidate(
        task_id=task_id, dna=dna, data=development.data, title=title,
        thresholds=development.thresholds, ladder=development.ladder, checks=inspection.checks,
        description=description, replay_digest=development.replay_digest,
        backend=roles.backend, evaluator=inspection.evaluator,
        evaluator_problems=inspection.evaluator_problems)
    return candidate, development.draft
