"""What an episode leaves for the learner: token sequences with masks and log-probs, and a reward.

A trajectory is usually one sequence: the whole conversation, loss mask 1 only on tokens the
policy generated. When the context overflows and turns are pruned (SANDMLE.md's rule), the
policy's later turns were sampled from the pruned context, so a new sequence starts there: each
sequence holds exactly the context its tokens were sampled from. All sequences of a trajectory
share its reward (and so its advantage).
"""

from __future__ import annotations

import dataclasses
from typing import Any

# Why an episode ended. "answer" and the limits are normal ends; the *_error ones mean the
# episode is unusable for learning (not the policy's fault) and is left out of the step.
TERMINATIONS = ("answer", "turn_limit", "context_limit", "time_limit", "engine_error",
                "sandbox_error", "grader_error")
FAILED = ("engine_error", "sandbox_error", "grader_error")


@dataclasses.dataclass
class TokenSequence:
    """One training row: `ids`, `loss_mask` (1 = sampled by the policy) and the rollout log-probs
    of those tokens (0.0 where the mask is 0)."""

    ids: list[int] = dataclasses.field(default_factory=list)
    loss_mask: list[int] = dataclasses.field(default_factory=list)
    logprobs: list[float] = dataclasses.field(default_factory=list)

    def extend(self, ids, *, generated: bool = False, logprobs=None) -> None:
        ids = [int(t) for t in ids]
        if generated and (logprobs is None or len(logprobs) != len(ids)):
            raise ValueError("generated tokens need one log-prob each")
        self.ids += ids
        self.loss_mask += [1 if generated else 0] * len(ids)
        self.logprobs += [float(x) for x in logprobs] if generated else [0.0] * len(ids)

    @property
    def num_generated(self) -> int:
        return sum(self.loss_mask)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class EpisodeInfo:
    task_id: str
    termination: str
    turns: int
    format_rate: float
    score: float | None = None
    valid_submission: bool = False
    medal: str | None = None  # "gold" | "silver" | "bronze" | None
    above_median: bool = False
    humanrank: float | None = None
    exec_seconds: float = 0.0
    executions: int = 0
    exec_timeouts: int = 0
    wall_seconds: float = 0.0
    error: str | None = None
    weight_versions: tuple[str, ...] = ()
    scaffold: str = "sandmle"  # which agent scaffold played the episode

    def __post_init__(self):
        if self.termination not in TERMINATIONS:
            raise ValueError(f"unknown termination {self.termination!r}; known: {TERMINATIONS}")


@dataclasses.dataclass(frozen=True)
class Trajectory:
    sequences: tuple[TokenSequence, ...]
    reward: float
    info: EpisodeInfo

    @property
    def failed(self) -> bool:
        """Unusable for learning: left out of the step (it is recorded, never silently lost)."""
        return self.info.termination in FAILED

    def timed_out(self, max_timeout_fraction: float = 0.2) -> bool:
        """The paper's filter: the episode ran out of wall time, or too many executions timed out."""
        info = self.info
        return info.termination == "time_limit" or (
            info.executions > 0 and info.exec_timeouts > max_timeout_fraction * info.executions)

    def to_dict(self) -> dict[str, Any]:
        return {"sequences": [s.to_dict() for s in self.sequences], "reward": self.reward,
                "info": dataclasses.asdict(self.info)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trajectory:
        """The inverse of `to_dict` (a JSON round trip gives an equal trajectory)."""
        info = dict(data["info"], weight_versions=tuple(data["info"]["weight_versions"]))
        return cls(tuple(TokenSequence(**s) for s in data["sequences"]), data["reward"],
                   EpisodeInfo(**info))
