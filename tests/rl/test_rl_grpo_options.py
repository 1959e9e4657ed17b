"""The GRPO recipe's options, each through the real path (episode selection -> packing -> the
learner's loss on a tiny Qwen3) against a numpy re-derivation from the per-token log-probs:
zero-variance groups dropped or kept, truncated importance sampling on or off, and which rows a
pruned episode trains (its last context, every context, or every context weighted 1/k)."""

import itertools

import numpy as np
import pytest
from flax import nnx

from sandmle_jax.agent.trajectory import EpisodeInfo, TokenSequence, Trajectory
from sandmle_jax.models.config import Qwen3Config
from sandmle_jax.models.qwen3 import Qwen3
from sandmle_jax.rl import batching, episodes, learner as learner_lib, optim

VOCAB = 64
CONFIG = batching.BatchingConfig(bucket_lengths=(16, 32), rows=2)


def _sequence(rng, length, generated):
    """A prompt then `generated` policy tokens whose rollout log-probs straddle the learner's,
    so that a TIS cap of 2 binds on some tokens and not on others."""
    seq = TokenSequence()
    seq.extend(rng.integers(2, VOCAB, size=length - generated))
    seq.extend(rng.integers(2, VOCAB, size=generated), generated=True,
               logprobs=rng.uniform(-7.0, -2.0, size=generated))
    return seq


def _episode(rng, reward, contexts=1):
    sequences = tuple(_sequence(rng, int(rng.integers(10, 30)), int(rng.integers(3, 8)))
                      for _ in range(contexts))
    info = EpisodeInfo(task_id="t", termination="answer", turns=2, format_rate=1.0)
    return Trajectory(sequences, reward, info)


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    groups = [[_episode(rng, 1.0, contexts=3), _episode(rng, 0.0), _episode(rng, 0.5, contexts=2)],
              [_episode(rng, 0.3), _episode(rng, 0.3, contexts=2), _episode(rng, 0.3)]]
    model = Qwen3(Qwen3Config.tiny(vocab_size=VOCAB), rngs=nnx.Rngs(0))
    apply_fn, params = learner_lib.nnx_apply_fn(model)
    learners = {cap: learner_lib.Learner(apply_fn, optim.make_optimizer(optim.OptimizerConfig()),
                                         learner_lib.LossConfig(tis_cap=cap))
                for cap in (None, 2.0)}
    return groups, learners, params


def _row_logp(learner, params, sequence):
    """The learner's log-probs of one sequence, alone in its batch: the re-derivation's input."""
    row = episodes.Row(tuple(sequence.ids), tuple(sequence.loss_mask), tuple(sequence.logprobs))
    micro = batching.pack([row], [1.0], CONFIG).micro_batches[0]
    return np.asarray(learner.logprobs(params, micro))[0, :len(sequence.ids)]


def _expected_loss(groups, learner, params, *, drop_zero_variance, tis_cap, pruned_rows):
    """seq-mean-token-mean of -A * w_tis over the rows the options train (the ratio is 1: one
    update per step on the step's own samples)."""
    terms, seqs = [], 0.0
    for group in groups:
        r = np.array([t.reward for t in group])
        if np.all(r == r[0]) and drop_zero_variance:
            continue
        std = r.std(ddof=1)
        adv = (r - r.mean()) / (std + 1e-6)
        for t, a in zip(group, adv):
            sequences = t.sequences[-1:] if pruned_rows == "last" else t.sequences
            weight = 1.0 / len(sequences) if pruned_rows == "episode" else 1.0
            for s in sequences:
                mask = np.array(s.loss_mask, bool)
                w = np.ones(mask.sum())
                if tis_cap is not None:
                    logp = _row_logp(learner, params, s)[mask]
                    w = np.minimum(np.exp(logp - np.array(s.logprobs)[mask]), tis_cap)
                terms.append(weight * a * -w.mean())
                seqs += weight
    return sum(terms) / seqs, seqs


@pytest.mark.parametrize("drop_zero_variance, tis_cap, pruned_rows", list(itertools.product(
    (False, True), (None, 2.0), episodes.PRUNED_ROWS)))
def test_each_option_changes_the_loss_as_its_rederivation_says(setup, drop_zero_variance,
                                                                tis_cap, pruned_rows):
    groups, learners, params = setup
    learner = learners[tis_cap]
    chosen = episodes.select(groups, episodes.FilterConfig(
        drop_zero_variance=drop_zero_variance, pruned_rows=pruned_rows))
    batch = batching.pack(chosen.rows, chosen.advantages, CONFIG, seq_count=chosen.seq_count)
    _, metrics = learner.compute_gradients(params, batch)
    expected, seqs = _expected_loss(groups, learner, params, drop_zero_variance=drop_zero_variance,
                                    tis_cap=tis_cap, pruned_rows=pruned_rows)
    assert batch.seq_count == pytest.approx(seqs)
    np.testing.assert_allclose(float(metrics["loss"]), expected, rtol=1e-4, atol=1e-7)
    if tis_cap is not None:  # the cap binds on some tokens, not all
        assert 0.0 < float(metrics["tis_weight_mean"]) < tis_cap


def test_the_options_differ_where_they_should(setup):
    """Guards the test above against options that silently do nothing."""
    groups, _, _ = setup
    rows = {p: episodes.select(groups, episodes.FilterConfig(pruned_rows=p))
            for p in episodes.PRUNED_ROWS}
    assert [len(rows[p].rows) for p in episodes.PRUNED_ROWS] == [3, 6, 6]  # last, all, episode
    assert rows["episode"].seq_count == 3.0 and rows["all"].seq_count == 6.0
    kept = episodes.select(groups, episodes.FilterConfig(drop_zero_variance=False,
                                                         pruned_rows="last"))
    assert len(kept.rows) == 6 and kept.advantages[3:] == [0.0, 0.0, 0.0]


def test_a_context_that_filled_up_right_after_pruning_trains_nothing(setup):
    """An episode can end on a fresh context without a turn: that sequence has no policy token,
    so `last` trains the context before it and `episode` weighs the episode by its others."""
    rng = np.random.default_rng(1)
    head = _episode(rng, 1.0, contexts=2)
    empty = TokenSequence()
    empty.extend(rng.integers(2, VOCAB, size=12))
    pruned = Trajectory(head.sequences + (empty,), 1.0, head.info)
    group = [pruned, _episode(rng, 0.0)]
    last = episodes.select([group], episodes.FilterConfig(pruned_rows="last"))
    assert last.rows[0].token_ids == tuple(head.sequences[-1].ids)
    split = episodes.select([group], episodes.FilterConfig(pruned_rows="episode"))
    assert len(split.rows) == 3 and split.seq_count == 2.0
    assert split.advantages[0] == pytest.approx(split.advantages[2] * -0.5)


def test_an_unknown_option_is_refused():
    with pytest.raises(ValueError, match="pruned_rows 'first' unknown"):
        episodes.FilterConfig(pruned_rows="first")
