"""The `procedural` backend (default): offline, deterministic by seed.

Strategist: samples the mutations. Developer: synthesises the data from an explicit hidden rule
per modality, twice (the second digest feeds the determinism gate), writes the draft task and
runs the five-rung baseline ladder in the sandbox. MLOps: takes the metric from the DNA, grades
the sample, gold, constant and shuffled submissions, and writes the task's evaluator.py from
`tasks.evaluators`' template, cross-checked like any other. Writer: renders description.md.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from sandmle_jax.synth import baselines, dna as dna_lib, domains, ladder, submissions, synthesis
from sandmle_jax.synth import evaluator_check, writer
from sandmle_jax.synth.candidate import score_frame, write_draft
from sandmle_jax.synth.roles import Development, Inspection, Roles, Workshop
from sandmle_jax.synth.seeds import Seed
from sandmle_jax.tasks import evaluators, metrics as metrics_lib
from sandmle_jax.tasks.task import Thresholds

BACKEND = "procedural"


class Strategist:
    def plan(self, seed: Seed, task_seed: int) -> dna_lib.TaskDNA:
        rng = np.random.default_rng(task_seed)
        return dna_lib.mutate(dna_lib.extract_dna(seed), rng, seed=task_seed)


def develop_from_data(task_id: str, dna: dna_lib.TaskDNA, data: synthesis.TaskData,
                      replay_digest: str, workshop: Workshop, backend: str) -> Development:
    """Draft + ladder + thresholds for data from any Developer (the LLM one reuses this)."""
    draft = write_draft(task_id, dna, data, workshop.scratch / task_id / "draft", backend)
    scripts = {rung: baselines.script(rung, data.baseline) for rung in baselines.RUNGS}
    results = ladder.run_scripts(draft, scripts, workshop.pool, workshop.limits,
                                 workshop.scratch / task_id / "ladder")
    thresholds = ladder.thresholds_from_ladder(results, dna.lower_is_better, baselines.RUNGS[1:])
    return Development(data=data, draft=draft, ladder=results, thresholds=thresholds,
                       replay_digest=replay_digest)


class Developer:
    def develop(self, task_id: str, dna: dna_lib.TaskDNA, workshop: Workshop) -> Development:
        data = synthesis.synthesize(dna)
        replay = synthesis.synthesize(dna).digest()
        return develop_from_data(task_id, dna, data, replay, workshop, BACKEND)


def grading_checks(development: Development, frames: Mapping[str, Any],
                   scratch: pathlib.Path) -> dict[str, float | None]:
    """Scores of named submission frames on the draft, through `tasks.grading`."""
    return {name: score_frame(development.draft, frame, scratch / f"{name}.csv")[0]
            for name, frame in frames.items()}


def checked_thresholds(development: Development) -> Thresholds:
    """The thresholds an evaluator must print: the ladder's, or the draft's placeholders when
    the ladder gave none (the thresholds gate rejects that candidate anyway)."""
    return development.thresholds or development.draft.spec.thresholds


class MLOps:
    def check(self, dna: dna_lib.TaskDNA, development: Development,
              workshop: Workshop) -> Inspection:
        metric = metrics_lib.get_metric(dna.metric)  # the metric comes from the DNA
        data = development.data
        frames = {"sample": data.sample, "gold": data.gold,
                  "constant": submissions.constant(data),
                  "shuffled": submissions.shuffled(data, np.random.default_rng(dna.seed))}
        scratch = workshop.scratch / development.draft.id / f"checks-{metric.name}"
        thresholds = checked_thresholds(development)
        source = evaluators.evaluator_source(
            dataclasses.replace(development.draft.spec, thresholds=thresholds))
        problems = evaluator_check.disagreements(source, development.draft, thresholds, frames,
                                                 workshop)
        return Inspection(checks=grading_checks(development, frames, scratch), evaluator=source,
                          evaluator_problems=tuple(problems))


class Writer:
    def write(self, dna: dna_lib.TaskDNA, data: synthesis.TaskData) -> tuple[str, str]:
        domain = domains.get_domain(dna.domain)
        return writer.title(dna, domain, data), writer.describe(dna, domain, data)


def procedural_roles(options: Mapping[str, Any]) -> Roles:
    del options  # nothing to configure: everything follows from the seed
    return Roles(backend=BACKEND, strategist=Strategist(), developer=Developer(), mlops=MLOps(),
                 writer=Writer())
