"""The context budget: which messages the next turn sees, pruned as SANDMLE.md prescribes.

When the next turn would overflow the context, first the turns whose tool output was an error
are dropped (oldest first, each with its assistant message); if that is not enough, only the
system + task prompt and the last two messages are kept. Token ids of kept messages are reused
as they are: nothing is re-encoded.

Observations are bounded before they enter: one may take at most what leaves a whole next turn
(`max_new_tokens`) free beside the prompt and the turn that called it, which is all that
pruning keeps. Without the bound, one wide table printed by an exploration step filled a small
context, and the solution turn after it was cut off mid-program.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

MIN_OBSERVATION_TOKENS = 64  # the status line and a few lines of output, whatever the budget
CUT_MARK = "[... output cut to fit the context ...]"


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

    def observation_budget(self, next_turn_tokens: int) -> int:
        """Tokens the observation of the last assistant turn may take so that the prompt, that
        turn and the observation leave `next_turn_tokens` free."""
        last = len(self.messages[-1].ids) if self.messages else 0
        free = self.max_tokens - len(self.prompt_ids) - last - len(self.header_ids)
        return max(MIN_OBSERVATION_TOKENS, free - next_turn_tokens)

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


def fit_observation(text: str, render: Callable[[str], list[int]],
                    budget: int) -> tuple[str, list[int]]:
    """(text, ids) of an observation cut to at most `budget` rendered tokens where possible:
    its first line (the exit status) and as much of its end as fits, the end being where
    errors and the submission's state are."""
    ids = render(text)
    if len(ids) <= budget:
        return text, ids
    first, _, rest = text.partition("\n")
    keep = len(rest)
    while True:
        keep = int(keep * min(0.9, budget / len(ids)))
        cut = f"{first}\n{CUT_MARK}" + (f"\n{rest[-keep:]}" if keep > 0 else "")
        ids = render(cut)
        if len(ids) <= budget or keep <= 0:
            return cut, ids
