"""The rollout engine a recipe's `rollout` config section asks for, and closing it.

One place for the trainer and `launch.evaluate`: the embedded engine over an HF Qwen3
directory (stopping on `<|im_end|>`), or the SGLang client over running servers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import jax.numpy as jnp

from sandmle_jax.models import hf
from sandmle_jax.rollout import engine as engine_lib


def engine_from_config(rollout, model_dir: str | os.PathLike, tokenizer, *,
                       sglang_urls: Sequence[str] | None = None) -> engine_lib.Engine:
    """`rollout.engine` ("embedded" or "sglang") built from the section's settings.

    `sglang_urls` overrides `rollout.sglang_urls` (e.g. from a command-line flag).
    """
    if rollout.engine == "embedded":
        return engine_lib.make_engine(
            "embedded", model=hf.load_model(str(model_dir), param_dtype=jnp.float32),
            num_slots=rollout.num_slots, max_len=rollout.max_len,
            decode_chunk=rollout.decode_chunk, seed=rollout.seed, tokenizer=tokenizer,
            eos_token_ids=(tokenizer.convert_tokens_to_ids("<|im_end|>"),))
    urls = list(sglang_urls or rollout.sglang_urls)
    if not urls:
        raise ValueError("the sglang engine needs server URLs (rollout.sglang_urls)")
    return engine_lib.make_engine(
        "sglang", urls=urls, weight_sync_urls=list(rollout.sglang_worker_urls) or None,
        request_timeout_s=rollout.request_timeout_s)


def close_engine(engine: engine_lib.Engine | None) -> None:
    """Stops an engine's background work, for engines that have any."""
    close = getattr(engine, "close", None)
    if close is not None:
        close()
