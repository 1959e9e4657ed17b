"""The rollout engine a recipe's `rollout` config section asks for, and closing it.

One place for the trainer and `launch.evaluate`: the embedded engine over an HF Qwen3
directory (stopping on `<|im_end|>` and generation_config.json's EOS ids, as SGLang does), or
the SGLang client over running servers (the API key, if any, from the variable named by
`rollout.sglang_api_key_env`).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence

import jax.numpy as jnp

from sandmle_jax.models import hf
from sandmle_jax.rollout import engine as engine_lib
from sandmle_jax.rollout.embedded import generation_eos_ids


def engine_from_config(rollout, model_dir: str | os.PathLike, tokenizer, *,
                       sglang_urls: Sequence[str] | None = None) -> engine_lib.Engine:
    """`rollout.engine` ("embedded" or "sglang") built from the section's settings.

    `sglang_urls` overrides `rollout.sglang_urls` (e.g. from a command-line flag).
    """
    if rollout.engine == "embedded":
        stop = (tokenizer.convert_tokens_to_ids("<|im_end|>"), *generation_eos_ids(str(model_dir)))
        return engine_lib.make_engine(
            "embedded", model=hf.load_model(str(model_dir), param_dtype=jnp.float32),
            num_slots=rollout.num_slots, max_len=rollout.max_len,
            decode_chunk=rollout.decode_chunk, seed=rollout.seed, tokenizer=tokenizer,
            eos_token_ids=tuple(dict.fromkeys(stop)))
    urls = list(sglang_urls or rollout.sglang_urls)
    if not urls:
        raise ValueError("the sglang engine needs server URLs (rollout.sglang_urls)")
    key_env = rollout.get("sglang_api_key_env", "")
    return engine_lib.make_engine(
        "sglang", urls=urls, weight_sync_urls=list(rollout.sglang_worker_urls) or None,
        request_timeout_s=rollout.request_timeout_s,
        api_key=os.environ.get(key_env) if key_env else None)


async def close_engine(engine: engine_lib.Engine | None) -> None:
    """Stops an engine's background work (the embedded engine's thread, the SGLang client's
    HTTP session), for engines that have any."""
    close = getattr(engine, "close", None)
    if close is not None:
        done = close()
        if inspect.isawaitable(done):
            await done
