"""Qwen3 chat format at the token level: the conversation grows by appending ids, never re-encoding.

The first prompt comes from the model's own chat template (system + task + tools + the
`<|im_start|>assistant\\n` generation header). After that, each assistant turn is exactly the
generated ids, closed by `<|im_end|>\\n` when generation did not end on it, and each tool
result is appended as the template would render a `tool` message:

    <|im_start|>user\\n<tool_response>\\n{text}\\n</tool_response><|im_end|>\\n<|im_start|>assistant\\n

so what the learner scores is what was sampled, token for token.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"


@dataclasses.dataclass(frozen=True)
class ChatFormat:
    tokenizer: Any
    im_end_id: int

    @classmethod
    def from_tokenizer(cls, tokenizer) -> ChatFormat:
        im_end = tokenizer.convert_tokens_to_ids(IM_END)
        if im_end is None or im_end == tokenizer.unk_token_id:
            raise ValueError(f"the tokenizer has no {IM_END} token; a Qwen3 chat tokenizer is "
                             "required")
        return cls(tokenizer=tokenizer, im_end_id=int(im_end))

    @property
    def start_id(self) -> int:
        """`<|im_start|>`: opens every message."""
        return int(self.tokenizer.convert_tokens_to_ids(IM_START))

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)

    def prompt_ids(self, system: str, user: str, tools: Sequence[dict] = ()) -> list[int]:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        text = self.tokenizer.apply_chat_template(
            messages, tools=list(tools) or None, tokenize=False, add_generation_prompt=True,
            enable_thinking=True)
        return self.encode(text)

    def close_turn_ids(self, generated: Sequence[int]) -> list[int]:
        """Ids that end an assistant turn: `<|im_end|>` if generation stopped short, then `\\n`."""
        closing = "\n" if generated and generated[-1] == self.im_end_id else IM_END + "\n"
        return self.encode(closing)

    def observation_ids(self, text: str) -> list[int]:
        """A tool result, rendered as Qwen3's template renders a `tool` message."""
        return self.encode(f"{IM_START}user\n<tool_response>\n{text}\n</tool_response>{IM_END}\n")

    def user_ids(self, text: str) -> list[int]:
        """A plain user message (how scaffolds without tool messages show results)."""
        return self.encode(f"{IM_START}user\n{text}{IM_END}\n")

    def header_ids(self) -> list[int]:
        """`<|im_start|>assistant\n`: opens every assistant turn."""
        return self.encode(f"{IM_START}assistant\n")

    def turn_text(self, generated: Sequence[int]) -> str:
        """The text of a generated turn without its end-of-turn token."""
        ids = list(generated)
        if ids and ids[-1] == self.im_end_id:
            ids = ids[:-1]
        return self.decode(ids)
