"""The reference agent in the Dojo scaffold: the same programs as in ours (agent/strategies.py),
sent as Dojo actions, so the two scaffolds can be compared on equal solutions."""

from __future__ import annotations

import dataclasses
import json

from sandmle_jax.agent import strategies
from sandmle_jax.agent.chat import IM_END, ChatFormat
from sandmle_jax.agent.policy import TurnOutput, TurnRequest
from sandmle_jax.dojo import scaffold

VERSION = "reference"


def _action(name: str, **params) -> str:
    return json.dumps({"action": name, "params": params})


@dataclasses.dataclass
class DojoReferencePolicy:
    """Asks for the competition's information, executes its tier's program (the constant one
    if that fails to score), then ends."""

    chat: ChatFormat
    tier: str = strategies.TUNED

    def __post_init__(self):
        strategies.check_tier(self.tier)

    def _plan(self, request: TurnRequest) -> str:
        last = request.last_observation or ""
        if request.turn == 0:
            return _action("request_info", info_type="all")
        if request.turn == 1:
            return _action("execute_code", code=strategies.solution_code(request.task, self.tier))
        if request.turn == 2 and "submission: valid" not in last:
            return _action("execute_code",
                           code=strategies.solution_code(request.task, "constant"))
        return _action(scaffold.END)

    async def next_turn(self, request: TurnRequest) -> TurnOutput:
        ids = self.chat.encode(self._plan(request) + IM_END)[:request.max_new_tokens]
        finish = "stop" if ids and ids[-1] == self.chat.im_end_id else "length"
        return TurnOutput(ids=tuple(ids), logprobs=(0.0,) * len(ids), finish=finish,
                          weight_version=VERSION)
