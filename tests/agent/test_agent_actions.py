"""Every malformed-turn class gets a reason; well-formed turns parse to the right action."""

import json

import pytest

from sandmle_jax.agent import actions

CALL = '<tool_call>\n{"name": "run_python", "arguments": {"code": "print(1)"}}\n</tool_call>'


def test_well_formed_tool_call():
    parsed = actions.parse_turn(f"<think>\nlook\n</think>\n\n{CALL}")
    assert parsed.well_formed and parsed.error is None and parsed.thought == "look"
    assert parsed.action == actions.ToolCall("run_python", {"code": "print(1)"})


def test_answer_and_score():
    parsed = actions.parse_turn("<think>done</think><answer> all good </answer>")
    assert parsed.well_formed and parsed.action == actions.Answer("all good")
    parsed = actions.parse_turn('<think></think><tool_call>{"name": "score"}</tool_call>')
    assert parsed.well_formed and parsed.action == actions.ToolCall("score", {})


def test_missing_think_is_actionable_but_badly_formatted():
    parsed = actions.parse_turn(CALL)
    assert parsed.action is not None and not parsed.well_formed


def test_raw_newlines_in_code_are_accepted():
    body = '{"name": "run_python", "arguments": {"code": "import os\nprint(2)"}}'
    parsed = actions.parse_turn(f"<think>x</think><tool_call>{body}</tool_call>")
    assert parsed.action.arguments["code"] == "import os\nprint(2)"


def test_double_encoded_arguments():
    body = json.dumps({"name": "run_python", "arguments": json.dumps({"code": "x=1"})})
    parsed = actions.parse_turn(f"<think>x</think><tool_call>{body}</tool_call>")
    assert parsed.action.arguments == {"code": "x=1"}


@pytest.mark.parametrize("text, reason, tags_ok", [
    ("", "empty", False),
    ("   \n", "empty", False),
    ("<think>hmm</think> I will now train a model.", "no action found", False),
    (f"<think>x</think>{CALL}{CALL}", "2 tool calls", False),
    (f"<think>x</think>{CALL}<answer>done</answer>", "exactly one action", False),
    ('<think>x</think><tool_call>{"name": "run_python", "arguments": {"code": "print(1)"}',
     "not closed", False),
    ("<think>never closed <tool_call>{}</tool_call>", "never closed", False),
    ("<think>x</think><answer>unterminated", "not closed", False),
    # The tags are right (format counts) but the call inside cannot be executed.
    ("<think>x</think><tool_call>{name: run_python}</tool_call>", "not valid JSON", True),
    ("<think>x</think><tool_call>[1, 2]</tool_call>", "JSON object like", True),
    ('<think>x</think><tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>',
     "unknown tool 'rm_rf'", True),
    ('<think>x</think><tool_call>{"name": "run_python", "arguments": {}}</tool_call>',
     "non-empty code", True),
    ('<think>x</think><tool_call>{"name": "run_python", "arguments": [1]}</tool_call>',
     "arguments must be a JSON object", True),
    ('<tool_call>{"name": "run_python", "arguments": [1]}</tool_call>',
     "arguments must be a JSON object", False),
])
def test_malformed_turns(text, reason, tags_ok):
    parsed = actions.parse_turn(text)
    assert parsed.action is None and parsed.well_formed == tags_ok
    assert reason in parsed.error, parsed.error


def test_render_round_trips():
    text = actions.render_tool_call("run_python", {"code": 'print("a\\nb")'})
    parsed = actions.parse_turn(f"<think>t</think>\n{text}")
    assert parsed.action.arguments["code"] == 'print("a\\nb")'
