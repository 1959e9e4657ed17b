"""GRPO math against an independent numpy re-derivation written here from veRL's definitions."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sandmle_jax.rl import grpo

AGGS = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")


# ---- numpy reference ----------------------------------------------------------------------

def np_advantages(rewards, group_size, std_normalize=True, eps=1e-6):
    out = np.zeros(len(rewards))
    for start in range(0, len(rewards), group_size):
        g = np.asarray(rewards[start:start + group_size], np.float64)
        a = g - g.mean()
        if std_normalize:
            a = a / (np.std(g, ddof=1) + eps)
        out[start:start + group_size] = a
    return out


def np_token_loss(lp, olp, a, low, high, c):
    r = np.exp(np.clip(lp - olp, -20, 20))
    l1, l2 = -a * r, -a * min(max(r, 1 - low), 1 + high)
    loss = max(l1, l2)
    if c is not None and a < 0:
        loss = min(loss, -a * c)
    # d loss / d lp (dr/dlp = r): inside the trust region both branches are -A*r; outside it
    # only the unclipped branch moves with lp, and it counts only where it is the max.
    inside = 1 - low <= r <= 1 + high
    grad = -a * r if inside or l1 > l2 else 0.0
    if c is not None and a < 0 and -a * c < max(l1, l2):
        grad = 0.0                                                    # capped: constant c*|A|
    return loss, grad


def np_aggregate(mat, mask, agg, n_tok=None, n_seq=None, scale=None):
    """Returns the scalar and the per-token weight d(agg)/d(mat)."""
    n_tok = mask.sum() if n_tok is None else n_tok
    n_seq = float((mask.sum(1) > 0).sum()) if n_seq is None else n_seq
    weights = np.zeros_like(mat)
    for i in range(mat.shape[0]):
        for t in range(mat.shape[1]):
            if not mask[i, t]:
                continue
            if agg == "token-mean":
                weights[i, t] = 1 / n_tok
            elif agg == "seq-mean-token-mean":
                weights[i, t] = 1 / mask[i].sum() / n_seq
            elif agg == "seq-mean-token-sum":
                weights[i, t] = 1 / n_seq
            else:
                weights[i, t] = 1 / (mat.shape[1] if scale is None else scale) / n_seq
    return float((mat * weights).sum()), weights


def np_policy_loss(lp, olp, adv, mask, agg, low=0.2, high=0.28, c=3.0, roll=None, cap=None):
    B, T = lp.shape
    losses, grads = np.zeros((B, T)), np.zeros((B, T))
    for i, t in itertools.product(range(B), range(T)):
        losses[i, t], grads[i, t] = np_token_loss(lp[i, t], olp[i, t], adv[i], low, high, c)
    if cap is not None:
        w = np.minimum(np.exp(olp - roll), cap)
        losses, grads = losses * w, grads * w
    value, weights = np_aggregate(losses, mask, agg)
    return value, grads * weights


def random_batch(seed, B=8, T=12, spread=1.2):
    rng = np.random.default_rng(seed)
    old = -rng.uniform(0.1, 3.0, (B, T))
    lp = old + rng.uniform(-spread, spread, (B, T))
    adv = rng.normal(size=B)
    mask = (rng.uniform(size=(B, T)) < 0.7).astype(np.float64)
    mask[0] = 0.0                    # a row with no policy tokens at all
    mask[1, :] = 1.0
    roll = old + rng.normal(scale=0.3, size=(B, T))
    return lp, old, adv, mask, roll


def as_jnp(*xs):
    return [jnp.asarray(x, jnp.float32) for x in xs]


# ---- advantages -------------------------------------------------------------------------------

@pytest.mark.parametrize("std_normalize", [True, False])
def test_advantages_match_numpy_unbiased_std(std_normalize):
    rng = np.random.default_rng(0)
    rewards = rng.uniform(size=16)
    rewards[4:8] = 0.5                                     # a zero-variance group
    got = grpo.compute_advantages(jnp.asarray(rewards), 4, std_normalize=std_normalize)
    np.testing.assert_allclose(got, np_advantages(rewards, 4, std_normalize), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got[4:8], 0.0)


def test_advantages_use_the_unbiased_std():
    # rewards (0, 1): unbiased std = 0.7071, biased = 0.5.
    got = grpo.compute_advantages(jnp.array([0.0, 1.0]), 2, eps=0.0)
    np.testing.assert_allclose(got, [-0.5 / np.sqrt(0.5), 0.5 / np.sqrt(0.5)], rtol=1e-6)


def test_advantages_reject_bad_layout():
    with pytest.raises(ValueError, match="groups of 4"):
        grpo.compute_advantages(jnp.zeros(6), 4)
    with pytest.raises(ValueError, match="group_size"):
        grpo.compute_advantages(jnp.zeros(6), 1)


def test_masking_after_advantages_keeps_the_others_and_removes_the_row():
    rewards = jnp.array([1.0, 0.0, 0.0, 1.0, 0.3, 0.3, 0.3, 0.3])
    adv = grpo.compute_advantages(rewards, 4)
    zero_var = grpo.zero_variance_groups(rewards, 4)
    np.testing.assert_array_equal(zero_var, [False] * 4 + [True] * 4)
    timed_out = jnp.array([False, True, False, False, False, False, False, False])
    mask = jnp.ones((8, 5))
    masked = grpo.mask_trajectories(mask, zero_var | timed_out)
    np.testing.assert_array_equal(masked.sum(1), [5, 0, 5, 5, 0, 0, 0, 0])
    # Advantages are computed before masking: the kept members keep theirs.
    np.testing.assert_allclose(adv[:4], np_advantages(np.array(rewards[:4]), 4), rtol=1e-5)
    lp = jnp.asarray(np.random.default_rng(1).normal(size=(8, 5)) - 2, jnp.float32)
    grad = jax.grad(lambda x: grpo.policy_loss(x, lp - 0.1, adv, masked)[0])(lp)
    np.testing.assert_array_equal(grad[1], 0.0)
    np.testing.assert_array_equal(grad[4:], 0.0)
    assert float(jnp.abs(grad[0]).sum()) > 0


# ---- log-probs and entropy --------------------------------------------------------------------

def test_token_logprobs_and_entropy_match_numpy():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(3, 6, 11)) * 3
    tokens = rng.integers(0, 11, size=(3, 6))
    temp = 0.7
    lp = np.asarray(grpo.token_logprobs(jnp.asarray(logits, jnp.float32), jnp.asarray(tokens), temp))
    ent = np.asarray(grpo.token_entropy(jnp.asarray(logits, jnp.float32), temp))
    for b, t in itertools.product(range(3), range(1, 6)):
        z = logits[b, t - 1] / temp
        logp_all = z - np.log(np.exp(z - z.max()).sum()) - z.max()
        assert lp[b, t] == pytest.approx(logp_all[tokens[b, t]], abs=1e-5)
        assert ent[b, t] == pytest.approx(-(np.exp(logp_all) * logp_all).sum(), abs=1e-5)
    np.testing.assert_array_equal(lp[:, 0], 0.0)
    np.testing.assert_array_equal(ent[:, 0], 0.0)


# ---- policy loss ------------------------------------------------------------------------------

@pytest.mark.parametrize("agg", AGGS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_policy_loss_and_gradient_match_numpy(agg, seed):
    lp, old, adv, mask, _ = random_batch(seed)
    want, want_grad = np_policy_loss(lp, old, adv, mask, agg)
    j_lp, j_old, j_adv, j_mask = as_jnp(lp, old, adv, mask)
    fn = lambda x: grpo.policy_loss(x, j_old, j_adv, j_mask, aggregation=agg)
    (loss, metrics), grad = jax.value_and_grad(fn, has_aux=True)(j_lp)
    assert float(loss) == pytest.approx(want, rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-4, atol=1e-6)
    # The batch exercises every region: plain clip and dual clip both occur.
    assert float(metrics["clip_frac"]) > 0 and float(metrics["dual_clip_frac"]) > 0


def test_clip_regions_token_by_token():
    """One token per region: A>0 ratio above 1+high (clipped), A<0 ratio below 1-low (clipped),
    A<0 ratio far above dual_clip (capped at c*|A|), and inside the trust region."""
    old = jnp.zeros((4, 2)) - 1.0
    log_r = jnp.log(jnp.array([1.5, 0.5, 5.0, 1.1]))
    lp = old.at[:, 1].add(log_r)
    adv = jnp.array([1.0, -1.0, -2.0, 0.5])
    mask = jnp.array([[0.0, 1.0]] * 4)
    fn = lambda x: grpo.policy_loss(x, old, adv, mask, aggregation="seq-mean-token-sum")
    (loss, metrics), grad = jax.value_and_grad(fn, has_aux=True)(lp)
    expected = np.array([-1.28, 0.8, 6.0, -0.55])                   # -A*clip, -A*clip, c*|A|, -A*r
    assert float(loss) == pytest.approx(expected.mean(), rel=1e-5)
    np.testing.assert_allclose(grad[:, 1], [0, 0, 0, -0.55 / 4], atol=1e-6)
    assert float(metrics["clip_frac"]) == pytest.approx(0.5)        # tokens 0 and 1
    assert float(metrics["dual_clip_frac"]) == pytest.approx(0.25)


@pytest.mark.parametrize("agg", AGGS)
def test_tis_matches_numpy_and_reports_mismatch(agg):
    lp, old, adv, mask, roll = random_batch(3)
    want, want_grad = np_policy_loss(lp, old, adv, mask, agg, roll=roll, cap=2.0)
    j_lp, j_old, j_adv, j_mask, j_roll = as_jnp(lp, old, adv, mask, roll)
    fn = lambda x: grpo.policy_loss(x, j_old, j_adv, j_mask, aggregation=agg,
                                    rollout_logp=j_roll, tis_cap=2.0)
    (loss, metrics), grad = jax.value_and_grad(fn, has_aux=True)(j_lp)
    assert float(loss) == pytest.approx(want, rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-4, atol=1e-6)
    on = mask > 0
    delta = (old - roll)[on]
    assert float(metrics["mismatch_abs_mean"]) == pytest.approx(np.abs(delta).mean(), rel=1e-5)
    assert float(metrics["mismatch_abs_max"]) == pytest.approx(np.abs(delta).max(), rel=1e-5)
    k3 = np.exp(delta) - delta - 1
    assert float(metrics["mismatch_k3"]) == pytest.approx(k3.mean(), rel=1e-5)
    w = np.minimum(np.exp(delta), 2.0)
    assert float(metrics["tis_weight_mean"]) == pytest.approx(w.mean(), rel=1e-5)
    assert w.max() == 2.0                                            # the cap was active


@pytest.mark.parametrize("estimator", ["k1", "k3"])
def test_kl_penalty_to_reference(estimator):
    lp, old, adv, mask, roll = random_batch(4)
    ref = roll
    base, _ = np_policy_loss(lp, old, adv, mask, "token-mean")
    per_tok = lp - ref if estimator == "k1" else np.exp(ref - lp) - (ref - lp) - 1
    kl, _ = np_aggregate(per_tok, mask, "token-mean")
    j_lp, j_old, j_adv, j_mask, j_ref = as_jnp(lp, old, adv, mask, ref)
    loss, metrics = grpo.policy_loss(j_lp, j_old, j_adv, j_mask, aggregation="token-mean",
                                     ref_logp=j_ref, kl_coef=0.1, kl_estimator=estimator)
    assert float(loss) == pytest.approx(base + 0.1 * kl, rel=1e-5)
    assert float(metrics["kl_ref"]) == pytest.approx(kl, rel=1e-5)


@pytest.mark.parametrize("agg", AGGS)
def test_four_micro_batches_equal_one_in_loss_and_gradient(agg):
    lp, old, adv, mask, roll = random_batch(5, B=16, T=10)
    j_lp, j_old, j_adv, j_mask, j_roll = as_jnp(lp, old, adv, mask, roll)
    n_tok, n_seq = grpo.loss_normalizers(j_mask)
    kw = dict(aggregation=agg, tis_cap=2.0, loss_scale_factor=10.0)

    def full(x):
        return grpo.policy_loss(x, j_old, j_adv, j_mask, rollout_logp=j_roll, **kw)[0]

    def split(x):
        total = 0.0
        for s in np.split(np.arange(16), 4):
            total += grpo.policy_loss(x[s], j_old[s], j_adv[s], j_mask[s], rollout_logp=j_roll[s],
                                      global_token_count=n_tok, global_seq_count=n_seq, **kw)[0]
        return total

    np.testing.assert_allclose(split(j_lp), full(j_lp), rtol=1e-6)
    np.testing.assert_allclose(jax.grad(split)(j_lp), jax.grad(full)(j_lp), rtol=1e-6, atol=1e-9)


def test_masked_tokens_get_zero_gradient_and_do_not_change_the_loss():
    lp, old, adv, mask, _ = random_batch(6)
    j_lp, j_old, j_adv, j_mask = as_jnp(lp, old, adv, mask)
    for agg in AGGS:
        grad = jax.grad(lambda x: grpo.policy_loss(x, j_old, j_adv, j_mask, aggregation=agg)[0])(j_lp)
        np.testing.assert_array_equal(np.asarray(grad)[mask == 0], 0.0)
        garbage = j_lp + 50.0 * (1 - j_mask)
        a = grpo.policy_loss(j_lp, j_old, j_adv, j_mask, aggregation=agg)[0]
        b = grpo.policy_loss(garbage, j_old, j_adv, j_mask, aggregation=agg)[0]
        assert float(a) == float(b)


def test_policy_loss_rejects_bad_arguments():
    x = jnp.zeros((2, 3))
    with pytest.raises(ValueError, match="aggregation"):
        grpo.policy_loss(x, x, jnp.zeros(2), x, aggregation="mean")
    with pytest.raises(ValueError, match="dual_clip"):
        grpo.policy_loss(x, x, jnp.zeros(2), x, dual_clip=0.5)
    with pytest.raises(ValueError, match="rollout_logp"):
        grpo.policy_loss(x, x, jnp.zeros(2), x, tis_cap=2.0)
    with pytest.raises(ValueError, match="ref_logp"):
        grpo.policy_loss(x, x, jnp.zeros(2), x, kl_coef=0.1)
