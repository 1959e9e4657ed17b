"""Chunked next-token log-probs from hidden states: the values and gradients of log-softmax on
whole logits (a float64 numpy re-derivation and autodiff), for any chunking; bf16 backward
matmuls; and the memory bound that is the point of chunking."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from sandmle_jax.models.head_logprobs import HeadInputs, chunk_positions, next_token_logprobs
from sandmle_jax.models.qwen3 import Qwen3, Qwen3Config
from sandmle_jax.rl import grpo

B, T, D, V = 3, 37, 16, 50


def _inputs(seed=0, dtype=jnp.float32):
    k = jax.random.split(jax.random.PRNGKey(seed), 3)
    hidden = jax.random.normal(k[0], (B, T, D), dtype)
    head = (0.5 * jax.random.normal(k[1], (D, V))).astype(dtype)
    tokens = jax.random.randint(k[2], (B, T), 0, V)
    return hidden, head, tokens


def _numpy_reference(hidden, head, tokens, temperature):
    z = np.asarray(hidden, np.float64) @ np.asarray(head, np.float64) / temperature
    log_q = z - z.max(-1, keepdims=True)
    log_q -= np.log(np.exp(log_q).sum(-1, keepdims=True))
    tokens = np.asarray(tokens)
    logp = np.zeros(tokens.shape)
    logp[:, 1:] = np.take_along_axis(log_q[:, :-1], tokens[:, 1:, None], -1)[..., 0]
    entropy = np.zeros(tokens.shape)
    entropy[:, 1:] = -(np.exp(log_q) * log_q).sum(-1)[:, :-1]
    return logp, entropy


def _fused(chunk, temperature, tokens):
    def f(hidden, head):
        inputs = HeadInputs(hidden, head, jnp.zeros(()), precision="highest")
        return next_token_logprobs(inputs, tokens, temperature, chunk_tokens=chunk)
    return f


def _whole(temperature, tokens):
    def f(hidden, head):
        logits = jnp.einsum("btd,dv->btv", hidden, head, precision="highest")
        return (grpo.token_logprobs(logits, tokens, temperature),
                grpo.token_entropy(logits, temperature))
    return f


@pytest.mark.parametrize("chunk", [None, 1000, 111, 10, 3, 1])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("differentiated", ["both", "logp", "entropy"])
def test_values_and_gradients_equal_whole_logits(chunk, temperature, differentiated):
    hidden, head, tokens = _inputs()
    fused = _fused(chunk, temperature, tokens)
    logp, entropy = fused(hidden, head)
    want_logp, want_entropy = _numpy_reference(hidden, head, tokens, temperature)
    np.testing.assert_allclose(logp, want_logp, atol=2e-5)
    np.testing.assert_allclose(entropy, want_entropy, atol=2e-5)
    # Both outputs carry gradients (an entropy bonus needs the second); an output left out of
    # the objective reaches the backward as a symbolic zero and is skipped there.
    k = jax.random.split(jax.random.PRNGKey(1), 2)
    w_logp, w_entropy = jax.random.normal(k[0], (B, T)), jax.random.normal(k[1], (B, T))

    def objective(f):
        def value(h, w):
            logp, entropy = f(h, w)
            if differentiated == "logp":
                entropy = jax.lax.stop_gradient(entropy)
            if differentiated == "entropy":
                logp = jax.lax.stop_gradient(logp)
            return jnp.sum(logp * w_logp) + jnp.sum(entropy * w_entropy)
        return value

    got = jax.grad(objective(fused), argnums=(0, 1))(hidden, head)
    want = jax.grad(objective(_whole(temperature, tokens)), argnums=(0, 1))(hidden, head)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
        assert np.abs(np.asarray(w)).max() > 1e-2


def test_chunk_positions():
    assert chunk_positions(4, 100, None) == 100
    assert chunk_positions(4, 100, 64) == 16
    assert chunk_positions(4, 100, 2) == 1       # at least one position per chunk
    assert chunk_positions(4, 10, 4096) == 10    # never more than the row
    with pytest.raises(ValueError, match="positive"):
        chunk_positions(4, 100, 0)


@pytest.mark.parametrize("chunk", [None, 16])
def test_bf16_backward_matmuls_are_bf16(chunk):
    hidden, head, tokens = _inputs(dtype=jnp.bfloat16)

    def loss(h, w):
        inputs = HeadInputs(h, w, jnp.zeros(()))
        return jnp.sum(next_token_logprobs(inputs, tokens, 1.0, chunk_tokens=chunk)[0])

    grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
    hlo = grad.lower(hidden, head).as_text()
    dots = [line for line in hlo.splitlines() if "stablehlo.dot_general" in line]
    operand_types = [line.rsplit(":", 1)[-1].split("->")[0] for line in dots]
    # Forward (fp32 result) and the two backward matmuls, all on bf16 operands.
    assert len(dots) >= 3 and all("bf16" in t and "f32" not in t for t in operand_types)
    g_hidden, g_head = grad(hidden, head)
    assert g_hidden.dtype == g_head.dtype == jnp.bfloat16


def test_chunks_bound_the_memory_of_a_step():
    """Value and gradient at a 32K vocabulary: whole logits need several (tokens, V) fp32
    buffers; 128-token chunks need a few (128, V) ones."""
    b, t, d, v = 2, 512, 64, 32768
    hidden = jax.ShapeDtypeStruct((b, t, d), jnp.float32)
    head = jax.ShapeDtypeStruct((d, v), jnp.float32)
    tokens = jax.ShapeDtypeStruct((b, t), jnp.int32)

    def temp_bytes(chunk):
        def loss(h, w, ids):
            inputs = HeadInputs(h, w, jnp.zeros(()))
            return jnp.sum(next_token_logprobs(inputs, ids, 1.0, chunk_tokens=chunk)[0])
        compiled = jax.jit(jax.value_and_grad(loss, argnums=(0, 1))).lower(
            hidden, head, tokens).compile()
        return compiled.memory_analysis().temp_size_in_bytes

    logits_bytes = b * t * v * 4  # 128 MiB; a chunk's logits are 16 MiB
    whole, chunked = temp_bytes(None), temp_bytes(128)
    # Observed on XLA:CPU: whole 128 MiB (the kept logits), chunked 24.5 MiB.
    assert whole >= logits_bytes
    assert chunked < logits_bytes / 4, (whole, chunked)


@pytest.mark.parametrize("config", [Qwen3Config.tiny(), Qwen3Config.tiny_moe()],
                         ids=["dense-tied", "moe-untied"])
def test_qwen3_head_inputs_give_its_logits_and_aux_loss(config):
    model = Qwen3(config, rngs=nnx.Rngs(0))
    ids = jax.random.randint(jax.random.PRNGKey(2), (2, 12), 0, config.vocab_size)
    mask = jnp.ones_like(ids).at[1, 9:].set(0)
    inputs = model.head_inputs(ids, attention_mask=mask)
    logits, aux = model.logits_and_aux(ids, attention_mask=mask)
    np.testing.assert_allclose(
        jnp.einsum("btd,dv->btv", inputs.hidden, inputs.head, precision="highest"), logits,
        rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(inputs.aux_loss, aux, rtol=1e-6)
    assert (float(aux) > 0) == config.is_moe
