"""Who writes the assistant turns: any rollout engine, or the scripted reference agent.

The loop asks a `Policy` for one turn given the exact context ids; it never knows which engine
(embedded JAX, SGLang, ...) or script produced the tokens.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Protocol

from sandmle_jax.rollout import engine as engine_lib
from sandmle_jax.tasks.task import Task


@dataclasses.dataclass(frozen=True)
class TurnRequest:
    episode_id: str
    turn: int
    context_ids: tuple[int, ...]
    max_new_tokens: int
    stop_token_ids: tuple[int, ...]
    task: Task
    last_observation: str | None


@dataclasses.dataclass(frozen=True)
class TurnOutput:
    ids: tuple[int, ...]
    logprobs: tuple[float, ...]
    finish: str  # "stop" | "length" | "abort"
    weight_version: str


class Policy(Protocol):
    async def next_turn(self, request: TurnRequest) -> TurnOutput: ...


@dataclasses.dataclass
class EnginePolicy:
    """Samples turns from a rollout engine with fixed sampling settings (paper: T=1.0)."""

    engine: engine_lib.Engine
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    seed: int | None = None

    async def next_turn(self, request: TurnRequest) -> TurnOutput:
        seed = None if self.seed is None else zlib.crc32(
            f"{self.seed}/{request.episode_id}/{request.turn}".encode()) % (2**31)
        params = engine_lib.SamplingParams(
            temperature=self.temperature, top_p=self.top_p, top_k=self.top_k,
            max_new_tokens=request.max_new_tokens, stop_token_ids=request.stop_token_ids,
            seed=seed)
        (result,) = await self.engine.generate([engine_lib.GenerateRequest(
            request_id=f"{request.episode_id}-t{request.turn}", input_ids=request.context_ids,
            sampling_params=params)])
        if result.finish_reason.type == "abort":
            raise RuntimeError(f"generation aborted: {result.finish_reason.message}")
        return TurnOutput(ids=result.output_ids, logprobs=result.output_logprobs,
                          finish=result.finish_reason.type, weight_version=result.weight_version)
