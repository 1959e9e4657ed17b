"""Agent episodes -> learner rows with GRPO advantages, filtered as the paper does.

Per group (one task's rollouts): failed episodes (engine, sandbox or grader errors) are left
out first, since they say nothing about the policy; advantages are computed over the members
left; then timed-out episodes (wall limit, or > 20% of executions timed out) are masked out,
keeping their place in the group statistics; groups whose rewards are all equal carry no signal
and can be dropped (the release keeps them: advantage 0, still counted in the loss's
normaliser). An episode whose context was pruned holds several token sequences; `pruned_rows`
says which become rows, all with the episode's advantage:

    last     the final context's sequence only (the release trains one row per episode, built
             from its final, pruned message list; turns pruned away are not trained)
    all      every sequence a row of full weight (under seq-mean aggregation a pruned episode
             counts once per sequence)
    episode  every sequence, each weighted 1/k, the sequence count being the episode count (a
             pruned episode counts once, its k contexts share its weight)

A row's weight is folded into its advantage: the clipped, dual-clipped and TIS-weighted policy
loss is positively homogeneous in the advantage, so this equals weighting the row's loss.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from sandmle_jax.agent.trajectory import Trajectory
from sandmle_jax.rl import grpo


@dataclasses.dataclass(frozen=True)
class Row:
    """One learner row (batching.TrajectoryLike)."""

    token_ids: tuple[int, ...]
    loss_mask: tuple[int, ...]
    rollout_logprobs: tuple[float, ...]
    reward: float = 0.0
    group_id: int | str = 0


PRUNED_ROWS = ("last", "all", "episode")


@dataclasses.dataclass(frozen=True)
class FilterConfig:
    std_normalize: bool = True  # GRPO; False is Dr.GRPO
    drop_zero_variance: bool = True
    max_timeout_fraction: float = 0.2  # the paper's filter on timed-out executions
    min_group_size: int = 2  # a group needs this many usable episodes for an advantage
    pruned_rows: str = "all"  # which sequences of a pruned episode become rows (see above)

    def __post_init__(self):
        if self.pruned_rows not in PRUNED_ROWS:
            raise ValueError(f"pruned_rows {self.pruned_rows!r} unknown; choose one of "
                             f"{PRUNED_ROWS}")


@dataclasses.dataclass(frozen=True)
class Selection:
    rows: list[Row]
    advantages: list[float]
    failed: int  # episodes left out for infrastructure errors
    timed_out: int  # masked out after advantages
    zero_variance_groups: int
    kept_episodes: int
    seq_count: float  # the loss's sequence count: rows, or episodes under pruned_rows="episode"


def rows_of(trajectory: Trajectory, group_id: int | str = 0) -> list[Row]:
    return [Row(tuple(s.ids), tuple(s.loss_mask), tuple(s.logprobs), trajectory.reward, group_id)
            for s in trajectory.sequences]


def select(groups: Sequence[Sequence[Trajectory]], config: FilterConfig) -> Selection:
    rows: list[Row] = []
    advantages: list[float] = []
    failed = timed_out = zero_variance = kept = 0
    seq_count = 0.0
    for g, group in enumerate(groups):
        usable = [t for t in group if not t.failed]
        failed += len(group) - len(usable)
        if len(usable) < config.min_group_size:
            continue
        rewards = np.array([t.reward for t in usable], np.float32)
        if np.all(rewards == rewards[0]):
            zero_variance += 1
            if config.drop_zero_variance:
                continue
        group_adv = np.asarray(grpo.compute_advantages(rewards, len(usable),
                                                       std_normalize=config.std_normalize))
        for t, a in zip(usable, group_adv):
            if t.timed_out(config.max_timeout_fraction):
                timed_out += 1
                continue
            kept += 1
            trained = _trained_rows(t, g, config.pruned_rows)
            weight = 1.0 / len(trained) if config.pruned_rows == "episode" and trained else 1.0
            rows += trained
            advantages += [float(a) * weight] * len(trained)
            seq_count += weight * len(trained)
    return Selection(rows, advantages, failed, timed_out, zero_variance, kept, seq_count)


def _trained_rows(trajectory: Trajectory, group_id: int, pruned_rows: str) -> list[Row]:
    """The rows `pruned_rows` trains of an episode; sequences without a policy token carry no
    loss and are left out (one ends a context that filled up right after a pruning)."""
    rows = [row for row in rows_of(trajectory, group_id) if any(row.loss_mask)]
    return rows[-1:] if pruned_rows == "last" else rows
