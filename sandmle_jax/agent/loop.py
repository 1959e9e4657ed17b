"""The ReAct episode: think, call one tool, observe, repeat; then grade and reward.

Token in, token out: the trajectory is the prompt ids, then each turn's generated ids (loss mask
1, with the rollout log-probs), then the observation ids, appended as they come. A malformed turn
gets an error observation and lowers the format rate; it never ends the episode. Failures that
are not the policy's fault (engine, sandbox, grader) end it with a `*_error` termination so the
trainer records and skips it.
"""

from __future__ import annotations

import dataclasses
import time

from absl import logging

from sandbox_runner import Limits

from sandmle_jax.agent import actions, prompts, tools
from sandmle_jax.agent.chat import ChatFormat
from sandmle_jax.agent.context import Context, Message, fit_observation
from sandmle_jax.agent.policy import Policy, TurnRequest
from sandmle_jax.agent.trajectory import EpisodeInfo, TokenSequence, Trajectory
from sandmle_jax.tasks import rewards
from sandmle_jax.tasks.task import Task


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """Limits default to the paper's training values (SANDMLE.md)."""

    max_turns: int = 15  # model calls per trajectory
    context_tokens: int = 32768
    prompt_tokens: int = 8192  # cap on system + task prompt
    max_new_tokens: int = 4096  # per turn
    min_turn_tokens: int = 256  # prune (or stop) when fewer tokens than this remain
    exec_timeout_s: float = 300.0
    episode_timeout_s: float = 1200.0
    tail_lines: int = 20
    tool_schemas: bool = True  # False: one-line tool list instead of the template's JSON block
    reward_scheme: str = rewards.DEFAULT_SCHEME
    exec_limits: Limits = Limits()


def agent_config_from(config) -> AgentConfig:
    """The agent's limits from a recipe's `agent` and `sandbox` sections (configs/base.py)."""
    a, box = config.agent, config.sandbox
    return AgentConfig(
        max_turns=a.max_turns, context_tokens=a.context_tokens, prompt_tokens=a.prompt_tokens,
        max_new_tokens=a.max_new_tokens, min_turn_tokens=a.min_turn_tokens,
        exec_timeout_s=a.exec_timeout_s, episode_timeout_s=a.episode_timeout_s,
        tool_schemas=a.tool_schemas, reward_scheme=a.reward_scheme,
        exec_limits=Limits(wall_s=a.exec_timeout_s, memory_bytes=box.memory_mb << 20,
                           cpus=box.cpus_per_execution))


def build_prompt(task: Task, chat: ChatFormat, config: AgentConfig) -> list[int]:
    """System + task prompt ids (without the assistant header), cut to `prompt_tokens`."""
    system = prompts.system_prompt(prompts.PromptLimits(config.max_turns, config.exec_timeout_s),
                                   tools_inline=not config.tool_schemas)
    tools = prompts.TOOL_SCHEMAS if config.tool_schemas else ()
    description = (task.public_dir / "description.md").read_text(errors="replace")
    max_chars = 4 * config.prompt_tokens
    while True:
        user = prompts.task_prompt(description, task.public_dir, max_chars=max_chars)
        ids = chat.prompt_ids(system, user, tools)
        header = chat.header_ids()
        if ids[-len(header):] == header:
            ids = ids[:-len(header)]
        if len(ids) <= config.prompt_tokens or max_chars < 200:
            return ids
        max_chars = int(max_chars * 0.75)


class _Episode:
    """State of one running episode; `run` drives it."""

    def __init__(self, task, policy, chat, toolbox, config, episode_id):
        self.task, self.policy, self.chat, self.toolbox = task, policy, chat, toolbox
        self.config, self.episode_id = config, episode_id
        self.header = chat.header_ids()
        self.context = Context(build_prompt(task, chat, config), self.header,
                               config.context_tokens)
        self.sequences = [TokenSequence()]
        self.sequences[0].extend(self.context.ids())
        self.turns = self.well_formed = 0
        self.last_report = None
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
        observation = await self.toolbox.call(parsed.action, wall_s=min(
            self.config.exec_timeout_s, remaining))
        if observation.exec_result is not None:
            self.executions += 1
            self.exec_seconds += observation.exec_result.wall_s
            self.exec_timeouts += int(observation.exec_result.timed_out)
        if observation.report is not None and parsed.action.name == actions.SCORE:
            self.last_report = observation.report
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
            parsed = actions.parse_turn(self.chat.turn_text(output.ids))
            self.well_formed += int(parsed.well_formed)
            self.context.messages.append(
                Message(self.header + list(output.ids) + closing, "assistant"))
            if isinstance(parsed.action, actions.Answer):
                return "answer"
            observation = await self._observe(parsed)
            self.last_observation, observation_ids = fit_observation(
                observation.text, self.chat.observation_ids,
                self.context.observation_budget(self.config.max_new_tokens))
            self.context.messages.append(Message(observation_ids, "observation",
                                                 observation.is_error))
            sequence.extend(observation_ids + self.header)

    def trajectory(self, termination: str, error: str | None = None) -> Trajectory:
        report = self.last_report
        if report is None and termination not in ("engine_error", "sandbox_error"):
            try:
                report = self.toolbox.grade_workspace()
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
            wall_seconds=self._elapsed(), error=error, weight_versions=tuple(self.versions))
        return Trajectory(sequences=sequences, reward=reward, info=info)


def _trimmed(sequence: TokenSequence) -> TokenSequence:
    """Drops trailing context after the last generated token: the learner has nothing to score."""
    last = max(i for i, m in enumerate(sequence.loss_mask) if m) + 1
    return TokenSequence(sequence.ids[:last], sequence.loss_mask[:last], sequence.logprobs[:last])


async def run_episode(task: Task, policy: Policy, chat: ChatFormat, runner, config: AgentConfig,
                      episode_id: str, workspace_root: str | None = None) -> Trajectory:
    """Plays one episode of `task` and returns its trajectory; never raises for a bad episode."""
    with tools.new_episode(task, runner, config.exec_limits, workspace_root) as sandbox_episode:
        toolbox = tools.Toolbox(task, sandbox_episode, runner, config.exec_limits,
                                tail_lines=config.tail_lines)
        episode = _Episode(task, policy, chat, toolbox, config, episode_id)
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

