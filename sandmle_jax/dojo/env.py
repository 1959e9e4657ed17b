"""Our tasks as a Gymnasium environment with MLE-Dojo's actions and observations.

Actions (MLE-Dojo's names and arguments): `request_info` {info_type}, `validate_code` {code}
(a syntax check and a run; never graded; any submission.csv it writes is removed),
`execute_code` {code} (a run, then ./submission.csv graded: raw score and position score),
`get_history` {} and `reset` {}. `step` takes the action as a dict {"action": ..., "params":
{...}}, as that dict's JSON text (the action space is text, as an LLM writes it) or, on the
unwrapped environment (gymnasium's wrappers pass no keywords), as MLE-Dojo's call
`step("execute_code", code=...)`. An action the environment cannot act on is answered with a
FAILED observation saying why, never an exception; what is not the agent's doing raises:
tools.SandboxFailure (the sandbox could not run the program) and tools.GraderFailure (grading
itself broke).

Code runs in our sandbox over a per-episode workspace, exactly as in the training scaffold: the
workspace is the only writable place, the task's public/ is mounted read-only (and linked as
./data), private/ is never mounted, and grading reads submission.csv without following links.

Position score: HumanRank against the task's leaderboard where it has one; synthetic tasks have
none, so there it is the share of the four thresholds (median, bronze, silver, gold) the score
reaches, and the observation's `position_basis` says which. Reward (MLE-Dojo's): the position
score (or, with score_mode="raw", the raw score) of each successfully graded execute_code, 0 for
every other action. Episodes never terminate on their own; bound them with gymnasium's
TimeLimit (`gymnasium.make(..., max_episode_steps=N)`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import stat
from collections.abc import Mapping
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from sandbox_runner import ExecResult, Limits, Sandbox

from sandmle_jax import paths
from sandmle_jax.agent import prompts, sandbox_setup, tools
from sandmle_jax.dojo import info
from sandmle_jax.tasks import grading, medals
from sandmle_jax.tasks import task as task_lib

ACTIONS = ("request_info", "validate_code", "execute_code", "reset", "get_history")
SUCCESS, FAILED = "SUCCESS", "FAILED"
MAX_TEXT = 1 << 20  # characters in an action or feedback text
SCORE_KEYS = ("current_raw_score", "current_position_score", "best_raw_score",
              "best_position_score")


class FreeText(spaces.Text):
    """Any string up to `max_length` characters (gymnasium's Text admits only its charset; code
    and program output are arbitrary Unicode)."""

    def __init__(self, max_length: int):
        super().__init__(max_length=max_length, min_length=0)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and len(x) <= self.max_length


def _scalar() -> spaces.Box:
    return spaces.Box(low=-np.inf, high=np.inf, shape=(), dtype=np.float64)


def position_score(report: grading.GradeReport) -> tuple[float, str]:
    """(position score in [0, 1], its basis: "leaderboard" or "thresholds")."""
    if report.humanrank is not None:
        return report.humanrank, "leaderboard"
    return sum(report.reached(level) for level in task_lib.LEVELS) / len(task_lib.LEVELS), \
        "thresholds"


def decode_action(action: Any, known: tuple[str, ...]) -> tuple[str, dict[str, Any]] | str:
    """(name, params) of `{"action": ..., "params": {...}}` (a mapping or its JSON text) naming
    one of `known`, or why it is not one."""
    if isinstance(action, str):
        try:
            action = json.loads(action, strict=False)
        except json.JSONDecodeError as e:
            return (f"not one JSON object ({e.msg} at line {e.lineno} column {e.colno}); write "
                    '{"action": ..., "params": {...}}')
    if not isinstance(action, Mapping) or not isinstance(action.get("action"), str):
        return 'an action is a JSON object {"action": <name>, "params": {...}}'
    name, params = action["action"], action.get("params", {})
    if name not in known:
        return f"unknown action {name!r}; the actions are {list(known)}"
    if not isinstance(params, Mapping):
        return '"params" must be a JSON object'
    return name, dict(params)


def parse_action(action: Any, kwargs: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | str:
    """(name, params) of an action in any of the accepted forms, or why it is not one."""
    if isinstance(action, str) and (kwargs or action in ACTIONS):  # MLE-Dojo's call form
        action = {"action": action, "params": kwargs}
    decoded = decode_action(action, ACTIONS)
    if isinstance(decoded, str):
        return decoded
    name, params = decoded
    if name in ("validate_code", "execute_code"):
        code = params.get("code")
        if not isinstance(code, str) or not code.strip():
            return f'{name} needs {{"code": "<python source>"}} with non-empty code'
        if len(code) > MAX_TEXT:
            return f"the code has {len(code)} characters; at most {MAX_TEXT}"
    if name == "request_info" and not isinstance(params.get("info_type", info.ALL), str):
        return "info_type must be a string"
    return name, params


def syntax_error(code: str) -> str | None:
    """Why `code` does not compile, or None. compile() parses and never runs the code, and its
    size is capped by parse_action, so hostile source is safe to check on the host."""
    try:
        compile(code, "<code>", "exec", dont_inherit=True)
    except SyntaxError as e:
        return f"line {e.lineno}: {e.msg}"
    except (ValueError, RecursionError, MemoryError) as e:
        return f"{type(e).__name__}: {e}"
    return None


@dataclasses.dataclass
class _Outcome:
    status: str
    feedback: str
    reward: float = 0.0
    result: dict[str, Any] = dataclasses.field(default_factory=dict)


class MLETaskEnv(gymnasium.Env):
    """One task as an MLE-Dojo-style environment; `reset` opens a fresh workspace.

    task: a task directory (or a loaded Task). runner: a sandbox_runner Sandbox or Pool; by
    default a Sandbox of at least `min_isolation`, proved to work before the first episode.
    limits: per execution (wall time, memory, ...); the attribute may be changed between steps
    (a scaffold lowers the wall time as its episode's time runs out). workspace_root: where
    workspaces are made.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, task: str | os.PathLike | task_lib.Task, runner=None, *,
                 min_isolation: str = "bwrap", limits: Limits = Limits(wall_s=300.0),
                 score_mode: str = "position", workspace_root: str | os.PathLike | None = None,
                 tail_lines: int = 20, render_mode: str | None = None):
        if score_mode not in ("position", "raw"):
            raise ValueError(f"score_mode must be 'position' or 'raw', got {score_mode!r}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.task = task if isinstance(task, task_lib.Task) else task_lib.load_task(
            paths.absolute(task))
        if runner is None:
            runner = Sandbox(min_isolation=sandbox_setup.min_isolation(min_isolation))
            sandbox_setup.check_sandbox(runner)
        self.runner, self.limits, self.score_mode = runner, limits, score_mode
        self.workspace_root = None
        if workspace_root is not None:
            self.workspace_root = str(paths.absolute(workspace_root))
            os.makedirs(self.workspace_root, exist_ok=True)
        self.tail_lines, self.render_mode = tail_lines, render_mode
        self.action_space = FreeText(max_length=MAX_TEXT)
        self.observation_space = spaces.Dict({
            "action_status": FreeText(max_length=16),
            "feedback": FreeText(max_length=MAX_TEXT),
            "total_reward": _scalar(),
            **{key: _scalar() for key in SCORE_KEYS},
            "has_score": spaces.Discrete(2),  # 1 once a submission was graded valid
            "position_basis": FreeText(max_length=16),
            "history_summary": FreeText(max_length=MAX_TEXT),
        })
        self._episode = None
        self._toolbox: tools.Toolbox | None = None
        self.last_execution: ExecResult | None = None  # of the latest step, if it ran code
        self._clear()

    # -- state --------------------------------------------------------------------------------

    def _clear(self) -> None:
        self.total_reward = 0.0
        self.scores = dict.fromkeys(SCORE_KEYS, 0.0)
        self.best_report: grading.GradeReport | None = None
        self.best_code: str | None = None
        self.position_basis = ""
        self.history: list[dict[str, Any]] = []
        self._last_feedback = ""

    def _close_episode(self) -> None:
        if self._episode is not None:
            self._episode.close()
            self._episode = self._toolbox = None

    @property
    def workspace(self) -> pathlib.Path:
        if self._episode is None:
            raise RuntimeError("no open episode: call reset() first")
        return self._episode.workspace

    def history_summary(self) -> str:
        if not self.history:
            return "No actions taken yet."
        best = ("none" if self.best_report is None
                else f"{self.scores['best_raw_score']:.6g} (position "
                     f"{self.scores['best_position_score']:.3f})")
        return (f"Total actions: {len(self.history)}, last action: "
                f"{self.history[-1]['action']} ({self.history[-1]['status']}), best score: {best}")

    def _observation(self, status: str, feedback: str) -> dict[str, Any]:
        self._last_feedback = feedback
        return {"action_status": status, "feedback": feedback[:MAX_TEXT],
                "total_reward": np.array(self.total_reward, dtype=np.float64),
                **{k: np.array(v, dtype=np.float64) for k, v in self.scores.items()},
                "has_score": int(self.best_report is not None),
                "position_basis": self.position_basis,
                "history_summary": self.history_summary()}

    # -- gymnasium API --------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._close_episode()
        self._clear()
        self._episode = tools.new_episode(self.task, self.runner, self.limits,
                                          self.workspace_root)
        self._toolbox = tools.Toolbox(self.task, self._episode, self.runner, self.limits,
                                      tail_lines=self.tail_lines)
        feedback = (f"Competition {self.task.id} is ready with a fresh working directory. "
                    f"Actions: {', '.join(ACTIONS)}.")
        return self._observation("RESET", feedback), {"task_id": self.task.id}

    def step(self, action: Any, **kwargs):
        if self._episode is None:
            raise gymnasium.error.ResetNeeded("call reset() before step()")
        parsed = parse_action(action, kwargs)
        self.last_execution = None
        if isinstance(parsed, str):
            outcome, name = _Outcome(FAILED, f"invalid action: {parsed}"), "invalid"
        else:
            name, params = parsed
            outcome = getattr(self, f"_{name}")(**params) if name != "reset" else None
            if outcome is None:  # reset: a fresh workspace, as env.reset() gives
                observation, _ = self.reset()
                return observation, 0.0, False, False, {"action": name, "status": "RESET"}
        self.total_reward += outcome.reward
        self.history.append({"step": len(self.history) + 1, "action": name,
                             "status": outcome.status, "reward": outcome.reward,
                             **outcome.result})
        info_dict = {"action": name, "status": outcome.status, **outcome.result}
        return (self._observation(outcome.status, outcome.feedback), outcome.reward, False,
                False, info_dict)

    def render(self) -> str | None:
        return self._last_feedback if self.render_mode == "ansi" else None

    def close(self) -> None:
        self._close_episode()
        super().close()

    # -- actions --------------------------------------------------------------------------------

    def _request_info(self, info_type: str = info.ALL, **unused) -> _Outcome:
        try:
            values = info.request(self.task, info_type,
                                  data_path=str(self.workspace / prompts.DATA_DIR),
                                  output_path=str(self.workspace))
        except ValueError as e:
            return _Outcome(FAILED, str(e))
        return _Outcome(SUCCESS, info.render(values), result={"info_type": info_type})

    def _run(self, code: str) -> ExecResult:
        try:
            result = self.runner.run(self._episode.request(code=code, limits=self.limits))
        except Exception as e:  # the sandbox failed, not the program: not the agent's fault
            raise tools.SandboxFailure(f"{type(e).__name__}: {e}") from e
        self.last_execution = result
        return result

    def _execution(self, code: str) -> tuple[bool, str, dict[str, Any]]:
        """(ran cleanly, feedback, result) of one sandboxed run, after a syntax check."""
        error = syntax_error(code)
        if error:
            return False, f"syntax error: {error}", {"syntax": error}
        result = self._run(code)
        text = tools.format_exec(result, self.tail_lines, self._toolbox.submission_state())
        ok = result.exit_code == 0 and not result.timed_out and not result.killed_by
        return ok, text, {"exit_code": result.exit_code, "timed_out": result.timed_out,
                          "wall_s": result.wall_s}

    def _validate_code(self, code: str, **unused) -> _Outcome:
        ok, text, result = self._execution(code)
        removed = _remove_submission(self.workspace)
        note = ("\nvalidate_code never grades: the submission.csv this run wrote was removed; "
                "use execute_code to be scored." if removed else "")
        return _Outcome(SUCCESS if ok else FAILED, text + note, result=result)

    def _execute_code(self, code: str, **unused) -> _Outcome:
        ok, text, result = self._execution(code)
        if not ok:
            return _Outcome(FAILED, text + "\nsubmission: not graded, the code failed.",
                            result=result)
        report = self._toolbox.grade_workspace()
        result["valid_submission"] = report.valid_submission
        if not report.valid_submission:
            return _Outcome(FAILED, f"{text}\ninvalid submission: {report.error}",
                            result={**result, "error": report.error})
        position, self.position_basis = position_score(report)
        self.scores["current_raw_score"] = report.score
        self.scores["current_position_score"] = position
        if self.best_report is None or medals.strictly_beats(
                report.score, self.best_report.score, report.is_lower_better):
            self.best_report, self.best_code = report, code
            self.scores["best_raw_score"], self.scores["best_position_score"] = (
                report.score, position)
        direction = "lower" if report.is_lower_better else "higher"
        feedback = (f"{text}\nsubmission: valid; raw score {report.score:.6g} "
                    f"({self.task.spec.metric}, {direction} is better); position score "
                    f"{position:.3f} ({self.position_basis}); best raw score "
                    f"{self.scores['best_raw_score']:.6g}")
        reward = position if self.score_mode == "position" else report.score
        return _Outcome(SUCCESS, feedback, reward=float(reward), result={
            **result, "raw_score": report.score, "position_score": position,
            "position_basis": self.position_basis})

    def _get_history(self, **unused) -> _Outcome:
        lines = [f"step {h['step']}: {h['action']} {h['status']}"
                 + (f", raw score {h['raw_score']:.6g}" if "raw_score" in h else "")
                 for h in self.history]
        return _Outcome(SUCCESS, "\n".join(lines) or "No actions taken yet.",
                        result={"history": [dict(h) for h in self.history]})


def _remove_submission(workspace: pathlib.Path) -> bool:
    """Removes workspace/submission.csv whatever it is (file, link, folder); never follows a
    link. Returns whether something was there."""
    path = workspace / tools.SUBMISSION
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)
    return True
