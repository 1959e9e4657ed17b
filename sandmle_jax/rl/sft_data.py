"""Collected SFT data: trajectories as chat messages with provenance, and back to learner rows.

One JSONL line per token sequence of a kept episode (a pruned episode gives several):

    {"messages": [{"role": "system"|"user"|"assistant", "content": str,
                   "finished": bool (assistant only)}, ...],
     "provenance": {"policy", "model", "task_id", "seed", "episode_id", "sequence", "score",
                    "reward", "medal", "valid_submission", "termination", "scaffold"}}

Messages hold the conversation verbatim, as the policy saw it (the system message already holds
the tool block; tool results are user messages wrapped in <tool_response>), so a student with
another tokenizer can be trained on exactly that text. `render` lays the messages out the way the
token-level chat (agent/chat.py) built them, not through the chat template: Qwen3's template drops
earlier turns' <think> blocks, which the policy did see. Loss falls on assistant content and on
the `<|im_end|>` closing a turn the policy finished itself (`finished`: a turn cut off by the
token limit teaches no stop).
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterable, Sequence
from typing import Any

from sandmle_jax.agent.chat import IM_END, IM_START, ChatFormat
from sandmle_jax.agent.trajectory import TokenSequence
from sandmle_jax.rl import episodes

FILE = "sft.jsonl"
ROLES = ("system", "user", "assistant")


def messages_of(sequence: TokenSequence, chat: ChatFormat) -> list[dict[str, Any]]:
    """A token sequence -> its messages; an open assistant header left at the end is dropped."""
    starts = [i for i, t in enumerate(sequence.ids) if t == chat.start_id]
    messages = []
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(sequence.ids)
        text = chat.decode(sequence.ids[start:end])[len(IM_START):]
        role, _, rest = text.partition("\n")
        content, closed, _ = rest.partition(IM_END)
        message: dict[str, Any] = {"role": role, "content": content}
        if role == "assistant":
            closers = [i for i in range(start, end) if sequence.ids[i] == chat.im_end_id]
            message["finished"] = bool(closers) and bool(sequence.loss_mask[closers[0]])
            if not closed and not content:
                continue  # the header of a turn never generated
        messages.append(message)
    return messages


def render(messages: Sequence[dict[str, Any]], chat: ChatFormat) -> tuple[list[int], list[int]]:
    """Messages -> (ids, loss mask) in `chat`'s tokenizer, laid out as the agent's chat does."""
    ids: list[int] = []
    mask: list[int] = []

    def put(text: str, loss: int) -> None:
        if text:
            piece = chat.encode(text)
            ids.extend(piece)
            mask.extend([loss] * len(piece))

    for m in messages:
        role = m.get("role")
        if role not in ROLES or not isinstance(m.get("content"), str):
            raise ValueError(f"a message needs a role of {ROLES} and string content, got "
                             f"{ {k: type(v).__name__ for k, v in m.items()} }")
        put(f"{IM_START}{role}\n", 0)
        if role == "assistant":
            put(m["content"], 1)
            put(IM_END, 1 if m.get("finished", True) else 0)
            put("\n", 0)
        else:
            put(f"{m['content']}{IM_END}\n", 0)
    return ids, mask


def write_lines(path: pathlib.Path, records: Iterable[dict[str, Any]]) -> int:
    """Appends records as JSONL lines, flushed line by line (a killed run keeps whole lines)."""
    count = 0
    with path.open("a") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
            f.flush()
            count += 1
    return count


def read_lines(path: pathlib.Path) -> list[dict[str, Any]]:
    """The JSONL records of `path`; a torn last line (a killed writer) is skipped."""
    if not path.is_file():
        return []
    records = []
    lines = path.read_text().splitlines()
    for n, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if n < len(lines):
                raise ValueError(f"{path}:{n}: not a JSON line") from None
    return records


def load_rows(data_dir: str | pathlib.Path, chat: ChatFormat, max_tokens: int
              ) -> tuple[list[episodes.Row], int]:
    """A collected directory's conversations as learner rows in `chat`'s tokenizer; returns
    (rows, how many were longer than `max_tokens` and left out)."""
    path = pathlib.Path(data_dir) / FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no collected SFT data there (python -m launch.collect "
                                "writes it)")
    rows, too_long = [], 0
    for n, record in enumerate(read_lines(path), 1):
        try:
            ids, mask = render(record["messages"], chat)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}:{n}: {e}") from None
        if len(ids) > max_tokens:
            too_long += 1
        elif any(mask):
            rows.append(episodes.Row(tuple(ids), tuple(mask), (0.0,) * len(ids)))
    return rows, too_long
