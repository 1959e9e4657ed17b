"""The cache-free einsum attention in causal query blocks against the same model in one block:
equal real-token logits and equal gradients of a loss over real tokens (left and right padding).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import hf_tiny
from sandmle_jax.models import qwen3


def _loss_and_grads(model, ids, mask):
    def loss(model):
        logits = model(ids, attention_mask=mask)
        return jnp.sum(jnp.where(mask[..., None] == 1, jnp.tanh(logits), 0.0))

    return nnx.value_and_grad(loss)(model)


@pytest.mark.parametrize("left_pad", [False, True], ids=["right_pad", "left_pad"])
def test_query_blocks_change_no_real_value_or_gradient(monkeypatch, left_pad):
    config = qwen3.Qwen3Config.tiny(vocab_size=64, hidden_size=32, intermediate_size=48,
                                    num_hidden_layers=2, num_attention_heads=4,
                                    num_key_value_heads=2, head_dim=8)
    model = qwen3.Qwen3(config, rngs=nnx.Rngs(3))
    ids, mask, _ = hf_tiny.batch(config.vocab_size, seed=1, left_pad=left_pad, slots=131)
    ids, mask = jnp.asarray(ids), jnp.asarray(mask)

    blocked_logits = model(ids, attention_mask=mask)
    blocked_loss, blocked_grads = _loss_and_grads(model, ids, mask)
    monkeypatch.setattr(qwen3, "_CAUSAL_BLOCKS", 1)
    whole_logits = model(ids, attention_mask=mask)
    whole_loss, whole_grads = _loss_and_grads(model, ids, mask)

    real = np.asarray(mask, bool)
    np.testing.assert_allclose(np.asarray(blocked_logits)[real], np.asarray(whole_logits)[real],
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(float(blocked_loss), float(whole_loss), rtol=1e-5)
    for blocked, whole in zip(jax.tree.leaves(blocked_grads), jax.tree.leaves(whole_grads)):
        # fp32 sums in another order: compare whole tensors (elementwise, one of 512 entries of
        # a large gradient differs by 4e-6 absolute).
        whole = np.asarray(whole, np.float64)
        assert np.linalg.norm(np.asarray(blocked) - whole) <= 1e-5 * np.linalg.norm(whole)
