"""Agent episodes -> learner rows with GRPO advantages, filtered as the paper does.

Per group (one task's rollouts): failed episodes (engine, sandbox or grader errors) are left
out first, since they say nothing about the policy; advantages are computed over the members
left; then timed-out episodes (wall limit, or > 20% of executions timed out) are masked out,
keeping their place in the group statistics; groups whose rewards are all equal carry no signal
and can be dropped. Every kept episode contributes one row per token sequence (several when its
context was pruned), all with the episode's advantage.
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


@dataclasses.dataclass(frozen=True)
class FilterConfig:
    std_normalize: bool = True  # GRPO; False is Dr.GRPO
    drop_zero_variance: bool = True
    max_timeout_fraction: float = 0.2  # the paper's filter on timed-out executions
    min_group_size: int = 2  # a group needs this many usable episodes for an advantage


@dataclasses.dataclass(frozen=True)
class Selection:
    rows: list[Row]
    advantages: list[float]
    failed: int  # episodes left out for infrastructure errors
    timed_out: int  # masked out after advantages
    zero_variance_groups: int
    kept_episodes: int


def rows_of(trajectory: Trajectory, group_id: int | str = 0) -> list[Row]:
    return [Row(tuple(s.ids), tuple(s.loss_mask), tuple(s.logprobs), trajectory.reward, group_id)
            for s in trajectory.sequences]


def select(groups: Sequence[Sequence[Trajectory]], config: FilterConfig) -> Selection:
    rows: list[Row] = []
    advantages: list[float] = []
    failed = timed_out = zero_variance = kept = 0
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
            for row in rows_of(t, g):
                rows.append(row)
                advantages.append(float(a))
    return Selection(rows, advantages, failed, timed_out, zero_variance, kept)
