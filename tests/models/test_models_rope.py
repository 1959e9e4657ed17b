"""RoPE tables gathered from per-position rows equal the direct formula, padding included, and
the direct formula matches transformers' rotary embedding."""

import jax.numpy as jnp
import numpy as np
import torch
import transformers

from sandmle_jax.models.qwen3 import rope_tables


def test_gathered_tables_equal_the_direct_formula():
    mask = np.array([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])
    positions = jnp.maximum(jnp.cumsum(mask, axis=-1) - 1, 0)
    direct = rope_tables(positions, 16, 1e6)
    gathered = rope_tables(positions, 16, 1e6, below=6)
    for a, b in zip(gathered, direct):
        assert a.shape == (3, 6, 16)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_direct_formula_matches_transformers():
    config = transformers.Qwen3Config(head_dim=16, rope_theta=5e5, hidden_size=64,
                                      num_attention_heads=4)
    rotary = transformers.models.qwen3.modeling_qwen3.Qwen3RotaryEmbedding(config)
    positions = np.array([[0, 1, 2, 7, 300]])
    cos, sin = rotary(torch.zeros(1, 5, 16), torch.tensor(positions))
    ours = rope_tables(jnp.asarray(positions), 16, 5e5)
    np.testing.assert_allclose(ours[0], cos.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours[1], sin.numpy(), rtol=1e-5, atol=1e-6)
