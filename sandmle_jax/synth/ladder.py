"""Running the baseline ladder in the sandbox and turning its scores into thresholds.

Each rung runs as its own sandboxed process in its own workspace, with the task's public/
mounted read-only (and named by $PUBLIC_DIR); its submission.csv is read back with the
sandbox's safe reader and graded by `tasks.grading` against a draft of the task. Rungs of one
task are queued on the pool together, so a pool of N workers runs N rungs at once.

The rungs are our own programs, so a rung that cannot start or cannot read its inputs says the
set-up is broken (interpreter, libraries, mounts, paths), not the task: its result carries that
as `infrastructure`, which the pipeline uses to stop a run that cannot work.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
from collections.abc import Mapping

from sandbox_runner import Episode, Limits, Pool, read_workspace_file
from sandmle_jax.tasks import grading
from sandmle_jax.tasks.task import Task, Thresholds

SUBMISSION = "submission.csv"
# Python exceptions that mean a program could not start or could not read its inputs.
_INFRASTRUCTURE_EXCEPTIONS = ("FileNotFoundError", "PermissionError", "ModuleNotFoundError",
                              "ImportError", "NotADirectoryError", "IsADirectoryError")
_CANNOT_START = {126: "the program cannot be executed", 127: "command not found"}
_EXCEPTION_LINE = re.compile(r"([A-Za-z_][\w.]*): (.*)")
_QUOTED_PATH = re.compile(r"'(?:[^'/]*/)+([^'/]*)'")


@dataclasses.dataclass(frozen=True)
class RungResult:
    score: float | None  # None: no valid submission (see error)
    wall_s: float
    error: str | None = None
    infrastructure: str | None = None  # why the program could not start or read its inputs

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


def infrastructure_error(exit_code: int, stderr: str) -> str | None:
    """One line when a failed program could not start or read its inputs, else None.

    Quoted paths are cut to their last part, so one broken set-up reads the same in every task.
    """
    if exit_code in _CANNOT_START:
        return f"exit code {exit_code}: {_CANNOT_START[exit_code]}"
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    if any(line.startswith("bwrap:") for line in lines):
        return next(line for line in lines if line.startswith("bwrap:"))
    for line in reversed(lines):
        match = _EXCEPTION_LINE.fullmatch(line)
        if match:
            name = match.group(1).rsplit(".", 1)[-1]
            if name not in _INFRASTRUCTURE_EXCEPTIONS:
                return None  # the program ran and failed on its own account
            return shorten_paths(f"{name}: {match.group(2)}")
    return None


def shorten_paths(text: str) -> str:
    """Quoted paths cut to their last part: the same failure in two tasks reads the same."""
    return _QUOTED_PATH.sub(lambda m: repr(m.group(1)), text)


def _grade_rung(task: Task, episode: Episode, done, out: pathlib.Path) -> RungResult:
    if done.exit_code != 0:
        why = "timed out" if done.timed_out else f"exit code {done.exit_code}"
        infrastructure = None if done.timed_out else infrastructure_error(done.exit_code,
                                                                          done.stderr_tail)
        return RungResult(None, done.wall_s, f"{why}: {done.stderr_tail[-600:].strip()}",
                          infrastructure)
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
