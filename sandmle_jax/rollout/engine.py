"""The rollout-engine contract: token ids in, token ids + log-probs out, whoever generates.

The agent scaffold and the trainer talk to an `Engine` only, so a run switches between the
embedded JAX sampler (one machine, CI) and SGLang servers (scale) by a registry name. Nothing here
tokenises: trajectories are never re-tokenised, so what the learner scores is exactly what was
sampled.

Field names follow SGLang's `sampling_params` and `meta_info` (see `sglang_protocol.py`), so a
request crosses the HTTP boundary without renaming anything but `seed` (SGLang: `sampling_seed`).
"""

import dataclasses
import importlib
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

FinishType = Literal["stop", "length", "abort"]


@dataclasses.dataclass(frozen=True)
class SamplingParams:
    """How to sample one request; defaults match SGLang's `SamplingParams` except top_k = -1.

    temperature == 0 means greedy (SGLang turns it into top_k = 1). `stop_token_ids` are added to
    the model's EOS ids; `stop` strings need a tokenizer on the engine side, as in SGLang.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    max_new_tokens: int = 128
    stop_token_ids: tuple[int, ...] = ()
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self):
        if not math.isfinite(self.temperature) or self.temperature < 0:
            raise ValueError(f"temperature must be finite and >= 0, got {self.temperature}.")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}.")
        if self.top_k != -1 and self.top_k < 1:
            raise ValueError(f"top_k must be -1 (whole vocabulary) or >= 1, got {self.top_k}.")
        if self.max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {self.max_new_tokens}.")
        object.__setattr__(self, "stop_token_ids", tuple(int(t) for t in self.stop_token_ids))
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)
        if any(not s for s in stop):
            raise ValueError(f"stop strings must be non-empty, got {stop!r}.")
        object.__setattr__(self, "stop", stop)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0 or self.top_k == 1


@dataclasses.dataclass(frozen=True)
class GenerateRequest:
    """One prompt to continue. `request_id` is SGLang's `rid`: unique among requests in flight."""

    request_id: str
    input_ids: tuple[int, ...]
    sampling_params: SamplingParams = SamplingParams()

    def __post_init__(self):
        if not self.request_id:
            raise ValueError("request_id must be a non-empty string (SGLang's rid).")
        ids = tuple(int(t) for t in self.input_ids)
        if not ids:
            raise ValueError(f"request {self.request_id!r}: input_ids is empty; "
                             "a prompt needs at least one token.")
        object.__setattr__(self, "input_ids", ids)


@dataclasses.dataclass(frozen=True)
class FinishReason:
    """SGLang's `meta_info.finish_reason`: why generation ended.

    stop: `matched` is the stop token id or stop string; length: `length` = max_new_tokens hit;
    abort: `message` says why (cancelled, server paused with mode=abort, error).
    """

    type: FinishType
    matched: int | str | None = None
    length: int | None = None
    message: str | None = None


@dataclasses.dataclass(frozen=True)
class GenerateResult:
    """What came back for one request.

    `output_logprobs[i]` is log p(output_ids[i]) under the sampling distribution before
    truncation: log_softmax(logits / temperature) (temperature 1 when greedy), the quantity a
    learner recomputes for the same tokens. `weight_version` names the weights at finish time.
    """

    request_id: str
    output_ids: tuple[int, ...]
    output_logprobs: tuple[float, ...]
    finish_reason: FinishReason
    weight_version: str
    prompt_tokens: int

    def __post_init__(self):
        if len(self.output_ids) != len(self.output_logprobs):
            raise ValueError(f"request {self.request_id!r}: {len(self.output_ids)} output ids "
                             f"but {len(self.output_logprobs)} log-probs.")


@runtime_checkable
class Engine(Protocol):
    """Anything that turns `GenerateRequest`s into `GenerateResult`s.

    `generate` returns results in request order and may run requests concurrently;
    `update_weights` swaps the policy (a params pytree for the embedded engine, an HF directory
    for every engine) and bumps `weight_version`; `abort` ends one in-flight request early, its
    result then has finish type "abort".
    """

    @property
    def weight_version(self) -> str: ...

    async def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]: ...

    async def update_weights(self, weights: Any, version: str | None = None) -> str: ...

    async def abort(self, request_id: str) -> None: ...


_ENGINES: dict[str, Callable[..., Engine]] = {}


def register_engine(name: str):
    """Class decorator: make an engine constructible by `make_engine(name, ...)`."""
    def wrap(factory):
        if name in _ENGINES:
            raise ValueError(f"rollout engine {name!r} is registered twice.")
        _ENGINES[name] = factory
        return factory
    return wrap


# Where the built-in engines register themselves; imported on first use so that asking for the
# SGLang client never imports JAX and vice versa.
_BUILTIN_MODULES = {
    "embedded": "sandmle_jax.rollout.embedded",
    "sglang": "sandmle_jax.rollout.sglang_client",
}


def make_engine(name: str, **kwargs) -> Engine:
    """Builds a registered engine by name ("embedded", "sglang", or any registered later)."""
    if name not in _ENGINES and name in _BUILTIN_MODULES:
        importlib.import_module(_BUILTIN_MODULES[name])
    if name not in _ENGINES:
        raise KeyError(f"unknown rollout engine {name!r}; known: "
                       f"{sorted(set(_ENGINES) | set(_BUILTIN_MODULES))}.")
    return _ENGINES[name](**kwargs)


def next_version(current: str) -> str:
    """The default version after `current`: integer + 1, or `current` + '+1' if not an integer."""
    return str(int(current) + 1) if current.lstrip("-").isdigit() else f"{current}+1"
