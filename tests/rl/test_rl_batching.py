"""Bucketed micro-batches: every trajectory lands once, intact, with its group's advantage."""

import dataclasses

import numpy as np
import pytest

from sandmle_jax.rl.batching import BatchingConfig, make_learner_batch
from sandmle_jax.rl.episodes import Row


def make_trajs(seed=0, groups=4, group_size=4, max_len=60):
    rng = np.random.default_rng(seed)
    trajs = []
    for g in range(groups):
        for _ in range(group_size):
            n = int(rng.integers(5, max_len))
            prompt = int(rng.integers(1, n))
            mask = tuple([0] * prompt + [1] * (n - prompt))
            trajs.append(Row(tuple(int(t) for t in rng.integers(1, 100, n)), mask,
                              tuple(float(x) for x in -rng.uniform(0, 2, n) * np.array(mask)),
                              float(rng.integers(0, 3)), g))
    rng.shuffle(trajs)                                   # groups need not arrive contiguous
    return trajs


def np_advantage(trajs, traj):
    rewards = np.array([t.reward for t in trajs if t.group_id == traj.group_id])
    std = rewards.std(ddof=1)
    return (traj.reward - rewards.mean()) / (std + 1e-6)


def rows_of(batch):
    """(tokens, mask, logp, advantage) of each real row."""
    out = []
    for mb in batch.micro_batches:
        for r in range(mb.input_ids.shape[0]):
            n = int(mb.attention_mask[r].sum())
            if mb.loss_mask[r].sum() == 0:
                continue
            out.append((tuple(mb.input_ids[r, :n]), tuple(mb.loss_mask[r, :n].astype(int)),
                        mb.rollout_logp[r, :n], float(mb.advantages[r])))
    return out


def test_every_trajectory_lands_once_with_its_advantage():
    trajs = make_trajs()
    config = BatchingConfig(bucket_lengths=(16, 32, 64), rows=3)
    batch = make_learner_batch(trajs, config, group_size=4)
    rows = rows_of(batch)
    assert len(rows) == len(trajs) == batch.num_trajectories == batch.seq_count
    by_tokens = {t.token_ids: t for t in trajs}
    for tokens, mask, logp, adv in rows:
        t = by_tokens[tokens]
        assert mask == t.loss_mask
        np.testing.assert_allclose(logp, t.rollout_logprobs, rtol=1e-6)
        assert adv == pytest.approx(np_advantage(trajs, t), rel=1e-4, abs=1e-5)
    assert batch.token_count == sum(sum(t.loss_mask) for t in trajs)


def test_shapes_are_buckets_and_padding_is_inert():
    config = BatchingConfig(bucket_lengths=(16, 32, 64), rows=3)
    shapes = set()
    for seed in range(10):
        batch = make_learner_batch(make_trajs(seed), config, group_size=4)
        for mb in batch.micro_batches:
            shapes.add(mb.input_ids.shape)
            assert mb.loss_mask.shape == mb.rollout_logp.shape == mb.input_ids.shape
            assert mb.advantages.shape == (3,)
            # The smallest bucket that fits: the longest row would not fit the bucket below.
            longest = int(mb.attention_mask.sum(1).max())
            below = [b for b in config.bucket_lengths if b < mb.input_ids.shape[1]]
            assert not below or longest > below[-1]
            assert np.all(mb.loss_mask <= mb.attention_mask)
            assert np.all(mb.attention_mask.sum(1) >= 1)        # no empty attention row
    assert shapes <= {(3, 16), (3, 32), (3, 64)}
    assert len(shapes) == 3


def test_drop_after_advantages_keeps_the_others_unchanged():
    trajs = make_trajs(1)
    config = BatchingConfig(bucket_lengths=(64,), rows=4)
    full = {r[0]: r[3] for r in rows_of(make_learner_batch(trajs, config, group_size=4))}
    drop = [i % 5 == 0 for i in range(len(trajs))]
    batch = make_learner_batch(trajs, config, group_size=4, drop=drop)
    kept = {r[0]: r[3] for r in rows_of(batch)}
    assert set(kept) == {t.token_ids for t, d in zip(trajs, drop) if not d}
    for tokens, adv in kept.items():
        assert adv == full[tokens]
    assert batch.token_count == sum(sum(t.loss_mask) for t, d in zip(trajs, drop) if not d)


def test_drop_zero_variance_groups():
    trajs = [dataclasses.replace(t, reward=1.0) if t.group_id == 2 else t for t in make_trajs(2)]
    batch = make_learner_batch(trajs, BatchingConfig(bucket_lengths=(64,), rows=4), group_size=4,
                               drop_zero_variance=True)
    kept = {r[0] for r in rows_of(batch)}
    assert kept == {t.token_ids for t in trajs if t.group_id != 2}


def test_bad_input_is_named():
    trajs = make_trajs(3)
    with pytest.raises(ValueError, match="exactly 4 trajectories"):
        make_learner_batch(trajs[:-1], BatchingConfig(bucket_lengths=(64,)), group_size=4)
    with pytest.raises(ValueError, match="exceeds the largest bucket 8"):
        make_learner_batch(trajs, BatchingConfig(bucket_lengths=(8,)), group_size=4)
    bad = [dataclasses.replace(trajs[0], rollout_logprobs=(0.0,))] + trajs[1:]
    with pytest.raises(ValueError, match="one entry per token"):
        make_learner_batch(bad, BatchingConfig(bucket_lengths=(64,)), group_size=4)
    with pytest.raises(ValueError, match="strictly increasing"):
        BatchingConfig(bucket_lengths=(64, 32))
