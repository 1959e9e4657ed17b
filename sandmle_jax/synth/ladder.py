"""Running the baseline ladder in the sandbox and turning its scores into thresholds.

Each rung runs as its own sandboxed process in its own workspace, with the task's public/
mounted read-only (and named by $PUBLIC_DIR); its submission.csv is read back with the
sandbox's safe reader and graded by `tasks.grading` against a draft of the task. Rungs of one
task are queued on the pool together, so a pool of N workers runs N rungs at once.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping

from sandbox_runner import Episode, Limits, Pool, read_workspace_file
from sandmle_jax.tasks import grading
from sandmle_jax.tasks.task import Task, Thresholds

SUBMISSION = "submission.csv"


@dataclasses.dataclass(frozen=True)
class RungResult:
    score: float | None  # None: no valid submission (see error)
    wall_s: float
    error: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def run_scripts(task: Task, scripts: Mapping[str, str], pool: Pool, limits: Limits,
                scratch: pathlib.Path) -> dict[str, RungResult]:
    """Runs each script in a fresh sandbox workspace and grades what it wrote."""
    episodes = {name: Episode(task.public_dir, pool, limits) for name in scripts}
    try:
        futures = {name: pool.submit(ep.request(code=code,
                                                env={"PUBLIC_DIR": str(task.public_dir)}),
                                     block=True)
                   for (name, code), ep in zip(scripts.items(), episodes.values())}
        results = {}
        for name, future in futures.items():
            done = future.result()
            results[name] = _grade_rung(task, episodes[name], done, scratch / name)
        return results
    finally:
        for ep in episodes.values():
            ep.close()


def _grade_rung(task: Task, episode: Episode, done, out: pathlib.Path) -> RungResult:
    if done.exit_code != 0:
        why = "timed out" if done.timed_out else f"exit code {done.exit_code}"
        return RungResult(None, done.wall_s, f"{why}: {done.stderr_tail[-600:].strip()}")
    try:
        content = read_workspace_file(episode.workspace, SUBMISSION)
    except (FileNotFoundError, ValueError) as e:
        return RungResult(None, done.wall_s, f"no usable {SUBMISSION}: {e}")
    out.mkdir(parents=True, exist_ok=True)
    (out / SUBMISSION).write_bytes(content)
    report = grading.grade(task, out / SUBMISSION)
    return RungResult(report.score, done.wall_s, report.error or report.grader_error)


def thresholds_from_ladder(ladder: Mapping[str, RungResult], lower_is_better: bool,
                           rungs: tuple[str, ...]) -> Thresholds | None:
    """median..gold = the rungs' scores from worst to best; None if a rung has no score.

    Strictness is not forced here: ties are the monotonicity gate's to reject.
    """
    scores = [ladder[r].score for r in rungs if r in ladder]
    if len(scores) != 4 or any(s is None for s in scores):
        return None
    ordered = sorted(scores, reverse=lower_is_better)  # worst first
    return Thresholds(median=ordered[0], bronze=ordered[1], silver=ordered[2], gold=ordered[3])
