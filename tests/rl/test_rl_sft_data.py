"""Collected SFT data: a token sequence -> messages -> rows in any student's tokenizer, with the
loss on exactly the text the policy wrote."""

import json

import pytest
from conftest import qwen_tokenizer_dir

from sandmle_jax.agent.chat import ChatFormat
from sandmle_jax.agent.trajectory import TokenSequence
from sandmle_jax.models import small_tokenizer, tokenizer as tokenizer_lib
from sandmle_jax.rl import sft_data

TOOLS = [{"type": "function", "function": {
    "name": "execute_python", "description": "Run Python code.",
    "parameters": {"type": "object", "properties": {"code": {"type": "string"}},
                   "required": ["code"]}}}]


@pytest.fixture(scope="module")
def chat():
    return ChatFormat.from_tokenizer(tokenizer_lib.load_tokenizer(str(qwen_tokenizer_dir())))


def _episode(chat, *, last_finished=True):
    """Built as the agent loop builds it: template prompt, generated turns, tool results."""
    seq = TokenSequence()
    seq.extend(chat.prompt_ids("You are an ML engineer.", "Predict the label.", TOOLS))
    first = chat.encode("<think>\nlook first\n</think>\n\n<tool_call>\n{\"name\": "
                        "\"execute_python\", \"arguments\": {\"code\": \"print(1)\"}}\n"
                        "</tool_call>") + [chat.im_end_id]
    seq.extend(first, generated=True, logprobs=[-0.5] * len(first))
    seq.extend(chat.close_turn_ids(first))
    seq.extend(chat.observation_ids("1\n"))
    seq.extend(chat.header_ids())
    second = chat.encode("<think>\ndone\n</think>\n\n<answer>submitted</answer>")
    if last_finished:
        second.append(chat.im_end_id)
    seq.extend(second, generated=True, logprobs=[-0.1] * len(second))
    seq.extend(chat.close_turn_ids(second))
    return seq


def _masked_text(chat, ids, mask):
    return chat.decode([t for t, m in zip(ids, mask) if m])


def test_messages_round_trip_to_the_same_text_and_loss_tokens(chat):
    seq = _episode(chat)
    messages = sft_data.messages_of(seq, chat)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant"]
    assert "execute_python" in messages[0]["content"]  # the tool block travels in the system
    assert messages[3]["content"] == "<tool_response>\n1\n\n</tool_response>"
    assert all(m["finished"] for m in messages if m["role"] == "assistant")
    ids, mask = sft_data.render(messages, chat)
    assert chat.decode(ids) == chat.decode(seq.ids)
    assert _masked_text(chat, ids, mask) == _masked_text(chat, seq.ids, seq.loss_mask)


def test_a_turn_cut_off_by_the_token_limit_teaches_no_stop(chat):
    seq = _episode(chat, last_finished=False)
    messages = sft_data.messages_of(seq, chat)
    assert messages[-1]["finished"] is False
    ids, mask = sft_data.render(messages, chat)
    assert chat.decode(ids) == chat.decode(seq.ids)  # the closing <|im_end|> is still there ...
    assert not _masked_text(chat, ids, mask).endswith("<|im_end|>")  # ... but not taught
    assert _masked_text(chat, ids, mask) == _masked_text(chat, seq.ids, seq.loss_mask)


def test_an_open_header_at_the_end_is_no_message(chat):
    seq = _episode(chat)
    seq.extend(chat.observation_ids("context full"))
    seq.extend(chat.header_ids())
    messages = sft_data.messages_of(seq, chat)
    assert messages[-1] == {"role": "user", "content": "<tool_response>\ncontext full\n"
                            "</tool_response>"}


def test_another_students_tokenizer_gets_the_same_text(chat, tmp_path):
    """The tiny recipe's own small tokenizer: other ids, the same conversation and loss text."""
    seq = _episode(chat)
    student_dir = tmp_path / "student"
    small_tokenizer.train_small_tokenizer(["predict the label", "print(1)"] * 20, 400,
                                          student_dir)
    student = ChatFormat.from_tokenizer(tokenizer_lib.load_tokenizer(str(student_dir)))
    ids, mask = sft_data.render(sft_data.messages_of(seq, chat), student)
    assert ids != seq.ids[:len(ids)]
    assert student.decode(ids) == chat.decode(seq.ids)
    assert _masked_text(student, ids, mask) == _masked_text(chat, seq.ids, seq.loss_mask)


def test_load_rows_leaves_out_rows_too_long_and_torn_last_lines(chat, tmp_path):
    messages = sft_data.messages_of(_episode(chat), chat)
    short = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]
    lines = [json.dumps({"messages": m, "provenance": {}}) for m in (messages, short)]
    (tmp_path / sft_data.FILE).write_text("\n".join(lines) + "\n{\"messages\": [")
    rows, too_long = sft_data.load_rows(tmp_path, chat, max_tokens=50)
    assert too_long == 1 and len(rows) == 1
    assert chat.decode([t for t, m in zip(rows[0].token_ids, rows[0].loss_mask) if m]) == \
        "ok<|im_end|>"


@pytest.mark.parametrize("message, error", [
    ({"role": "tool", "content": "x"}, "role"),
    ({"role": "user", "content": ["x"]}, "string content"),
])
def test_a_malformed_line_names_its_file_and_line(chat, tmp_path, message, error):
    good = json.dumps({"messages": [{"role": "user", "content": "hi"}]})
    bad = json.dumps({"messages": [message]})
    (tmp_path / sft_data.FILE).write_text(f"{good}\n{bad}\n")
    with pytest.raises(ValueError, match=f"sft.jsonl:2: .*{error}"):
        sft_data.load_rows(tmp_path, chat, max_tokens=1000)


def test_a_missing_directory_says_what_writes_it(chat, tmp_path):
    with pytest.raises(FileNotFoundError, match="launch.collect"):
        sft_data.load_rows(tmp_path, chat, max_tokens=1000)
