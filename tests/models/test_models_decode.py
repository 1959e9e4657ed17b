"""KV-cache decoding (prefill + per-step, per-sequence positions) equals the full forward."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from sandmle_jax.models.qwen3 import Qwen3, Qwen3Config

CONFIGS = {"dense": Qwen3Config.tiny(), "moe": Qwen3Config.tiny_moe()}


@nnx.jit
def _step(model, ids, mask, cache):
    return model(ids, attention_mask=mask, cache=cache)


@nnx.jit
def _full(model, ids):
    return model(ids)


def _prompts(left_pad: bool):
    rng = np.random.RandomState(1)
    lengths = (7, 4, 2)
    ids = np.zeros((3, 7), np.int32)
    mask = np.zeros((3, 7), np.int32)
    for row, length in enumerate(lengths):
        where = slice(7 - length, 7) if left_pad else slice(0, length)
        ids[row, where] = rng.randint(2, 256, size=length)
        mask[row, where] = 1
    return ids, mask


def _greedy_with_cache(model, ids, mask, steps: int):
    """Greedy tokens and the logits of each fed position, per sequence."""
    cache = model.init_cache(ids.shape[0], 16)
    logits, cache = _step(model, jnp.asarray(ids), jnp.asarray(mask), cache)
    last = np.array([np.nonzero(row)[0][-1] for row in mask])
    per_step = [np.asarray(logits)[np.arange(len(last)), last]]
    generated = []
    for _ in range(steps):
        token = per_step[-1].argmax(-1).astype(np.int32)
        generated.append(token)
        logits, cache = _step(model, jnp.asarray(token[:, None]),
                              jnp.ones((len(token), 1), jnp.int32), cache)
        per_step.append(np.asarray(logits)[:, 0])
    return np.stack(generated, 1), np.stack(per_step, 1), cache


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("left_pad", [False, True], ids=["right_pad", "left_pad"])
def test_cached_greedy_decoding_equals_full_forward(name, left_pad):
    model = Qwen3(CONFIGS[name], rngs=nnx.Rngs(0))
    ids, mask = _prompts(left_pad)
    steps = 4
    generated, step_logits, cache = _greedy_with_cache(model, ids, mask, steps)
    for row in range(ids.shape[0]):
        prompt = ids[row][mask[row].astype(bool)]
        sequence = np.concatenate([prompt, generated[row]])
        full = np.asarray(_full(model, jnp.asarray(sequence[None])))[0]
        expected = full[len(prompt) - 1:]  # logits after the last prompt token, then each new one
        np.testing.assert_allclose(step_logits[row], expected, rtol=1e-5, atol=1e-5)
    # Each sequence's next slot follows its own tokens: right-padded rows continue at their length.
    prompt_end = 7 if left_pad else mask.sum(1)
    np.testing.assert_array_equal(np.asarray(cache.end), prompt_end + steps)
    np.testing.assert_array_equal(np.asarray(cache.kv_mask).sum(1), mask.sum(1) + steps)


def test_chunked_prefill_equals_one_prefill():
    model = Qwen3(CONFIGS["dense"], rngs=nnx.Rngs(0))
    ids, mask = _prompts(left_pad=False)
    whole, _ = _step(model, jnp.asarray(ids), jnp.asarray(mask), model.init_cache(3, 16))
    cache = model.init_cache(3, 16)
    first, cache = _step(model, jnp.asarray(ids[:, :3]), jnp.asarray(mask[:, :3]), cache)
    second, cache = _step(model, jnp.asarray(ids[:, 3:]), jnp.asarray(mask[:, 3:]), cache)
    chunked = np.concatenate([first, second], axis=1)
    valid = mask.astype(bool)
    np.testing.assert_allclose(chunked[valid], np.asarray(whole)[valid], rtol=1e-5, atol=1e-5)


def test_masked_token_leaves_a_finished_sequence_untouched():
    model = Qwen3(CONFIGS["dense"], rngs=nnx.Rngs(0))
    ids, mask = _prompts(left_pad=False)
    _, cache = _step(model, jnp.asarray(ids), jnp.asarray(mask), model.init_cache(3, 16))
    token = jnp.array([[5], [6], [7]], jnp.int32)
    step_mask = jnp.array([[1], [0], [1]], jnp.int32)  # sequence 1 has finished
    _, after = _step(model, token, step_mask, cache)
    np.testing.assert_array_equal(np.asarray(after.end), np.asarray(cache.end) + [1, 0, 1])
    np.testing.assert_array_equal(np.asarray(after.kv_mask[1]), np.asarray(cache.kv_mask[1]))


def test_explicit_positions_enter_rope():
    """positions= overrides the default; RoPE is relative: a uniform shift changes nothing,
    a gap before the last token changes only that token's logits."""
    model = Qwen3(CONFIGS["dense"], rngs=nnx.Rngs(0))
    ids = jnp.asarray(np.random.RandomState(0).randint(2, 256, (1, 5)))
    default = np.asarray(model(ids))
    same = np.asarray(model(ids, positions=jnp.arange(5)[None]))
    shifted = np.asarray(model(ids, positions=jnp.arange(5)[None] + 3))
    gap = np.asarray(model(ids, positions=jnp.array([[0, 1, 2, 3, 9]])))
    np.testing.assert_array_equal(default, same)
    np.testing.assert_allclose(default, shifted, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(default[:, :4], gap[:, :4], rtol=1e-5, atol=1e-6)
    assert np.abs(default[:, 4] - gap[:, 4]).max() > 1e-3


def test_remat_gives_same_loss_and_grads():
    config = CONFIGS["moe"]
    ids = jnp.asarray(np.random.RandomState(0).randint(2, 256, (2, 6)))

    def loss(model):
        logits, aux = model.logits_and_aux(ids)
        return jnp.mean(jax.nn.logsumexp(logits, -1)) + aux

    plain = nnx.jit(nnx.value_and_grad(loss))(Qwen3(config, rngs=nnx.Rngs(0)))
    remat = nnx.jit(nnx.value_and_grad(loss))(Qwen3(config, rngs=nnx.Rngs(0), remat=True))
    np.testing.assert_allclose(plain[0], remat[0], rtol=1e-6)
    for a, b in zip(jax.tree.leaves(plain[1]), jax.tree.leaves(remat[1])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_fused_attention_matches_einsum_on_right_padded_batches():
    """attention_impl="xla" (the jax.nn.dot_product_attention path cudnn shares) equals the
    exact einsum path on real tokens, for logits and gradients."""
    ids, mask = _prompts(left_pad=False)
    ids, mask = jnp.asarray(ids), jnp.asarray(mask)
    valid = np.asarray(mask).astype(bool)

    def loss(model):
        logits = model(ids, attention_mask=mask)
        return jnp.sum(jnp.where(mask[..., None] == 1, jax.nn.log_softmax(logits), 0.0)), logits

    results = {}
    for impl in ("einsum", "xla"):
        model = Qwen3(CONFIGS["moe"], rngs=nnx.Rngs(0), attention_impl=impl)
        (_, logits), grads = nnx.jit(nnx.value_and_grad(loss, has_aux=True))(model)
        results[impl] = (np.asarray(logits)[valid], jax.tree.leaves(grads))
    np.testing.assert_allclose(results["xla"][0], results["einsum"][0], rtol=1e-5, atol=1e-5)
    for a, b in zip(results["xla"][1], results["einsum"][1]):
        assert np.all(np.isfinite(a))
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="attention_impl"):
        Qwen3(CONFIGS["dense"], rngs=nnx.Rngs(0), attention_impl="flash")
