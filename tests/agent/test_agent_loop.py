"""The ReAct loop end to end in the real sandbox: the reference agent solves a task; malformed
output, failing engines and planted symlinks are contained and recorded."""

import asyncio
import dataclasses

import pytest

from conftest import write_tabular_task

from sandbox_runner import Limits, Pool, Sandbox
from sandmle_jax.agent import actions, loop, prompts, reference, strategies
from sandmle_jax.agent.chat import ChatFormat
from sandmle_jax.agent.config import AgentConfig
from sandmle_jax.agent.policy import TurnOutput
from sandmle_jax.tasks import task as task_lib


@pytest.fixture(scope="module")
def pool():
    with Pool(Sandbox(), workers=2) as p:
        yield p


@pytest.fixture(scope="module")
def chat(qwen_tokenizer):
    return ChatFormat.from_tokenizer(qwen_tokenizer)


CONFIG = AgentConfig(max_turns=6, context_tokens=16384, max_new_tokens=2048,
                          exec_timeout_s=60, exec_limits=Limits(wall_s=60, memory_bytes=2 << 30))


def _run(task, policy, chat, pool, config=CONFIG, episode_id="ep"):
    return asyncio.run(loop.run_episode(task, policy, chat, pool, config, episode_id))


def _generated_text(chat, sequence):
    """Decodes each maximal run of generated tokens."""
    runs, current = [], []
    for token, mask in zip(sequence.ids, sequence.loss_mask):
        if mask:
            current.append(token)
        elif current:
            runs.append(chat.decode(current))
            current = []
    return runs + ([chat.decode(current)] if current else [])


def test_reference_agent_solves_a_task(tmp_path, chat, pool):
    task = write_tabular_task(tmp_path / "task")
    trajectory = _run(task, reference.ReferencePolicy(chat, tier="linear"), chat, pool)
    info = trajectory.info
    assert info.termination == "answer", info
    assert info.valid_submission and info.score > 0.8, info
    assert info.turns == 4 and info.format_rate == 1.0 and info.executions == 2
    assert trajectory.reward >= 0.1 + 0.3 + 0.1 + 0.2  # format, valid, median, bronze at least
    (sequence,) = trajectory.sequences
    assert len(sequence.ids) == len(sequence.loss_mask) == len(sequence.logprobs)
    turns = _generated_text(chat, sequence)
    assert len(turns) == 4 and turns[0].startswith("<think>") and "<answer>" in turns[-1]
    text = chat.decode(sequence.ids)
    assert "<tool_response>" in text and "score:" in text
    assert "# Data (read-only) in ./data/" in text and "train.csv (" in text  # explored ./data
    assert sequence.ids[-1] == chat.im_end_id  # trimmed after the last generated token
    # The prompt's grading line names the metric; the program's turn repeats it.
    grading = prompts.grading_line(task.spec.metric, task.spec.lower_is_better)
    assert text.count(grading) == 2 and grading in turns[1] and task.spec.metric in grading


def test_reference_agent_with_shared_programs_and_no_exploration(tmp_path, chat, pool):
    """The families recipe's plan: the program first, its thought opening with the grading
    line, its first line naming the task's kind; then score and answer."""
    task = write_tabular_task(tmp_path / "task")
    policy = reference.ReferencePolicy(chat, tier="linear", shared=True, explore=False)
    trajectory = _run(task, policy, chat, pool)
    info = trajectory.info
    assert info.valid_submission and info.score > 0.8, info
    assert info.turns == 3 and info.executions == 1 and info.termination == "answer", info
    program = _generated_text(chat, trajectory.sequences[0])[0]
    grading = prompts.grading_line(task.spec.metric, task.spec.lower_is_better)
    kind, _ = strategies.submission_kind(task)
    assert program.startswith(f"<think>\n{grading}")
    assert f'"code": "KIND = \\"{kind}\\"' in program


def _runs(code: str) -> str:
    """A well-formed turn that runs `code`."""
    return "<think>a</think>" + actions.render_tool_call("run_python", {"code": code})


ANSWER = "<think>c</think><answer>done</answer>"


class _Scripted:
    """A policy that replays fixed texts (a stand-in for a model's raw output)."""

    def __init__(self, chat, texts, fail_at=None):
        self.chat, self.texts, self.fail_at = chat, texts, fail_at

    async def next_turn(self, request):
        if request.turn == self.fail_at:
            raise ConnectionError("engine went away")
        ids = self.chat.encode(self.texts[request.turn % len(self.texts)])
        return TurnOutput(tuple(ids), (-0.5,) * len(ids), "stop", "v7")


def test_malformed_output_never_crashes_the_episode(tmp_path, chat, pool):
    task = write_tabular_task(tmp_path / "task")
    texts = ["", "no tags at all", "<think>x</think><tool_call>{broken</tool_call>",
             "<think>x</think><tool_call>{\"name\": \"score\"}</tool_call>"
             "<tool_call>{\"name\": \"score\"}</tool_call>"]
    trajectory = _run(task, _Scripted(chat, texts), chat, pool)
    info = trajectory.info
    assert info.termination == "turn_limit" and info.turns == CONFIG.max_turns
    # Only the broken-JSON turn (1 of 6: the texts cycle) has the required tags.
    assert info.format_rate == pytest.approx(1 / 6) and not info.valid_submission
    assert trajectory.reward == pytest.approx(0.1 / 6)
    assert info.weight_versions == ("v7",) * CONFIG.max_turns
    text = chat.decode(trajectory.sequences[0].ids)
    assert "error: the turn is empty" in text and "not valid JSON" in text
    assert "exactly one action" in text


def test_engine_failure_is_recorded(tmp_path, chat, pool):
    task = write_tabular_task(tmp_path / "task")
    texts = ["<think>a</think><tool_call>{\"name\": \"validate_submission\"}</tool_call>"]
    trajectory = _run(task, _Scripted(chat, texts, fail_at=1), chat, pool)
    assert trajectory.failed and trajectory.info.termination == "engine_error"
    assert "engine went away" in trajectory.info.error and trajectory.info.turns == 1


def test_symlink_to_private_answers_is_refused(tmp_path, chat, pool):
    task = write_tabular_task(tmp_path / "task")
    answers = task.private_dir / "answers.csv"
    code = f"import os\nos.symlink({str(answers)!r}, 'submission.csv')\nprint('planted')"
    texts = [
        _runs(code), '<think>b</think><tool_call>{"name": "score"}</tool_call>', ANSWER]
    trajectory = _run(task, _Scripted(chat, texts), chat, pool)
    info = trajectory.info
    assert info.termination == "answer" and not info.valid_submission
    assert "symlink" in chat.decode(trajectory.sequences[0].ids)


def test_data_link_is_read_only_and_grants_no_private_file(tmp_path, chat, pool):
    task = write_tabular_task(tmp_path / "task")
    code = ("import os\nprint(sorted(os.listdir('data')))\n"
            "print(os.path.exists('data/../private/answers.csv'))\n"
            "open('data/planted.csv', 'w').write('x')")
    texts = [_runs(code), ANSWER]
    trajectory = _run(task, _Scripted(chat, texts), chat, pool)
    text = chat.decode(trajectory.sequences[0].ids)
    assert "'sample_submission.csv'" in text and "'train.csv'" in text
    assert "\nFalse\n" in text  # the sandbox mounts public/ only: no way up to private/
    assert "Read-only file system" in text and not (task.public_dir / "planted.csv").exists()


def test_execution_time_limit(tmp_path, chat, pool):
    task = write_tabular_task(tmp_path / "task")
    texts = [_runs("import time\ntime.sleep(30)")]
    config = AgentConfig(max_turns=2, exec_timeout_s=2, exec_limits=Limits(wall_s=2))
    trajectory = _run(task, _Scripted(chat, texts), chat, pool, config)
    info = trajectory.info
    assert info.executions == 2 and info.exec_timeouts == 2 and trajectory.timed_out()
    assert info.exec_seconds < 10
    assert "time limit" in chat.decode(trajectory.sequences[0].ids)


class _Recording(_Scripted):
    def __init__(self, chat, texts):
        super().__init__(chat, texts)
        self.requests = []

    async def next_turn(self, request):
        self.requests.append(request)
        return await super().next_turn(request)


def test_a_wide_printout_never_cuts_the_next_turn(tmp_path, chat, pool):
    """A program printing a 64-column table filled a 4,096-token context, and the solution turn
    after it was cut off mid-program; observations now leave a whole turn free."""
    task = write_tabular_task(tmp_path / "task")
    code = ("import numpy as np, pandas as pd\n"
            "frame = pd.DataFrame(np.random.default_rng(0).random((20, 64)))\n"
            "print(frame.to_string())")
    texts = [_runs(code), ANSWER]
    config = AgentConfig(max_turns=3, context_tokens=4096, prompt_tokens=2048,
                              max_new_tokens=1536, exec_timeout_s=60,
                              exec_limits=Limits(wall_s=60, memory_bytes=2 << 30))
    policy = _Recording(chat, texts)
    trajectory = _run(task, policy, chat, pool, config)
    assert trajectory.info.termination == "answer"
    second = policy.requests[1]
    assert second.max_new_tokens == config.max_new_tokens  # the full turn, not what was left
    assert len(second.context_ids) + config.max_new_tokens <= config.context_tokens
    assert second.last_observation.startswith("exit code 0\n[... output cut")
    assert "submission.csv: not found" in second.last_observation


def test_a_failing_custom_grader_is_a_grader_error_never_an_engine_error(tmp_path, chat, pool):
    """A task graded by its own grade function (an imported competition whose metric is not
    registered): the reference agent still writes a submission, and the grader's crash is
    recorded as the grader's."""
    grader = "def grade(submission, answers):\n    raise ZeroDivisionError('grader bug')\n"
    task = write_tabular_task(tmp_path / "task")
    spec = dataclasses.replace(task.spec, metric="root-mean-squared-error-of-something",
                               grader="private/grader.py:grade", checksums={})
    public = {p.name: p for p in task.public_dir.iterdir()}
    private = {p.name: p for p in task.private_dir.iterdir()} | {"grader.py": grader}
    custom = task_lib.save_task(tmp_path / "custom", spec, public=public, private=private)
    trajectory = _run(custom, reference.ReferencePolicy(chat, tier="linear"), chat, pool)
    info = trajectory.info
    assert info.termination == "grader_error" and trajectory.failed, info
    assert "ZeroDivisionError: grader bug" in info.error
    assert info.executions >= 1  # the episode ran the agent's program before grading failed
