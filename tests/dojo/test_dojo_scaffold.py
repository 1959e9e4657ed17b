"""The Dojo scaffold through the shared episode loop, in the real sandbox: the same reference
solution scores the same in both scaffolds; replies are parsed as MLE-Dojo's agents write them;
malformed replies lower the format rate without ending the episode."""

import asyncio
import json

import pytest

from conftest import write_tabular_task

from sandbox_runner import Limits, Pool, Sandbox
from sandmle_jax.agent import actions, loop, react, reference
from sandmle_jax.agent.chat import ChatFormat
from sandmle_jax.agent.config import AgentConfig
from sandmle_jax.agent.policy import TurnOutput
from sandmle_jax.dojo import reference as dojo_reference, scaffold

CONFIG = AgentConfig(max_turns=6, context_tokens=16384, max_new_tokens=2048,
                     exec_timeout_s=60, exec_limits=Limits(wall_s=60, memory_bytes=2 << 30))


@pytest.fixture(scope="module")
def pool():
    with Pool(Sandbox(min_isolation="bwrap"), workers=2) as p:
        yield p


@pytest.fixture(scope="module")
def chat(qwen_tokenizer):
    return ChatFormat.from_tokenizer(qwen_tokenizer)


def _play(task, policy, chat, pool, open_scaffold, config=CONFIG):
    return asyncio.run(loop.run_episode(task, policy, chat, pool, config, "ep",
                                        open_scaffold=open_scaffold))


@pytest.mark.parametrize("tier", ["linear", "forest"])
def test_the_same_reference_solution_scores_the_same_in_both_scaffolds(tmp_path, chat, pool,
                                                                       tier):
    task = write_tabular_task(tmp_path / "task")
    ours = _play(task, reference.ReferencePolicy(chat, tier=tier), chat, pool,
                 react.open_scaffold)
    dojo = _play(task, dojo_reference.DojoReferencePolicy(chat, tier=tier), chat, pool,
                 scaffold.open_scaffold)
    assert ours.info.scaffold == "sandmle" and dojo.info.scaffold == "dojo"
    assert dojo.info.termination == "answer" and dojo.info.format_rate == 1.0
    assert dojo.info.valid_submission and ours.info.valid_submission
    assert dojo.info.score == ours.info.score  # same program, same data, same grader
    assert dojo.info.medal == ours.info.medal and dojo.reward == ours.reward
    text = chat.decode(dojo.sequences[0].ids)
    assert "<tool_call>" not in text and "<tool_response>" not in text
    assert '"action": "request_info"' in text and "execute_code: SUCCESS" in text


@pytest.mark.parametrize("reply,action", [
    ('{"action": "request_info", "params": {"info_type": "overview"}}',
     actions.ToolCall("request_info", {"info_type": "overview"})),
    ('<think>\nfirst the data\n</think>\n\n```json\n{"action": "execute_code", "params": '
     '{"code": "print(1)"}}\n```', actions.ToolCall("execute_code", {"code": "print(1)"})),
    ('{"action": "end", "params": {}}', actions.Answer("")),
])
def test_replies_parse_as_mle_dojo_agents_write_them(reply, action):
    parsed = scaffold.parse_reply(reply)
    assert parsed.well_formed and parsed.action == action and parsed.error is None


@pytest.mark.parametrize("reply,why", [
    ("", "empty"), ("I will now read the data.", "not one JSON object"),
    ('{"action": "run_python", "params": {}}', "unknown action"),
    ('{"action": "execute_code", "params": "print(1)"}', '"params" must be'),
    ('<tool_call>\n{"name": "run_python", "arguments": {"code": "1"}}\n</tool_call>',
     "not one JSON object"),
])
def test_malformed_replies_say_why(reply, why):
    parsed = scaffold.parse_reply(reply)
    assert parsed.action is None and not parsed.well_formed and why in parsed.error


class _Scripted:
    def __init__(self, chat, texts):
        self.chat, self.texts = chat, texts

    async def next_turn(self, request):
        ids = self.chat.encode(self.texts[request.turn]) + [self.chat.im_end_id]
        return TurnOutput(ids=tuple(ids), logprobs=(0.0,) * len(ids), finish="stop",
                          weight_version="scripted")


def test_a_bad_reply_is_shown_its_error_and_the_episode_goes_on(tmp_path, chat, pool):
    task = write_tabular_task(tmp_path / "task")
    code = ("import pandas as pd\ns = pd.read_csv('data/sample_submission.csv')\n"
            "s.to_csv('submission.csv', index=False)")
    texts = ["Let me look at the data first.",
             json.dumps({"action": "validate_code", "params": {"code": code}}),
             '{"action": "end", "params": {}}']
    trajectory = _play(task, _Scripted(chat, texts), chat, pool, scaffold.open_scaffold)
    info = trajectory.info
    assert info.termination == "answer" and info.turns == 3
    assert info.format_rate == pytest.approx(2 / 3)
    assert not info.valid_submission and info.score is None  # validate_code never scores
    text = chat.decode(trajectory.sequences[0].ids)
    assert "error: not one JSON object (Expecting value at line 1 column 1)" in text
    assert "validate_code: SUCCESS" in text


def test_the_turn_limit_ends_a_dojo_episode(tmp_path, chat, pool):
    task = write_tabular_task(tmp_path / "task")
    config = AgentConfig(max_turns=2, exec_timeout_s=30, exec_limits=Limits(wall_s=30))
    ask = '{"action": "get_history", "params": {}}'
    trajectory = _play(task, _Scripted(chat, [ask, ask]), chat, pool, scaffold.open_scaffold,
                       config)
    assert trajectory.info.termination == "turn_limit" and trajectory.info.turns == 2
    assert "Steps left: 1." in chat.decode(trajectory.sequences[0].ids)


class _BrokenSandbox:
    def run(self, request):
        raise OSError("bwrap: cannot mount")


def test_a_sandbox_failure_is_recorded_not_scored(tmp_path, chat):
    """A sandbox that cannot run programs (a stand-in: the real one cannot be broken on purpose
    from here) ends the episode as sandbox_error, never as the agent's invalid submission."""
    task = write_tabular_task(tmp_path / "task")
    trajectory = _play(task, dojo_reference.DojoReferencePolicy(chat, tier="linear"), chat,
                       _BrokenSandbox(), scaffold.open_scaffold)
    assert trajectory.info.termination == "sandbox_error" and trajectory.failed
    assert "cannot mount" in trajectory.info.error and trajectory.info.score is None
