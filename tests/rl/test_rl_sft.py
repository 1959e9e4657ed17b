"""SFT through the GRPO learner has exactly the gradient of the mean token NLL (an independent
jax.grad of the masked cross-entropy), and batches are deterministic per step."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from sandmle_jax.models.config import Qwen3Config
from sandmle_jax.models.qwen3 import Qwen3
from sandmle_jax.rl import batching, episodes, learner as learner_lib, optim, sft


def _rows(rng, n=3, length=24, vocab=64):
    rows = []
    for _ in range(n):
        ids = rng.integers(2, vocab, size=length)
        mask = np.zeros(length, int)
        mask[8:] = 1
        rows.append(episodes.Row(tuple(ids), tuple(mask), tuple(np.zeros(length))))
    return rows


def test_sft_gradient_is_the_nll_gradient():
    model = Qwen3(Qwen3Config.tiny(vocab_size=64), rngs=nnx.Rngs(0))
    apply_fn, params = learner_lib.nnx_apply_fn(model)
    learner = learner_lib.Learner(apply_fn, optim.make_optimizer(optim.OptimizerConfig()),
                                  sft.SFT_LOSS)
    rows = _rows(np.random.default_rng(0))
    batch = batching.pack(rows, [1.0] * len(rows),
                          batching.BatchingConfig(bucket_lengths=(32,), rows=2))
    grads, _ = learner.compute_gradients(params, batch)

    ids = jnp.array([r.token_ids for r in rows])
    mask = jnp.array([r.loss_mask for r in rows], jnp.float32)

    logits_fn, _ = learner_lib.nnx_apply_fn(model, method="__call__")

    def nll(p):
        logits = logits_fn(p, ids, jnp.ones_like(ids))
        logp = jax.nn.log_softmax(logits[:, :-1], axis=-1)
        picked = jnp.take_along_axis(logp, ids[:, 1:, None], axis=-1)[..., 0]
        return -(picked * mask[:, 1:]).sum() / mask[:, 1:].sum()

    expected = jax.grad(nll)(params)
    for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(expected)):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-6)
    assert abs(sft.mean_nll(learner, params, batch) - float(nll(params))) < 1e-4


def test_sft_batches_depend_only_on_seed_and_step():
    rows = _rows(np.random.default_rng(1), n=6)
    config = batching.BatchingConfig(bucket_lengths=(32,), rows=2)
    a = sft.sft_batches(rows, 2, config, seed=5)
    first = [next(a) for _ in range(3)]
    resumed = next(sft.sft_batches(rows, 2, config, seed=5, start_step=2))
    np.testing.assert_array_equal(first[2].micro_batches[0].input_ids,
                                  resumed.micro_batches[0].input_ids)
    assert all(float(m.advantages.min()) == 1.0 for m in first[0].micro_batches)


def test_pack_checks_lengths():
    rows = _rows(np.random.default_rng(2), n=2)
    with pytest.raises(ValueError, match="2 rows but 1 advantages"):
        batching.pack(rows, [1.0], batching.BatchingConfig(bucket_lengths=(32,), rows=2))
