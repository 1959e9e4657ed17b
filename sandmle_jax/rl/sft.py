"""Multi-turn SFT on agent trajectories (assistant tokens only), on the GRPO learner machinery.

With every advantage 1, `token-mean` aggregation and on-policy ratios (exactly 1, so no clip
binds), the GRPO policy-gradient loss has the gradient of the mean negative log-likelihood of
the masked tokens: SFT needs no second training path. The Seed-SFT baseline and the warm start
of the tiny recipe both run through here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from jax.experimental import multihost_utils
import numpy as np

from sandmle_jax.agent.trajectory import Trajectory
from sandmle_jax.rl import batching, episodes, learner as learner_lib

SFT_LOSS = learner_lib.LossConfig(aggregation="token-mean", dual_clip=None, tis_cap=None,
                                  kl_coef=0.0)


def sft_rows(trajectories: Sequence[Trajectory]) -> list[episodes.Row]:
    """Every sequence of every usable trajectory (failed ones taught nothing worth imitating)."""
    return [row for t in trajectories if not t.failed for row in episodes.rows_of(t)]


def sft_batches(rows: Sequence[episodes.Row], batch_size: int, config: batching.BatchingConfig,
                seed: int, start_step: int = 0) -> Iterator[batching.LearnerBatch]:
    """An endless stream of shuffled mini-batches; step k's batch depends only on (seed, k)."""
    if not rows:
        raise ValueError("no SFT rows: every reference episode failed or generated nothing")
    step = start_step
    while True:
        rng = np.random.default_rng([seed, step])
        picked = rng.choice(len(rows), size=min(batch_size, len(rows)), replace=False)
        chosen = [rows[i] for i in picked]
        yield batching.pack(chosen, [1.0] * len(chosen), config)
        step += 1


def mean_nll(learner: learner_lib.Learner, params, batch: batching.LearnerBatch) -> float:
    """Mean negative log-likelihood per policy token (at temperature 1), for monitoring."""
    total, count = 0.0, 0.0
    for micro in batch.micro_batches:
        # Gathered whole: in a multi-process job the rows are spread over every process.
        logp = np.asarray(multihost_utils.process_allgather(learner.logprobs(params, micro),
                                                            tiled=True))
        mask = np.asarray(micro.loss_mask)
        total += float(-(logp * mask).sum())
        count += float(mask.sum())
    return total / max(count, 1.0)
