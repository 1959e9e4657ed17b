"""Trajectories -> fixed-shape micro-batches, so the jitted step compiles once per length bucket.

A step's trajectories are sorted by length and cut into micro-batches of `rows` rows; each
micro-batch is right-padded to the smallest configured bucket that holds its longest row, and
short micro-batches are filled with empty rows. Shapes are then (rows, bucket) only, and the
number of distinct shapes (compilations) is at most the number of buckets.

Advantages are computed here, per group, before any trajectory is dropped (timeouts,
zero-variance groups): dropped trajectories keep their place in their group's statistics, and
are then left out of the batch entirely, which is the same as masking their tokens.
"""

import dataclasses
from collections.abc import Sequence
from typing import Protocol

import flax.struct
import jax
import numpy as np

from sandmle_jax.rl import grpo


class TrajectoryLike(Protocol):
    """What the learner reads from a trajectory (the rollout contract names these fields)."""
    token_ids: Sequence[int]             # the whole conversation, prompt included
    loss_mask: Sequence[int]             # 1 only on policy-generated tokens
    rollout_logprobs: Sequence[float]    # per token, aligned with token_ids (0 off-policy)
    reward: float
    group_id: int | str                  # trajectories of one task prompt share it


@flax.struct.dataclass
class MicroBatch:
    """One jitted unit of work; every array has `rows` rows and one bucket's length L."""
    input_ids: jax.Array        # (R, L) int32, right-padded with pad_id
    attention_mask: jax.Array   # (R, L) int32, 1 on real tokens
    loss_mask: jax.Array        # (R, L) float32, 1 on policy tokens of kept trajectories
    rollout_logp: jax.Array     # (R, L) float32, aligned with input_ids
    advantages: jax.Array       # (R,) float32


@dataclasses.dataclass(frozen=True)
class LearnerBatch:
    """A mini-batch (one optimizer step) and the normalisers of the whole of it."""
    micro_batches: tuple[MicroBatch, ...]
    token_count: float          # policy tokens in the mini-batch (global_token_count)
    seq_count: float            # trajectories with at least one policy token (global_seq_count)
    num_trajectories: int       # kept trajectories (real rows)


@dataclasses.dataclass(frozen=True)
class BatchingConfig:
    bucket_lengths: tuple[int, ...] = (512, 1024, 2048, 4096)
    rows: int = 4                       # rows per micro-batch
    pad_id: int = 0

    def __post_init__(self) -> None:
        if not self.bucket_lengths or list(self.bucket_lengths) != sorted(set(self.bucket_lengths)):
            raise ValueError(f"bucket_lengths must be strictly increasing and non-empty, got "
                             f"{self.bucket_lengths}")
        if self.rows < 1:
            raise ValueError(f"rows must be >= 1, got {self.rows}")

    def bucket_for(self, length: int) -> int:
        for bucket in self.bucket_lengths:
            if length <= bucket:
                return bucket
        raise ValueError(f"a trajectory of {length} tokens exceeds the largest bucket "
                         f"{self.bucket_lengths[-1]}: add a bucket >= the context limit")


def _ordered_groups(trajectories: Sequence[TrajectoryLike], group_size: int) -> list[int]:
    """Indices laid out group after group (first-seen group order, members in input order)."""
    groups: dict[int | str, list[int]] = {}
    for i, traj in enumerate(trajectories):
        groups.setdefault(traj.group_id, []).append(i)
    bad = {g: len(m) for g, m in groups.items() if len(m) != group_size}
    if bad:
        raise ValueError(f"groups must have exactly {group_size} trajectories; these do not: "
                         f"{bad}. Drop incomplete groups before batching, or use drop=...")
    return [i for members in groups.values() for i in members]


def _check(traj: TrajectoryLike, index: int) -> None:
    n = len(traj.token_ids)
    if len(traj.loss_mask) != n or len(traj.rollout_logprobs) != n:
        raise ValueError(f"trajectory {index}: token_ids ({n}), loss_mask "
                         f"({len(traj.loss_mask)}) and rollout_logprobs "
                         f"({len(traj.rollout_logprobs)}) must have one entry per token")
    if n and traj.loss_mask[0]:
        raise ValueError(f"trajectory {index}: token 0 is in the loss mask, but no log-prob "
                         "exists for the first token; the prompt must come first")


def make_learner_batch(trajectories: Sequence[TrajectoryLike], config: BatchingConfig, *,
                       group_size: int, std_normalize: bool = True,
                       drop: Sequence[bool] | None = None,
                       drop_zero_variance: bool = False) -> LearnerBatch:
    """Advantages per group, then drop, sort by length and pack into bucketed micro-batches.

    drop: per trajectory, True to leave it out of the loss after advantages (e.g. timeouts).
    drop_zero_variance: also leave out groups whose rewards are all equal (their advantages are
    0, so they only dilute the sequence/token normalisers).
    """
    for i, traj in enumerate(trajectories):
        _check(traj, i)
    order = _ordered_groups(trajectories, group_size)
    rewards = np.array([trajectories[i].reward for i in order], np.float32)
    advantages = np.asarray(grpo.compute_advantages(rewards, group_size,
                                                    std_normalize=std_normalize))
    dropped = np.zeros(len(order), bool) if drop is None else np.asarray(drop, bool)[order]
    if drop_zero_variance:
        dropped |= np.asarray(grpo.zero_variance_groups(rewards, group_size))
    kept = [(order[k], float(advantages[k])) for k in range(len(order))
            if not dropped[k] and any(trajectories[order[k]].loss_mask)]
    return _batch(kept, trajectories, config)


def pack(rows: Sequence[TrajectoryLike], advantages: Sequence[float],
         config: BatchingConfig, seq_count: float | None = None) -> LearnerBatch:
    """Packs rows whose advantages are already known, with no group statistics.

    For SFT (every advantage 1 with token-mean aggregation is the NLL gradient) and for
    episodes split into several rows (a pruned context), whose advantage is computed per
    episode upstream and shared by its rows. `reward` and `group_id` are not read.
    `seq_count` replaces the sequence normaliser (rows with a policy token) where rows are
    weighted, e.g. by episode (episodes.select's `seq_count`).
    """
    if len(rows) != len(advantages):
        raise ValueError(f"{len(rows)} rows but {len(advantages)} advantages")
    for i, row in enumerate(rows):
        _check(row, i)
    kept = [(i, float(a)) for i, a in enumerate(advantages) if any(rows[i].loss_mask)]
    batch = _batch(kept, rows, config)
    return batch if seq_count is None else dataclasses.replace(batch, seq_count=float(seq_count))


def _batch(kept: list[tuple[int, float]], trajectories: Sequence[TrajectoryLike],
           config: BatchingConfig) -> LearnerBatch:
    """Sorts (index, advantage) rows by length and packs them into bucketed micro-batches."""
    kept = sorted(kept, key=lambda item: -len(trajectories[item[0]].token_ids))
    micro_batches = []
    for start in range(0, len(kept), config.rows):
        chunk = kept[start:start + config.rows]
        length = config.bucket_for(max(len(trajectories[i].token_ids) for i, _ in chunk))
        micro_batches.append(_pack(chunk, trajectories, length, config))
    token_count = float(sum(sum(trajectories[i].loss_mask) for i, _ in kept))
    return LearnerBatch(micro_batches=tuple(micro_batches), token_count=token_count,
                        seq_count=float(len(kept)), num_trajectories=len(kept))


def _pack(chunk: list[tuple[int, float]], trajectories: Sequence[TrajectoryLike], length: int,
          config: BatchingConfig) -> MicroBatch:
    rows = config.rows
    ids = np.full((rows, length), config.pad_id, np.int32)
    attn = np.zeros((rows, length), np.int32)
    loss_mask = np.zeros((rows, length), np.float32)
    logp = np.zeros((rows, length), np.float32)
    adv = np.zeros((rows,), np.float32)
    for r, (i, a) in enumerate(chunk):
        traj = trajectories[i]
        n = len(traj.token_ids)
        ids[r, :n] = traj.token_ids
        attn[r, :n] = 1
        loss_mask[r, :n] = traj.loss_mask
        logp[r, :n] = traj.rollout_logprobs
        adv[r] = a
    # Filler rows attend to their first (pad) token so no attention row is empty (an all-masked
    # softmax can give NaN, and 0 * NaN in the backward pass would poison the gradient).
    attn[len(chunk):, 0] = 1
    return MicroBatch(input_ids=ids, attention_mask=attn, loss_mask=loss_mask, rollout_logp=logp,
                      advantages=adv)
