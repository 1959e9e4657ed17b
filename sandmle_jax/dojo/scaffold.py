"""A second agent scaffold for evaluation: MLE-Dojo's way of working, through MLETaskEnv.

Nothing here is shared with the training scaffold (react.py) but the episode loop: the prompt
is one user message worded apart from ours, a turn is one JSON object {"action", "params"} (an
optional leading <think> block and a ```json fence are allowed, as models write them), results
come back as user messages, and the episode's grade is the best submission any execute_code
scored (MLE-Dojo's best score), not the last. `end` is this scaffold's own action: it stops the
episode early instead of spending every remaining turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re

from sandmle_jax.agent import actions, tools
from sandmle_jax.agent.chat import ChatFormat
from sandmle_jax.agent.config import AgentConfig
from sandmle_jax.dojo import info
from sandmle_jax.dojo.env import FAILED, MLETaskEnv, decode_action
from sandmle_jax.tasks import grading
from sandmle_jax.tasks.task import Task

NAME = "dojo"
END = "end"
AGENT_ACTIONS = ("request_info", "validate_code", "execute_code", "get_history", END)

_SYSTEM = "You are a seasoned Kaggle competitor who solves problems by writing Python."
_INSTRUCTION = """\
An environment hosts the competition "{name}". You act on it one step at a time, and it \
answers each step. Get the competition's information first, then build and improve a \
model.

Steps you can take:
1. request_info, params {{"info_type": T}}, T one of {info_types}: text about the \
competition (its overview, the sample submission, the files, where the data are and where \
the submission goes).
2. validate_code, params {{"code": C}}: runs the complete Python program C to debug or \
inspect; it is never scored, and any submission.csv it writes is deleted.
3. execute_code, params {{"code": C}}: runs the complete program C, which must write \
submission.csv into the output folder (the working directory); the submission is then \
scored against hidden answers, and you are told its score and its position score (the \
share of competitors it matches or beats).
4. get_history, params {{}}: lists your steps so far.
5. end, params {{}}: stops. Your best scored submission is what counts.

Every message you send is exactly one JSON object and nothing besides it, for example
{{"action": "request_info", "params": {{"info_type": "overview"}}}}

You have {max_turns} steps. A program may run for {exec_timeout:g} seconds; programs keep \
no state between runs except the files they write. The data folder is read-only and there \
is no network. Python has numpy, pandas, scikit-learn and scipy."""


def instruction(task: Task, config: AgentConfig) -> str:
    return _INSTRUCTION.format(name=task.id, info_types=", ".join(info.INFO_TYPES + (info.ALL,)),
                               max_turns=config.max_turns, exec_timeout=config.exec_timeout_s)


_THINK = re.compile(r"^\s*<think>.*?</think>", re.S)
_FENCE = re.compile(r"```(?:json)?\s*\n?(.*?)```", re.S)


def parse_reply(text: str) -> actions.ParsedTurn:
    """One reply -> the action it names, or why it names none. Well-formed (the format rate)
    means a single JSON object with a known action and a params object."""
    rest = _THINK.sub("", text, count=1).strip()
    fenced = _FENCE.fullmatch(rest)
    body = fenced.group(1).strip() if fenced else rest
    if not body:
        return actions.ParsedTurn(None, False, 'the reply is empty; send one JSON object '
                                  '{"action": ..., "params": {...}}')
    decoded = decode_action(body, AGENT_ACTIONS)
    if isinstance(decoded, str):
        return actions.ParsedTurn(None, False, decoded)
    name, params = decoded
    if name == END:
        return actions.ParsedTurn(actions.Answer(""), True)
    return actions.ParsedTurn(actions.ToolCall(name, params), True)


class DojoScaffold:
    """One episode of the MLE-Dojo-style scaffold over an open MLETaskEnv."""

    name = NAME

    def __init__(self, env: MLETaskEnv, chat: ChatFormat, config: AgentConfig):
        self.env, self.chat, self.config = env, chat, config
        self.replies = 0

    def prompt_ids(self) -> list[int]:
        ids = self.chat.prompt_ids(_SYSTEM, instruction(self.env.task, self.config))
        header = self.chat.header_ids()
        return ids[:-len(header)] if ids[-len(header):] == header else ids

    def parse(self, text: str) -> actions.ParsedTurn:
        self.replies += 1
        return parse_reply(text)

    async def act(self, call: actions.ToolCall, wall_s: float) -> tools.Observation:
        self.env.limits = dataclasses.replace(self.config.exec_limits,
                                              wall_s=max(1.0, min(self.config.exec_limits.wall_s,
                                                                  wall_s)))
        observation, *_ = await asyncio.to_thread(
            self.env.step, {"action": call.name, "params": call.arguments})
        status = observation["action_status"]
        left = max(0, self.config.max_turns - self.replies)
        text = (f"{call.name}: {status}\n{observation['feedback']}\n\n"
                f"{observation['history_summary']}. Steps left: {left}. Reply with one JSON "
                "object.")
        return tools.Observation(text=text, is_error=status == FAILED,
                                 exec_result=self.env.last_execution)

    def observation_ids(self, text: str) -> list[int]:
        return self.chat.user_ids(text)

    def final_report(self, *, may_grade: bool) -> grading.GradeReport | None:
        """The best execute_code score; never a submission the environment did not grade."""
        if self.env.best_report is not None or not may_grade:
            return self.env.best_report
        return grading.invalid_report(self.env.task, self.env.workspace / tools.SUBMISSION,
                                      error="no execute_code produced a valid submission")


@contextlib.contextmanager
def open_scaffold(task: Task, chat: ChatFormat, runner, config: AgentConfig,
                  workspace_root: str | None = None):
    """A DojoScaffold over a freshly reset environment, closed (workspace removed) on exit."""
    env = MLETaskEnv(task, runner, limits=config.exec_limits, workspace_root=workspace_root,
                     tail_lines=config.tail_lines)
    try:
        env.reset()
        yield DojoScaffold(env, chat, config)
    finally:
        env.close()
