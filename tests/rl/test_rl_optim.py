"""Optimizer chain: schedule values, clipping and AdamW against a numpy re-derivation."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from sandmle_jax.rl.optim import OptimizerConfig, learning_rate_schedule, make_optimizer


def test_constant_schedule_with_warmup():
    sched = learning_rate_schedule(OptimizerConfig(learning_rate=1e-3, warmup_steps=4))
    got = [float(sched(s)) for s in range(7)]
    np.testing.assert_allclose(got, [2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3, 1e-3], rtol=1e-6)


def test_cosine_schedule_values():
    cfg = OptimizerConfig(learning_rate=1.0, warmup_steps=2, schedule="cosine", total_steps=12,
                          min_lr_ratio=0.1)
    sched = learning_rate_schedule(cfg)
    for step in range(20):
        if step < 2:
            want = (step + 1) / 2
        else:
            p = min((step - 2) / 10, 1.0)
            want = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p))
        assert float(sched(step)) == pytest.approx(want, rel=1e-5), step
    assert float(sched(7)) == pytest.approx(0.55, rel=1e-5)          # half way: mid of 1 and 0.1


def np_adamw(params, grads_seq, lr, b1, b2, eps, wd, clip, decay):
    p = params.copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads_seq, start=1):
        norm = np.sqrt((g**2).sum())
        if clip is not None and norm > clip:
            g = g * clip / norm
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        mhat, vhat = m / (1 - b1**t), v / (1 - b2**t)
        p = p - lr * (mhat / (np.sqrt(vhat) + eps) + (wd * p if decay else 0.0))
    return p


@pytest.mark.parametrize("clip", [None, 0.5])
def test_adamw_with_global_norm_clipping_matches_numpy(clip):
    cfg = OptimizerConfig(learning_rate=0.1, b1=0.8, b2=0.9, eps=1e-6, weight_decay=0.05,
                          max_grad_norm=clip)
    opt = make_optimizer(cfg)
    rng = np.random.default_rng(0)
    params = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=(2,))}
    grads = [{"w": rng.normal(size=(3, 2)) * s, "b": rng.normal(size=(2,)) * s} for s in (10, 0.1, 3)]
    jp = {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}
    state = opt.init(jp)
    for g in grads:
        updates, state = opt.update({k: jnp.asarray(v, jnp.float32) for k, v in g.items()}, state, jp)
        jp = {k: jp[k] + updates[k] for k in jp}
    # Clipping is by the global norm over both leaves, so the reference works on the concatenation.
    flat = np.concatenate([params["w"].ravel(), params["b"].ravel()])
    flat_grads = [np.concatenate([g["w"].ravel(), g["b"].ravel()]) for g in grads]
    decay = np.concatenate([np.ones(6, bool), np.zeros(2, bool)])
    want_decay = np_adamw(flat, flat_grads, 0.1, 0.8, 0.9, 1e-6, 0.05, clip, True)
    want_plain = np_adamw(flat, flat_grads, 0.1, 0.8, 0.9, 1e-6, 0.05, clip, False)
    want = np.where(decay, want_decay, want_plain)
    got = np.concatenate([np.asarray(jp["w"]).ravel(), np.asarray(jp["b"]).ravel()])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_clipping_changes_the_result():
    """Guards the test above: without clipping the trajectory differs."""
    rng = np.random.default_rng(0)
    flat = rng.normal(size=8)
    grads = [rng.normal(size=8) * s for s in (10, 0.1, 3)]
    a = np_adamw(flat, grads, 0.1, 0.8, 0.9, 1e-6, 0.0, None, False)
    b = np_adamw(flat, grads, 0.1, 0.8, 0.9, 1e-6, 0.0, 0.5, False)
    assert np.abs(a - b).max() > 1e-3


def test_config_validation():
    with pytest.raises(ValueError, match="optimizer config: unknown keys \\[.lr.\\]"):
        OptimizerConfig.from_dict({"lr": 1e-3})
    with pytest.raises(ValueError, match="total_steps"):
        OptimizerConfig(schedule="cosine", warmup_steps=10, total_steps=5)
    with pytest.raises(ValueError, match="schedule"):
        OptimizerConfig(schedule="linear")
    assert OptimizerConfig.from_dict({"learning_rate": 1e-5}).learning_rate == 1e-5
