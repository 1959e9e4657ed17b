"""Batched next-token sampling with per-row settings, jit-friendly (no shape depends on values).

Each row has its own temperature, top-k, top-p and PRNG key. The key for a row's n-th generated
token is `fold_in(request_key, n)`, so a seeded request samples the same tokens whichever other
requests share its batch and however decoding is chunked.

Order of operations (SGLang's): scale by temperature, keep the top-k logits, then the smallest
prefix of those whose probability mass reaches top-p (renormalised after top-k), sample. Greedy
rows (temperature 0 or top-k 1) take the argmax of the raw logits. The returned log-prob is
log_softmax(logits / temperature) at the chosen token, before truncation (temperature 1 for greedy
rows): the quantity the learner recomputes (`rl.grpo.token_logprobs`).
"""

import jax
import jax.numpy as jnp


def _truncate_and_sample(scaled: jax.Array, top_k: jax.Array, top_p: jax.Array,
                         keys: jax.Array) -> jax.Array:
    """scaled (B, V) fp32; top_k (B,) int (-1 = all); top_p (B,); keys (B, 2) -> tokens (B,)."""
    vocab = scaled.shape[-1]
    order = jnp.argsort(-scaled, axis=-1, stable=True)                     # (B, V) descending
    sorted_logits = jnp.take_along_axis(scaled, order, axis=-1)
    rank = jnp.arange(vocab)[None, :]
    k = jnp.where(top_k < 0, vocab, top_k)[:, None]
    sorted_logits = jnp.where(rank < k, sorted_logits, -jnp.inf)
    probs = jax.nn.softmax(sorted_logits, axis=-1)
    mass_before = jnp.cumsum(probs, axis=-1) - probs
    keep = (mass_before < top_p[:, None]) | (top_p[:, None] >= 1.0) | (rank == 0)
    sorted_logits = jnp.where(keep, sorted_logits, -jnp.inf)
    picked = jax.vmap(jax.random.categorical)(keys, sorted_logits)          # (B,) sorted index
    return jnp.take_along_axis(order, picked[:, None], axis=-1)[:, 0]


def sample(logits: jax.Array, temperature: jax.Array, top_k: jax.Array, top_p: jax.Array,
           request_keys: jax.Array, step: jax.Array) -> tuple[jax.Array, jax.Array]:
    """logits (B, V); per-row temperature, top_k, top_p (B,); request_keys (B, 2) uint32 raw
    keys; step (B,) index of the token being sampled -> (tokens (B,) int32, logprobs (B,) fp32)."""
    logits = logits.astype(jnp.float32)
    greedy = (temperature <= 0.0) | (top_k == 1)
    scale = jnp.where(greedy, 1.0, temperature)[:, None]
    scaled = logits / scale
    keys = jax.vmap(jax.random.fold_in)(request_keys, step)
    # Random draws cost more than a decode step of a small model: skip them for all-greedy batches.
    plain = jax.lax.cond(jnp.all(greedy), lambda: jnp.zeros(logits.shape[0], jnp.int32),
                         lambda: jax.vmap(jax.random.categorical)(keys, scaled).astype(jnp.int32))
    # Rows that truncate sample in sorted order; the others keep `plain`, so a row's draw never
    # depends on its neighbours' settings. The sort runs only when some row needs it.
    truncates = ~greedy & (((top_k > 0) & (top_k < logits.shape[-1])) | (top_p < 1.0))
    truncated = jax.lax.cond(jnp.any(truncates),
                             lambda: _truncate_and_sample(scaled, top_k, top_p, keys).astype(
                                 jnp.int32),
                             lambda: plain)
    sampled = jnp.where(truncates, truncated, plain)
    tokens = jnp.where(greedy, jnp.argmax(logits, axis=-1), sampled).astype(jnp.int32)
    logprobs = jax.nn.log_softmax(scaled, axis=-1)
    return tokens, jnp.take_along_axis(logprobs, tokens[:, None], axis=-1)[:, 0]
