"""Parsing one assistant turn into an action, or into the reason it is malformed.

The required shape of a turn (SANDMLE.md's scaffold, in Qwen3's Hermes tool-call format):

    <think> reasoning </think>
    <tool_call>
    {"name": "run_python", "arguments": {"code": "print(1)"}}
    </tool_call>

or `<think>...</think>` then `<answer>summary</answer>` to end the episode. A turn is
well-formed (counts for the format reward) when it has the required tags: the think block and
exactly one closed action block, as the paper defines format; whether the action inside is
usable (valid JSON, a known tool, code) is separate. A bad turn never raises: the loop shows the
agent `ParsedTurn.error`, and a turn without the tags lowers the format rate.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

RUN_PYTHON = "run_python"
SCORE = "score"
VALIDATE = "validate_submission"
TOOLS = (RUN_PYTHON, SCORE, VALIDATE)
_TAGS = ("tool_call", "answer")


@dataclasses.dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Answer:
    text: str


@dataclasses.dataclass(frozen=True)
class ParsedTurn:
    """`action` is None exactly when `error` says why the turn could not be acted on.

    `well_formed` is about the tags only: a turn can be well-formed yet not actionable (broken
    JSON inside a proper <tool_call>), or actionable yet badly formatted (no think block).
    """

    action: ToolCall | Answer | None
    well_formed: bool
    error: str | None = None
    thought: str = ""


def _invalid(error: str, thought: str = "") -> ParsedTurn:
    return ParsedTurn(action=None, well_formed=False, error=error, thought=thought)


def _split_think(text: str) -> tuple[str | None, str, str | None]:
    """(thought or None if no think block, the rest, error about the block)."""
    stripped = text.lstrip()
    if not stripped.startswith("<think>"):
        return None, text, None
    close = stripped.find("</think>")
    if close < 0:
        return None, "", "the <think> block is never closed with </think>"
    return stripped[len("<think>"):close].strip(), stripped[close + len("</think>"):], None


def _blocks(rest: str, tag: str) -> tuple[list[str], str | None]:
    opens = [m.start() for m in re.finditer(f"<{tag}>", rest)]
    closes = [m.start() for m in re.finditer(f"</{tag}>", rest)]
    if len(opens) != len(closes):
        return [], f"<{tag}> is not closed by </{tag}> (or a stray </{tag}>)"
    return [m.group(1) for m in re.finditer(f"<{tag}>(.*?)</{tag}>", rest, re.S)], None


def _tool_call(body: str) -> ToolCall | str:
    try:
        call = json.loads(body.strip(), strict=False)
    except json.JSONDecodeError as e:
        return (f"the <tool_call> body is not valid JSON ({e.msg} at line {e.lineno} column "
                f"{e.colno}); escape quotes and backslashes inside strings")
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        return 'a tool call must be a JSON object like {"name": ..., "arguments": {...}}'
    name, arguments = call["name"], call.get("arguments", {})
    if name not in TOOLS:
        return f"unknown tool {name!r}; the tools are {list(TOOLS)}"
    if isinstance(arguments, str):  # some models send arguments JSON-encoded twice
        try:
            arguments = json.loads(arguments, strict=False)
        except json.JSONDecodeError:
            return "the tool call's arguments must be a JSON object"
    if not isinstance(arguments, dict):
        return "the tool call's arguments must be a JSON object"
    if name == RUN_PYTHON:
        code = arguments.get("code")
        if not isinstance(code, str) or not code.strip():
            return 'run_python needs {"code": "<python source>"} with non-empty code'
        return ToolCall(RUN_PYTHON, {"code": code})
    return ToolCall(name, {})


def parse_turn(text: str) -> ParsedTurn:
    """Parses the decoded text of one assistant turn (without the end-of-turn token)."""
    if not text.strip():
        return _invalid("the turn is empty; think, then call exactly one tool or give <answer>")
    thought, rest, think_error = _split_think(text)
    if think_error:
        return _invalid(think_error)
    calls, call_error = _blocks(rest, "tool_call")
    answers, answer_error = _blocks(rest, "answer")
    if call_error or answer_error:
        return _invalid(call_error or answer_error, thought or "")
    if len(calls) + len(answers) == 0:
        return _invalid("no action found: end the turn with one <tool_call>{...}</tool_call> or "
                        "<answer>...</answer>", thought or "")
    if len(calls) + len(answers) > 1:
        return _invalid(f"found {len(calls)} tool calls and {len(answers)} answers; exactly one "
                        "action per turn", thought or "")
    tags_ok = thought is not None  # the paper's format: the required tags, each once
    if answers:
        action: ToolCall | Answer | str = Answer(answers[0].strip())
    else:
        action = _tool_call(calls[0])
    if isinstance(action, str):
        return ParsedTurn(action=None, well_formed=tags_ok, error=action, thought=thought or "")
    return ParsedTurn(action=action, well_formed=tags_ok, thought=thought or "")


def render_tool_call(name: str, arguments: dict[str, Any]) -> str:
    """The exact text of a tool call, as the reference agent writes it."""
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"
