"""The training scaffold (SANDMLE.md's ReAct): Qwen3 tool calls inside <tool_call> tags, the tools
run_python, score and validate_submission, and their results as `tool` messages.

The episode's grade is the last `score` result, or the workspace graded at the end when the
agent never scored.
"""

from __future__ import annotations

import contextlib

from sandmle_jax.agent import actions, prompts, tools
from sandmle_jax.agent.chat import ChatFormat
from sandmle_jax.agent.config import AgentConfig
from sandmle_jax.tasks import grading
from sandmle_jax.tasks.task import Task

NAME = "sandmle"


def build_prompt(task: Task, chat: ChatFormat, config: AgentConfig) -> list[int]:
    """System + task prompt ids (without the assistant header), cut to `prompt_tokens`."""
    limits = prompts.PromptLimits(config.max_turns, config.exec_timeout_s, config.libraries)
    system = prompts.system_prompt(limits, tools_inline=not config.tool_schemas)
    schemas = prompts.TOOL_SCHEMAS if config.tool_schemas else ()
    description = (task.public_dir / "description.md").read_text(errors="replace")
    max_chars = 4 * config.prompt_tokens
    while True:
        user = prompts.task_prompt(description, task.public_dir, max_chars=max_chars,
                                   grading=prompts.grading_line(task.spec.metric,
                                                                task.spec.lower_is_better))
        ids = chat.prompt_ids(system, user, schemas)
        header = chat.header_ids()
        if ids[-len(header):] == header:
            ids = ids[:-len(header)]
        if len(ids) <= config.prompt_tokens or max_chars < 200:
            return ids
        max_chars = int(max_chars * 0.75)


class ReActScaffold:
    """One episode of the training scaffold over a sandbox workspace."""

    name = NAME

    def __init__(self, task: Task, chat: ChatFormat, toolbox: tools.Toolbox,
                 config: AgentConfig):
        self.task, self.chat, self.toolbox, self.config = task, chat, toolbox, config
        self.last_score: grading.GradeReport | None = None

    def prompt_ids(self) -> list[int]:
        return build_prompt(self.task, self.chat, self.config)

    def parse(self, text: str) -> actions.ParsedTurn:
        return actions.parse_turn(text)

    async def act(self, call: actions.ToolCall, wall_s: float) -> tools.Observation:
        observation = await self.toolbox.call(call, wall_s=wall_s)
        if observation.report is not None and call.name == actions.SCORE:
            self.last_score = observation.report
        return observation

    def observation_ids(self, text: str) -> list[int]:
        return self.chat.observation_ids(text)

    def final_report(self, *, may_grade: bool) -> grading.GradeReport | None:
        """The last score, else (where `may_grade`) the workspace graded now."""
        if self.last_score is not None or not may_grade:
            return self.last_score
        return self.toolbox.grade_workspace()


@contextlib.contextmanager
def open_scaffold(task: Task, chat: ChatFormat, runner, config: AgentConfig,
                  workspace_root: str | None = None):
    """A ReActScaffold over a fresh workspace, removed on exit."""
    with tools.new_episode(task, runner, config.exec_limits, workspace_root) as episode:
        yield ReActScaffold(task, chat, tools.Toolbox(task, episode, runner, config.exec_limits,
                                                      tail_lines=config.tail_lines), config)
