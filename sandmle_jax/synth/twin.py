"""The full-scale twin: the same DNA at 50k-500k rows, to measure what micro scale buys.

SandMLE's claim is that shrinking a task's data keeps its structure while cutting each
execution step from ~196 s to ~14 s (13.7x). `ladder_step_times` runs the same five baseline
programs, in the sandbox, on the micro task and on its twin and reports each step's wall time.
Twins are never verified or published: they exist to be timed.
"""

from __future__ import annotations

import dataclasses

from sandmle_jax.synth import baselines, ladder, synthesis
from sandmle_jax.synth.candidate import write_draft
from sandmle_jax.synth.dna import TaskDNA, at_scale
from sandmle_jax.synth.roles import Workshop


@dataclasses.dataclass(frozen=True)
class StepTimes:
    rows: int
    wall_s: dict[str, float]  # rung -> seconds of its sandboxed execution
    scores: dict[str, float | None]


def ladder_step_times(dna: TaskDNA, workshop: Workshop, name: str) -> StepTimes:
    """Synthesises `dna` (any size), runs the ladder in the sandbox, returns per-step times."""
    data = synthesis.synthesize(dna)
    draft = write_draft(name, dna, data, workshop.scratch / name / "draft", "twin")
    scripts = {rung: baselines.script(rung, data.baseline) for rung in baselines.RUNGS}
    results = ladder.run_scripts(draft, scripts, workshop.pool, workshop.limits,
                                 workshop.scratch / name / "ladder")
    failed = {k: v.error for k, v in results.items() if v.error and v.score is None}
    if failed:
        raise RuntimeError(f"{name}: baseline steps failed: {failed}")
    return StepTimes(rows=dna.n_train, wall_s={k: v.wall_s for k, v in results.items()},
                     scores={k: v.score for k, v in results.items()})


def micro_and_twin(dna: TaskDNA, full_rows: int, workshop: Workshop) -> tuple[StepTimes, StepTimes]:
    micro = ladder_step_times(dna, workshop, f"micro-{dna.seed_id}")
    full = ladder_step_times(at_scale(dna, full_rows), workshop, f"twin-{dna.seed_id}")
    return micro, full
