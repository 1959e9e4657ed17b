"""bf16 training runs every matmul of the backward pass in bf16, the LM head's included (its
forward returns fp32 logits), with gradients as close to the fp32 model's as bf16 allows."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from sandmle_jax.models.qwen3 import Qwen3, Qwen3Config

CONFIGS = {"dense": Qwen3Config.tiny(tie_word_embeddings=False), "moe": Qwen3Config.tiny_moe()}


def _nll(model, ids):
    """Next-token NLL in the learner's form (logsumexp minus the picked logit)."""
    logits = model(ids)[:, :-1]
    picked = jnp.take_along_axis(logits, ids[:, 1:, None], axis=-1)[..., 0]
    return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - picked)


def _models(config):
    fp32 = Qwen3(config, rngs=nnx.Rngs(0))
    bf16 = Qwen3(config, rngs=nnx.Rngs(0), param_dtype=jnp.bfloat16)
    nnx.update(bf16, jax.tree.map(lambda x: x.astype(jnp.bfloat16), nnx.state(fp32)))
    return fp32, bf16


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_bf16_backward_has_no_fp32_matmul(name):
    _, model = _models(CONFIGS[name])
    ids = jnp.zeros((2, 40), jnp.int32)
    graphdef = nnx.graphdef(model)
    grad = jax.jit(lambda state: jax.grad(lambda s: _nll(nnx.merge(graphdef, s), ids))(state))
    hlo = grad.lower(nnx.state(model)).as_text()
    dots = [line for line in hlo.splitlines() if "stablehlo.dot_general" in line]
    operand_types = [line.rsplit(":", 1)[-1].split("->")[0] for line in dots]
    assert dots and all("bf16" in t and "f32" not in t for t in operand_types), operand_types


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_bf16_gradients_match_fp32_within_bf16_rounding(name):
    fp32, bf16 = _models(CONFIGS[name])
    ids = jax.random.randint(jax.random.key(0), (2, 40), 0, CONFIGS[name].vocab_size)
    expected = jax.tree.leaves(nnx.grad(_nll)(fp32, ids))
    got = jax.tree.leaves(nnx.grad(_nll)(bf16, ids))
    assert all(g.dtype == jnp.bfloat16 for g in got)
    errors = [np.linalg.norm(np.asarray(g, np.float64) - np.asarray(e, np.float64))
              / np.linalg.norm(np.asarray(e, np.float64)) for g, e in zip(got, expected)]
    # Observed: median 1.1e-2, max 3.3e-2 (a q_norm weight, a sum over every token and head);
    # the same as before the LM head's backward moved to bf16 (median 1.1e-2, max 3.2e-2).
    assert np.median(errors) <= 2e-2 and max(errors) <= 6e-2, errors
