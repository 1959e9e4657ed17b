"""The context budget: which messages the next turn sees, pruned as SANDMLE.md prescribes.

When the next turn would overflow the context, first the turns whose tool output was an error
are dropped (oldest first, each with its assistant message); if that is not enough, only the
system + task prompt and the last two messages are kept. Token ids of kept messages are reused
as they are: nothing is re-encoded.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Message:
    ids: list[int]
    role: str  # "assistant" | "observation"
    is_error: bool = False


@dataclasses.dataclass
class Context:
    prompt_ids: list[int]
    header_ids: list[int]  # `<|im_start|>assistant\n`, opening every assistant turn
    max_tokens: int
    messages: list[Message] = dataclasses.field(default_factory=list)

    def ids(self) -> list[int]:
        """The ids the next turn is generated from, ending with the assistant header."""
        out = list(self.prompt_ids)
        for message in self.messages:
            out += message.ids
        return out + self.header_ids

    def room(self) -> int:
        """Tokens the next turn may generate."""
        return self.max_tokens - len(self.ids())

    def prune(self, min_room: int) -> bool:
        """Drops messages until `min_room` tokens are free; returns whether anything was dropped."""
        if self.room() >= min_room:
            return False
        before = len(self.messages)
        i = 0
        while self.room() < min_room and i < len(self.messages) - 1:
            observation = self.messages[i + 1]  # messages alternate: assistant, observation
            if observation.is_error:
                del self.messages[i:i + 2]
            else:
                i += 2
        if self.room() < min_room:
            self.messages = self.messages[-2:]
        return len(self.messages) != before
