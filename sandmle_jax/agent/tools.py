"""The agent's tools: run Python in the sandbox, score and validate the submission.

Observations are what the paper shows the agent: the last lines of stdout/stderr, the exit
status, and whether submission.csv exists. Scoring reads submission.csv out of the workspace
with `read_workspace_file` (no symlinks, no hard links, no special files), so a planted link can
never make the trusted grader read private data, then grades a private copy.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import pathlib
import tempfile

from sandbox_runner import Episode, ExecResult, Limits, UnsafeWorkspaceFile

from sandmle_jax.agent import actions, prompts
from sandmle_jax.tasks import grading, submission
from sandmle_jax.tasks.task import Task

SUBMISSION = "submission.csv"


class SandboxFailure(RuntimeError):
    """The sandbox could not run the program (not the program failing): the episode is dropped."""


class GraderFailure(RuntimeError):
    """Grading itself failed (a task or code bug): the episode is dropped, not punished."""


@dataclasses.dataclass(frozen=True)
class Observation:
    text: str
    is_error: bool
    exec_result: ExecResult | None = None
    report: grading.GradeReport | None = None


def _tail(text: str, lines: int) -> str:
    kept = text.rstrip("\n").splitlines()[-lines:]
    return "\n".join(kept)


def format_exec(result: ExecResult, tail_lines: int, submission_state: str) -> str:
    if result.timed_out:
        status = f"killed: time limit reached after {result.wall_s:.0f} s"
    elif result.killed_by:
        status = f"killed by {result.killed_by} (exit code {result.exit_code})"
    else:
        status = f"exit code {result.exit_code}"
    parts = [status]
    for name, text in (("stdout", result.stdout_tail), ("stderr", result.stderr_tail)):
        if text.strip():
            parts.append(f"--- {name} (last {tail_lines} lines) ---\n{_tail(text, tail_lines)}")
    parts.append(f"submission.csv: {submission_state}")
    return "\n".join(parts)


def format_report(report: grading.GradeReport, metric: str, *, show_score: bool) -> str:
    if not report.valid_submission:
        return f"invalid submission: {report.error}"
    if not show_score:
        return "submission.csv is valid."
    direction = "lower" if report.is_lower_better else "higher"
    reached = [level for level in ("median", "bronze", "silver", "gold") if report.reached(level)]
    return (f"score: {report.score:.6g} ({metric}, {direction} is better); thresholds: "
            f"median {report.median_threshold:.6g}, bronze {report.bronze_threshold:.6g}, "
            f"silver {report.silver_threshold:.6g}, gold {report.gold_threshold:.6g}; reached: "
            f"{', '.join(reached) if reached else 'none'}")


class Toolbox:
    """Executes one episode's tool calls in its sandbox workspace."""

    def __init__(self, task: Task, episode: Episode, runner, limits: Limits, *,
                 tail_lines: int = 20):
        self.task, self.episode, self.runner, self.limits = task, episode, runner, limits
        self.tail_lines = tail_lines

    def submission_state(self) -> str:
        path = self.episode.workspace / SUBMISSION
        if path.is_symlink() or not path.exists():
            return "not found" if not path.is_symlink() else "a symlink (will be refused)"
        return f"exists ({path.stat().st_size} bytes)" if path.is_file() else "not a file"

    async def run_python(self, code: str, wall_s: float) -> Observation:
        limits = dataclasses.replace(self.limits, wall_s=max(1.0, min(self.limits.wall_s, wall_s)))
        request = self.episode.request(code=code, limits=limits)
        try:
            if hasattr(self.runner, "arun"):
                result = await self.runner.arun(request)
            else:
                result = await asyncio.to_thread(self.runner.run, request)
        except Exception as e:
            raise SandboxFailure(f"{type(e).__name__}: {e}") from e
        text = format_exec(result, self.tail_lines, self.submission_state())
        return Observation(text=text, is_error=result.exit_code != 0 or result.timed_out,
                           exec_result=result)

    def grade_workspace(self) -> grading.GradeReport:
        """Grades the workspace's submission.csv from a private copy; never follows links."""
        workspace_path = self.episode.workspace / SUBMISSION
        try:
            data = self.episode.read_file(SUBMISSION, max_bytes=submission.size_cap(self.task))
        except FileNotFoundError:
            return grading.invalid_report(self.task, workspace_path, exists=False,
                                          error="submission.csv not found in the working directory")
        except UnsafeWorkspaceFile as e:
            return grading.invalid_report(self.task, workspace_path, error=str(e))
        with tempfile.TemporaryDirectory(prefix="sandmle-grade-") as tmp:
            copy = pathlib.Path(tmp) / SUBMISSION
            copy.write_bytes(data)
            report = grading.grade(self.task, copy)
        report = dataclasses.replace(report, submission_path=str(workspace_path))
        if report.grader_error:
            raise GraderFailure(report.grader_error)
        return report

    async def call(self, call: actions.ToolCall, wall_s: float) -> Observation:
        if call.name == actions.RUN_PYTHON:
            return await self.run_python(call.arguments["code"], wall_s)
        report = await asyncio.to_thread(self.grade_workspace)
        show = call.name == actions.SCORE
        return Observation(text=format_report(report, self.task.spec.metric, show_score=show),
                           is_error=not report.valid_submission, report=report)


def new_episode(task: Task, runner, limits: Limits, root: str | os.PathLike | None = None):
    """A fresh workspace for one episode of `task`, next to its read-only public/ directory.

    The workspace holds a link `data` (prompts.DATA_DIR) to public/, so every task's data is at
    the same relative path (as MLE-bench scaffolds give `./input`): solution code carries over
    between tasks instead of embedding a per-task absolute path. The link grants nothing new:
    public/ is mounted read-only in the sandbox either way, and the grader never follows links.
    """
    episode = Episode(task.public_dir, runner, limits, root=None if root is None else str(root))
    # The episode's public_dir is absolute: a relative link would resolve inside the workspace.
    os.symlink(episode.public_dir, episode.workspace / prompts.DATA_DIR)
    return episode
