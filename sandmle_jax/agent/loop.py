"""An agent episode in any scaffold: act, observe, repeat; then grade and reward.

The scaffold (react.py, the training one, by default) says what the prompt is, how a turn
becomes an action and how its result is shown; this loop does the same token accounting,
context pruning and limits for every scaffold. Token in, token out: the trajectory is the
prompt ids, then each turn's generated ids (loss mask 1, with the rollout log-probs), then the
observation ids, appended as they come. A malformed turn gets an error observation and lowers
the format rate; it never ends the episode. Failures that are not the policy's fault (engine,
sandbox, grader) end it with a `*_error` termination so the trainer records and skips it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any, Protocol

from absl import logging

from sandmle_jax.agent import actions, react, tools
from sandmle_jax.agent.chat import ChatFormat
from sandmle_jax.agent.config import AgentConfig
from sandmle_jax.agent.context import Context, Message, fit_observation
from sandmle_jax.agent.policy import Policy, TurnRequest
from sandmle_jax.agent.trajectory import EpisodeInfo, TokenSequence, Trajectory
from sandmle_jax.tasks import grading, rewards
from sandmle_jax.tasks.task import Task


class Scaffold(Protocol):
    """What differs between agent scaffolds: the prompt, the action format, the tools, how
    results are shown and which submission counts. The loop owns the rest (tokens, context,
    limits, the trajectory), so episodes of every scaffold are accounted for alike."""

    name: str

    def prompt_ids(self) -> list[int]: ...

    def parse(self, text: str) -> actions.ParsedTurn: ...

    async def act(self, call: actions.ToolCall, wall_s: float) -> tools.Observation: ...

    def observation_ids(self, text: str) -> list[int]: ...

    def final_report(self, *, may_grade: bool) -> grading.GradeReport | None:
        """The episode's grade; `may_grade` False when the sandbox or engine failed (grade only
        what was graded already). Raises tools.GraderFailure when grading itself fails."""


# (task, chat, runner, config, workspace_root) -> a context manager yielding the episode's
# scaffold and cleaning its workspace up on exit.
OpenScaffold = Callable[[Task, ChatFormat, Any, AgentConfig, "str | None"],
                        contextlib.AbstractContextManager[Scaffold]]


class _Episode:
    """State of one running episode; `run` drives it."""

    def __init__(self, task, policy, chat, scaffold: Scaffold, config, episode_id):
        self.task, self.policy, self.chat, self.scaffold = task, policy, chat, scaffold
        self.config, self.episode_id = config, episode_id
        self.header = chat.header_ids()
        self.context = Context(scaffold.prompt_ids(), self.header, config.context_tokens)
        self.sequences = [TokenSequence()]
        self.sequences[0].extend(self.context.ids())
        self.turns = self.well_formed = 0
        self.last_observation = None
        self.exec_seconds, self.executions, self.exec_timeouts = 0.0, 0, 0
        self.versions: list[str] = []
        self.start = time.monotonic()

    def _elapsed(self) -> float:
        return time.monotonic() - self.start

    def _start_new_sequence_if_pruned(self) -> bool:
        """Prunes when needed; a pruned context starts a new training sequence."""
        if self.context.prune(self.config.min_turn_tokens):
            sequence = TokenSequence()
            sequence.extend(self.context.ids())
            self.sequences.append(sequence)
        return self.context.room() >= self.config.min_turn_tokens

    async def _observe(self, parsed: actions.ParsedTurn) -> tools.Observation:
        if parsed.action is None:
            return tools.Observation(text=f"error: {parsed.error}", is_error=True)
        remaining = self.config.episode_timeout_s - self._elapsed()
        observation = await self.scaffold.act(parsed.action, min(
            self.config.exec_timeout_s, remaining))
        if observation.exec_result is not None:
            self.executions += 1
            self.exec_seconds += observation.exec_result.wall_s
            self.exec_timeouts += int(observation.exec_result.timed_out)
        return observation

    async def run(self) -> str:
        """Plays turns until an answer or a limit; returns the termination reason."""
        while True:
            if self.turns >= self.config.max_turns:
                return "turn_limit"
            if self._elapsed() >= self.config.episode_timeout_s:
                return "time_limit"
            if not self._start_new_sequence_if_pruned():
                return "context_limit"
            context_ids = self.context.ids()
            output = await self.policy.next_turn(TurnRequest(
                episode_id=self.episode_id, turn=self.turns, context_ids=tuple(context_ids),
                max_new_tokens=min(self.config.max_new_tokens, self.context.room()),
                stop_token_ids=(self.chat.im_end_id,), task=self.task,
                last_observation=self.last_observation))
            self.turns += 1
            self.versions.append(output.weight_version)
            closing = self.chat.close_turn_ids(output.ids)
            sequence = self.sequences[-1]
            sequence.extend(output.ids, generated=True, logprobs=output.logprobs)
            sequence.extend(closing)
            parsed = self.scaffold.parse(self.chat.turn_text(output.ids))
            self.well_formed += int(parsed.well_formed)
            self.context.messages.append(
                Message(self.header + list(output.ids) + closing, "assistant"))
            if isinstance(parsed.action, actions.Answer):
                return "answer"
            observation = await self._observe(parsed)
            self.last_observation, observation_ids = fit_observation(
                observation.text, self.scaffold.observation_ids,
                self.context.observation_budget(self.config.max_new_tokens))
            self.context.messages.append(Message(observation_ids, "observation",
                                                 observation.is_error))
            sequence.extend(observation_ids + self.header)

    def trajectory(self, termination: str, error: str | None = None) -> Trajectory:
        report = None
        try:
            report = self.scaffold.final_report(
                may_grade=termination not in ("engine_error", "sandbox_error"))
        except tools.GraderFailure as e:
            termination, error = "grader_error", str(e)
        format_rate = self.well_formed / self.turns if self.turns else 0.0
        reward = rewards.reward(report, format_rate, self.config.reward_scheme) if report else 0.0
        medal = None
        if report is not None:
            medal = next((m for m in ("gold", "silver", "bronze")
                          if getattr(report, f"{m}_medal")), None)
        sequences = tuple(_trimmed(s) for s in self.sequences if s.num_generated)
        info = EpisodeInfo(
            task_id=self.task.id, termination=termination, turns=self.turns,
            format_rate=format_rate, score=report.score if report else None,
            valid_submission=bool(report and report.valid_submission), medal=medal,
            above_median=bool(report and report.above_median),
            humanrank=report.humanrank if report else None, exec_seconds=self.exec_seconds,
            executions=self.executions, exec_timeouts=self.exec_timeouts,
            wall_seconds=self._elapsed(), error=error, weight_versions=tuple(self.versions),
            scaffold=self.scaffold.name)
        return Trajectory(sequences=sequences, reward=reward, info=info)


def _trimmed(sequence: TokenSequence) -> TokenSequence:
    """Drops trailing context after the last generated token: the learner has nothing to score."""
    last = max(i for i, m in enumerate(sequence.loss_mask) if m) + 1
    return TokenSequence(sequence.ids[:last], sequence.loss_mask[:last], sequence.logprobs[:last])


async def run_episode(task: Task, policy: Policy, chat: ChatFormat, runner, config: AgentConfig,
                      episode_id: str, workspace_root: str | None = None,
                      open_scaffold: OpenScaffold = react.open_scaffold) -> Trajectory:
    """Plays one episode of `task` in the scaffold `open_scaffold` makes (the training scaffold
    by default) and returns its trajectory; never raises for a bad episode."""
    with open_scaffold(task, chat, runner, config, workspace_root) as scaffold:
        episode = _Episode(task, policy, chat, scaffold, config, episode_id)
        try:
            termination, error = await episode.run(), None
        except tools.GraderFailure as e:
            termination, error = "grader_error", str(e)
        except tools.SandboxFailure as e:
            termination, error = "sandbox_error", str(e)
        except Exception as e:  # the engine (or a policy script) failed: not the policy's fault
            logging.warning("episode %s: engine error: %r", episode_id, e)
            termination, error = "engine_error", f"{type(e).__name__}: {e}"
        return episode.trajectory(termination, error)

