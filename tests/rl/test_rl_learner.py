"""The learner on a tiny NNX model and Qwen3: micro-batching and logit-chunking invariance,
the MoE aux loss, bf16, compilations, a bandit."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from sandmle_jax.models.qwen3 import Qwen3, Qwen3Config
from sandmle_jax.rl import grpo
from sandmle_jax.rl.batching import BatchingConfig, make_learner_batch
from sandmle_jax.rl.episodes import Row
from sandmle_jax.rl.learner import Learner, LossConfig, nnx_apply_fn
from sandmle_jax.rl.optim import OptimizerConfig, make_optimizer

VOCAB = 16


class TinyLM(nnx.Module):
    """Embedding, a causal masked running mean (the only context), one dense layer, unembed."""

    def __init__(self, vocab: int = VOCAB, dim: int = 12, *, rngs: nnx.Rngs):
        self.embed = nnx.Embed(vocab, dim, rngs=rngs)
        self.dense = nnx.Linear(dim, dim, rngs=rngs)
        self.unembed = nnx.Linear(dim, vocab, rngs=rngs)

    def __call__(self, input_ids, attention_mask=None):
        mask = jnp.ones(input_ids.shape) if attention_mask is None else attention_mask
        mask = mask.astype(jnp.float32)[..., None]                     # (B, T, 1)
        e = self.embed(input_ids) * mask                               # (B, T, D)
        context = jnp.cumsum(e, axis=1) / jnp.maximum(jnp.cumsum(mask, axis=1), 1.0)
        return self.unembed(jax.nn.gelu(self.dense(context)) + e)      # (B, T, V)


def random_trajs(seed, groups=4, group_size=4):
    rng = np.random.default_rng(seed)
    out = []
    for g in range(groups):
        for _ in range(group_size):
            n = int(rng.integers(4, 40))
            prompt = int(rng.integers(1, n - 1))
            mask = (0,) * prompt + tuple(int(x) for x in rng.integers(0, 2, n - prompt))
            mask = mask[:-1] + (1,)
            out.append(Row(tuple(int(t) for t in rng.integers(0, VOCAB, n)), mask,
                            tuple(float(-x * m) for x, m in zip(rng.uniform(0, 3, n), mask)),
                            float(rng.uniform()), g))
    return out


def make_model(kind: str = "tiny") -> nnx.Module:
    if kind == "qwen3":
        return Qwen3(Qwen3Config.tiny(vocab_size=VOCAB), rngs=nnx.Rngs(0))
    if kind == "qwen3_moe":
        return Qwen3(Qwen3Config.tiny_moe(vocab_size=VOCAB), rngs=nnx.Rngs(0))
    return TinyLM(rngs=nnx.Rngs(0))


def logits_fn(kind: str):
    """(params, ids, mask) -> (logits (B, T, V), aux loss) through the model's plain forward,
    independent of the learner's (Qwen3's goes through `head_inputs` and chunked log-probs)."""
    model = make_model(kind)
    if isinstance(model, Qwen3):
        return nnx_apply_fn(model, method="logits_and_aux")[0]
    logits, _ = nnx_apply_fn(model, method="__call__")
    return lambda params, ids, mask: (logits(params, ids, mask), jnp.zeros(()))


def make_learner(loss=LossConfig(), kind="tiny", **kw):
    apply_fn, params = nnx_apply_fn(make_model(kind))
    opt = make_optimizer(OptimizerConfig(learning_rate=1e-2, weight_decay=0.0))
    return Learner(apply_fn, opt, loss, **kw), params


def flat(tree):
    return np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)])


def direct_gradient(learner, kind, params, trajs, group_size, ref_params=None):
    """Independent path: one padded batch of all rows, no buckets, no global counts, full
    logits, the aux loss of the whole batch."""
    length = max(len(t.token_ids) for t in trajs)
    ids = np.zeros((len(trajs), length), np.int32)
    attn = np.zeros_like(ids)
    mask = np.zeros((len(trajs), length), np.float32)
    roll = np.zeros_like(mask)
    for i, t in enumerate(trajs):
        n = len(t.token_ids)
        ids[i, :n], attn[i, :n], mask[i, :n], roll[i, :n] = t.token_ids, 1, t.loss_mask, \
            t.rollout_logprobs
    groups = sorted({t.group_id for t in trajs})
    order = [i for g in groups for i, t in enumerate(trajs) if t.group_id == g]
    adv = np.zeros(len(trajs), np.float32)
    adv[order] = grpo.compute_advantages(jnp.array([trajs[i].reward for i in order]), group_size)
    cfg = learner.loss
    forward = logits_fn(kind)

    def logp_of(p):
        logits, aux = forward(p, ids, attn)
        return grpo.token_logprobs(logits, ids, cfg.temperature), aux

    ref = None if ref_params is None else logp_of(ref_params)[0]

    def loss(p):
        lp, aux = logp_of(p)
        pg = grpo.policy_loss(lp, jax.lax.stop_gradient(lp), adv, mask, clip_low=cfg.clip_low,
                              clip_high=cfg.clip_high, dual_clip=cfg.dual_clip,
                              aggregation=cfg.aggregation, rollout_logp=roll,
                              tis_cap=cfg.tis_cap, ref_logp=ref, kl_coef=cfg.kl_coef,
                              loss_scale_factor=cfg.loss_scale_factor)[0]
        return pg + cfg.aux_loss_coef * aux

    return jax.jit(jax.grad(loss))(params)


@pytest.mark.parametrize("kind,loss,chunk", [
    ("tiny", LossConfig(), None),
    ("tiny", LossConfig(aggregation="token-mean", tis_cap=2.0, kl_coef=0.05), None),
    ("tiny", LossConfig(aggregation="seq-mean-token-sum-norm", loss_scale_factor=64.0,
                        temperature=0.7), None),
    ("qwen3", LossConfig(tis_cap=2.0), None),
    ("qwen3", LossConfig(tis_cap=2.0, kl_coef=0.05, temperature=0.7), 24),
], ids=["paper", "token-mean+tis+kl", "drgrpo", "qwen3", "qwen3-logit-chunks"])
def test_one_vs_four_micro_batches_give_the_same_gradient(kind, loss, chunk):
    learner, params = make_learner(loss, kind, logit_chunk_tokens=chunk)
    ref_params = jax.tree.map(lambda x: x * 0.9, params)
    ref = ref_params if loss.kl_coef else None
    trajs = random_trajs(0)
    one = make_learner_batch(trajs, BatchingConfig(bucket_lengths=(64,), rows=16), group_size=4)
    four = make_learner_batch(trajs, BatchingConfig(bucket_lengths=(16, 32, 64), rows=4),
                              group_size=4)
    assert len(one.micro_batches) == 1 and len(four.micro_batches) == 4
    g1, m1 = learner.compute_gradients(params, one, ref)
    g4, m4 = learner.compute_gradients(params, four, ref)
    want = direct_gradient(learner, kind, params, trajs, 4, ref)
    # Padding to different buckets changes only summation order (attention over masked keys).
    tol = dict(rtol=2e-5, atol=1e-7) if kind == "tiny" else dict(rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(flat(g4), flat(g1), **tol)
    np.testing.assert_allclose(flat(g1), flat(want), **tol)
    assert np.abs(flat(want)).max() > 1e-4
    for k in m1:
        np.testing.assert_allclose(m4[k], m1[k], rtol=1e-5, atol=1e-7, err_msg=k)


def test_moe_aux_loss_adds_its_weighted_gradient():
    """One micro-batch: the gradient is the policy loss's plus coef x the batch's aux loss's
    (HF load_balancing_loss_func, checked against transformers in tests/models)."""
    loss = LossConfig(aux_loss_coef=0.5)
    learner, params = make_learner(loss, "qwen3_moe", logit_chunk_tokens=40)
    without, _ = make_learner(LossConfig(), "qwen3_moe")
    trajs = random_trajs(3)
    batch = make_learner_batch(trajs, BatchingConfig(bucket_lengths=(64,), rows=16),
                               group_size=4)
    grads, metrics = learner.compute_gradients(params, batch)
    grads0, metrics0 = without.compute_gradients(params, batch)
    want = direct_gradient(learner, "qwen3_moe", params, trajs, 4)
    np.testing.assert_allclose(flat(grads), flat(want), rtol=1e-4, atol=1e-6)
    assert np.linalg.norm(flat(grads) - flat(grads0)) > 1e-3 * np.linalg.norm(flat(grads0))
    # Reported whether or not it is trained on; top_k (2) for perfectly balanced routing.
    assert float(metrics["aux_loss"]) == pytest.approx(float(metrics0["aux_loss"]), rel=1e-5)
    assert 1.8 < float(metrics["aux_loss"]) < 3.0
    assert float(metrics["loss"]) == pytest.approx(
        float(metrics0["loss"]) + 0.5 * float(metrics["aux_loss"]), rel=1e-5)


def test_bf16_compute_keeps_fp32_master_weights():
    learner32, params = make_learner()
    learner16, _ = make_learner(compute_dtype=jnp.bfloat16)
    batch = make_learner_batch(random_trajs(1), BatchingConfig(bucket_lengths=(64,), rows=8),
                               group_size=4)
    g32, _ = learner32.compute_gradients(params, batch)
    g16, _ = learner16.compute_gradients(params, batch)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(g16))
    a, b = flat(g32), flat(g16)
    assert np.linalg.norm(a - b) / np.linalg.norm(a) < 0.05
    state, metrics = learner16.train_step(learner16.init_state(params, 0), batch)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state.params))
    assert int(state.step) == 1 and np.isfinite(metrics["loss"])


def test_compiles_once_per_bucket_over_steps_of_varying_length():
    learner, params = make_learner()
    state = learner.init_state(params, 0)
    config = BatchingConfig(bucket_lengths=(16, 32, 64), rows=4)
    shapes = set()
    for step in range(6):
        batch = make_learner_batch(random_trajs(10 + step), config, group_size=4)
        shapes |= {mb.input_ids.shape for mb in batch.micro_batches}
        state, metrics = learner.train_step(state, batch)
        for key in ("loss", "clip_frac", "entropy", "grad_norm", "mismatch_abs_mean",
                    "mismatch_abs_max", "mismatch_k3", "tokens_per_s"):
            assert np.isfinite(metrics[key]), key
    assert learner.compilations() == {"accumulate": len(shapes), "apply": 1}
    assert int(state.step) == 6


def test_non_finite_loss_stops_the_run():
    learner, params = make_learner()
    bad = jax.tree.map(lambda x: x * jnp.nan, params)
    batch = make_learner_batch(random_trajs(2), BatchingConfig(bucket_lengths=(64,), rows=8),
                               group_size=4)
    with pytest.raises(FloatingPointError, match="non-finite"):
        learner.train_step(learner.init_state(bad, 0), batch)


# ---- sign check: a one-step bandit ------------------------------------------------------------

PROMPT, TARGET = 3, 11


def target_probability(forward, params):
    logits, _ = forward(params, jnp.array([[PROMPT, 0]]), jnp.array([[1, 1]]))
    return float(jax.nn.softmax(logits[0, 0])[TARGET])


@pytest.mark.parametrize("kind", ["tiny", "qwen3"])
def test_grpo_raises_the_reward_of_a_bandit(kind):
    learner, params = make_learner(LossConfig(tis_cap=2.0), kind)
    state = learner.init_state(params, 0)
    config = BatchingConfig(bucket_lengths=(2,), rows=8)
    key = jax.random.PRNGKey(1)
    forward = logits_fn(kind)
    p_start = target_probability(forward, state.params)
    rewards = []
    for step in range(40):
        key, sub = jax.random.split(key)
        logits = forward(state.params, jnp.full((32, 2), PROMPT), jnp.ones((32, 2)))[0][:, 0]
        actions = np.asarray(jax.random.categorical(sub, logits))
        logps = np.asarray(jax.nn.log_softmax(logits))[np.arange(32), actions]
        trajs = [Row((PROMPT, int(a)), (0, 1), (0.0, float(lp)), float(a == TARGET), i // 8)
                 for i, (a, lp) in enumerate(zip(actions, logps))]
        rewards.append(np.mean([t.reward for t in trajs]))
        batch = make_learner_batch(trajs, config, group_size=8)
        if batch.micro_batches:
            state, _ = learner.train_step(state, batch)
    p_end = target_probability(forward, state.params)
    assert p_start < 0.2
    assert p_end > 0.8, (p_start, p_end)
    assert np.mean(rewards[-5:]) > np.mean(rewards[:5]) + 0.4
