"""Batched sampling: empirical frequencies match a numpy re-derivation of temperature, top-k and
top-p; greedy is argmax; a row's draws do not depend on its neighbours' settings."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sandmle_jax.rollout import sampling

LOGITS = np.log(np.array([0.30, 0.25, 0.15, 0.12, 0.08, 0.05, 0.03, 0.02]))


def _reference(logits, temperature, top_k, top_p):
    """Numpy: scale, keep top-k, keep the smallest prefix reaching top_p, renormalise."""
    p = np.exp(logits / temperature)
    p /= p.sum()
    order = np.argsort(-p, kind="stable")
    keep = np.zeros_like(p, bool)
    k = len(p) if top_k < 0 else top_k
    kept = p[order[:k]] / p[order[:k]].sum()
    mass = 0.0
    for rank, idx in enumerate(order[:k]):
        if mass >= top_p:
            break
        keep[idx] = True
        mass += kept[rank]
    q = np.where(keep, p, 0.0)
    return q / q.sum()


def _draw(temperature, top_k, top_p, n=20000):
    logits = jnp.broadcast_to(jnp.asarray(LOGITS, jnp.float32), (n, len(LOGITS)))
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(n))
    tokens, logprobs = jax.jit(sampling.sample)(
        logits, jnp.full(n, temperature, jnp.float32), jnp.full(n, top_k, jnp.int32),
        jnp.full(n, top_p, jnp.float32), keys.astype(jnp.uint32), jnp.zeros(n, jnp.int32))
    return np.asarray(tokens), np.asarray(logprobs)


@pytest.mark.parametrize("temperature, top_k, top_p", [
    (1.0, -1, 1.0), (0.5, -1, 1.0), (1.0, 3, 1.0), (1.0, -1, 0.6), (1.5, 5, 0.7)])
def test_frequencies_match_reference(temperature, top_k, top_p):
    tokens, logprobs = _draw(temperature, top_k, top_p)
    freq = np.bincount(tokens, minlength=len(LOGITS)) / len(tokens)
    expected = _reference(LOGITS, temperature, top_k, top_p)
    np.testing.assert_allclose(freq, expected, atol=0.012)
    assert np.all(expected[tokens] > 0)  # never a truncated token
    scaled = LOGITS / temperature
    full = scaled - np.log(np.exp(scaled).sum())
    np.testing.assert_allclose(logprobs, full[tokens], atol=1e-5)  # log-prob before truncation


def test_greedy_is_argmax_with_untempered_logprob():
    tokens, logprobs = _draw(0.0, -1, 1.0, n=4)
    assert np.all(tokens == 0)
    np.testing.assert_allclose(logprobs, np.log(0.30), atol=1e-6)


def test_row_draws_do_not_depend_on_neighbours():
    logits = jnp.asarray(np.stack([LOGITS, LOGITS]), jnp.float32)
    keys = jnp.stack([jax.random.PRNGKey(1), jax.random.PRNGKey(1)]).astype(jnp.uint32)
    step = jnp.array([4, 4], jnp.int32)
    sample = jax.jit(sampling.sample)
    for neighbour_k in (-1, 2):
        tokens, _ = sample(logits, jnp.array([1.0, 1.0]), jnp.array([-1, neighbour_k]),
                           jnp.ones(2), keys, step)
        alone, _ = sample(logits[:1], jnp.array([1.0]), jnp.array([-1]), jnp.ones(1),
                          keys[:1], step[:1])
        assert int(tokens[0]) == int(alone[0])
