"""The blocked expert path (`moe_experts.blocked`, CPU and GPUs) against the ragged_dot one
(`grouped`, TPU), which backend gets which, and the SwiGLU both use.

HF parity of whole MoE models runs through the CPU path in test_models_parity.py; this pins the
two dropless implementations to each other, values and gradients, on routings that stress the
block padding (empty experts, every pair on one expert, fewer pairs than experts) at the CPU's
and the GPU's block sizes.
"""

import functools
import re

import jax
from jax.ad_checkpoint import print_saved_residuals
import jax.numpy as jnp
import numpy as np
import pytest

from sandmle_jax.models import moe_experts
from sandmle_jax.models.swiglu import swiglu

_HIGHEST = jax.lax.Precision.HIGHEST


def _random_experts(keys, num_experts, d, f):
    """(gate (E, D, F), up (E, D, F), down (E, F, D)), one key each."""
    shapes = [(num_experts, d, f), (num_experts, d, f), (num_experts, f, d)]
    return tuple(jax.random.normal(key, shape) for key, shape in zip(keys, shapes))


def _objective(experts_fn, flat, experts, router_logits, top_k):
    probs, top_experts = jax.lax.top_k(jax.nn.softmax(router_logits), top_k)
    y = experts_fn(flat, experts, top_experts, probs, precision=_HIGHEST)
    return jnp.sum(y * jnp.cos(jnp.arange(y.size, dtype=y.dtype).reshape(y.shape)))


@pytest.mark.parametrize("blocks_per_expert,max_rows", [(1, 128), (4, None)], ids=["cpu", "gpu"])
@pytest.mark.parametrize("tokens,num_experts,top_k,routing", [
        (300, 4, 2, "random"), (1024, 8, 2, "random"), (3, 16, 4, "random"),
        (40, 8, 1, "one_expert"), (40, 8, 2, "two_experts")])
def test_blocked_experts_match_grouped(tokens, num_experts, top_k, routing, blocks_per_expert,
                                       max_rows):
    d, f = 16, 8
    keys = jax.random.split(jax.random.key(tokens), 5)
    flat = jax.random.normal(keys[0], (tokens, d))
    experts = _random_experts(keys[1:4], num_experts, d, f)
    router_logits = jax.random.normal(keys[4], (tokens, num_experts))
    if routing != "random":  # experts 0 (and 1) get every token; the rest stay empty
        router_logits = router_logits + 100.0 * (jnp.arange(num_experts) < top_k)
    rows = moe_experts.rows_per_block(tokens * top_k, num_experts, blocks_per_expert, max_rows)
    blocked = functools.partial(moe_experts.blocked, rows=rows)
    results = [
            jax.jit(jax.value_and_grad(functools.partial(_objective, fn), argnums=(0, 1, 2)),
                    static_argnums=3)(flat, experts, router_logits, top_k)
            for fn in (moe_experts.grouped, blocked)]
    for grouped, blocked in zip(*map(jax.tree.leaves, results)):
        grouped, blocked = np.asarray(grouped), np.asarray(blocked)
        np.testing.assert_allclose(blocked, grouped, atol=1e-5 * np.abs(grouped).max())


@pytest.mark.parametrize("platform,ragged", [
        ("cpu", False), ("cuda", False), ("rocm", False), ("tpu", True)])
def test_ragged_dot_only_where_xla_groups_it(platform, ragged):
    """XLA:CPU and XLA's GPU pipeline expand ragged_dot to every expert over every row, so they
    must lower the blocked path, forward and backward; lowered from this CPU host."""
    tokens, d, f, num_experts, top_k = 64, 16, 8, 4, 2
    experts = (jnp.ones((num_experts, d, f)), jnp.ones((num_experts, d, f)),
               jnp.ones((num_experts, f, d)))
    top_experts = jnp.zeros((tokens, top_k), jnp.int32)
    top_probs = jnp.full((tokens, top_k), 0.5)

    def loss(flat, experts):
        return jnp.sum(moe_experts.apply_experts(flat, experts, top_experts, top_probs, None))

    step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    text = step.trace(jnp.ones((tokens, d)), experts).lower(
            lowering_platforms=(platform,)).as_text()
    assert ("ragged_dot" in text) == ragged
    assert ("dot_general" in text) != ragged


def test_blocked_experts_keep_no_gathered_weights_for_the_backward(capsys):
    """The (C, D, F) block weights are C/E times the expert weights (~5x on GPUs, per layer):
    the backward pass gathers them again instead of saving them from the forward pass."""
    tokens, d, f, num_experts, top_k = 256, 16, 8, 4, 2
    keys = jax.random.split(jax.random.key(0), 5)
    experts = _random_experts(keys[:3], num_experts, d, f)
    probs, top_experts = jax.lax.top_k(
            jax.nn.softmax(jax.random.normal(keys[3], (tokens, num_experts))), top_k)
    blocked = functools.partial(moe_experts.blocked, rows=16, precision=None)
    print_saved_residuals(
            lambda flat, experts, probs: jnp.sum(blocked(flat, experts, top_experts, probs)),
            jax.random.normal(keys[4], (tokens, d)), experts, probs)
    saved = capsys.readouterr().out
    assert "from the argument" in saved  # the expert weights themselves, already alive
    assert not re.search(r"\[\d+,\d+,\d+\] output of gather", saved), saved


def test_gpu_blocks_bound_padding_and_gathered_weights():
    """At the GPU's block size a layer computes at most ~1.5x its pairs' rows and gathers at most
    ~5x the expert weights, from tiny batches up to Qwen3-30B-A3B's (128 experts, top-8)."""
    for num_experts, top_k in [(8, 2), (128, 8)]:
        for tokens in [512, 4096, 16384, 65536, 1 << 20]:
            pairs = tokens * top_k
            rows = moe_experts.rows_per_block(pairs, num_experts, 4, None)
            blocks = -(-pairs // rows) + num_experts - 1
            assert (num_experts - 1) * rows <= pairs / 2 or rows == 8, (tokens, rows)
            assert blocks <= 5 * num_experts, (tokens, rows, blocks)


def test_swiglu_backward_equals_autodiff():
    gate, up, cotangent = jax.random.normal(jax.random.key(1), (3, 64, 32))
    got_out, got_vjp = jax.vjp(swiglu, gate, up)
    want_out, want_vjp = jax.vjp(lambda g, u: jax.nn.silu(g) * u, gate, up)
    np.testing.assert_allclose(got_out, want_out, rtol=1e-6)
    for got, want in zip(got_vjp(cotangent), want_vjp(cotangent)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
