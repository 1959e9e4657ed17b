"""Medals from thresholds, thresholds from a Kaggle leaderboard, and HumanRank.

Rank rules follow MLE-bench (positions are 1-based on the leaderboard sorted best first):

    teams N       gold                 silver               bronze
    N < 100       top max(1, 10% of N) top max(1, 20%)      top max(1, 40%)
    100..249      top 10               top max(1, 20%)      top max(1, 40%)
    250..999      top 10 + 0.2% of N   top 50               top 100
    N >= 1000     top 10 + 0.2% of N   top max(1, 5%)       top max(1, 10%)

The threshold of a tier is the score at that position; the median threshold is the median of all
leaderboard scores. Reaching a tier is inclusive (tie the threshold and you have it); being above
the median is strict. Medals are exclusive, as in MLE-bench: a gold report has silver_medal=False.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from sandmle_jax.tasks.task import Thresholds


def reaches(score: float, threshold: float, lower_is_better: bool) -> bool:
    """Whether `score` ties or beats `threshold` (inclusive)."""
    return score <= threshold if lower_is_better else score >= threshold


def strictly_beats(score: float, threshold: float, lower_is_better: bool) -> bool:
    return score < threshold if lower_is_better else score > threshold


@dataclasses.dataclass(frozen=True)
class Medals:
    gold_medal: bool
    silver_medal: bool
    bronze_medal: bool
    above_median: bool

    @property
    def any_medal(self) -> bool:
        return self.gold_medal or self.silver_medal or self.bronze_medal


NO_MEDALS = Medals(False, False, False, False)


def medals(score: float | None, thresholds: Thresholds, lower_is_better: bool) -> Medals:
    if score is None:
        return NO_MEDALS
    gold = reaches(score, thresholds.gold, lower_is_better)
    silver = not gold and reaches(score, thresholds.silver, lower_is_better)
    bronze = not gold and not silver and reaches(score, thresholds.bronze, lower_is_better)
    above_median = strictly_beats(score, thresholds.median, lower_is_better)
    return Medals(gold, silver, bronze, above_median)


def sort_best_first(scores: Sequence[float], lower_is_better: bool) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1 or scores.size == 0:
        raise ValueError("a leaderboard needs at least one score")
    if not np.isfinite(scores).all():
        raise ValueError("leaderboard scores must be finite numbers")
    ordered = np.sort(scores)
    return ordered if lower_is_better else ordered[::-1]


def lower_is_better_from_leaderboard(scores_in_rank_order: Sequence[float]) -> bool:
    """MLE-bench's rule: a board listed best first has a lower top score iff lower is better."""
    return bool(scores_in_rank_order[0] < scores_in_rank_order[-1])


def medal_positions(num_teams: int) -> tuple[int, int, int]:
    """1-based leaderboard positions of the gold, silver and bronze thresholds."""
    n = num_teams
    if n < 1:
        raise ValueError("a leaderboard needs at least one team")
    if n < 100:
        return max(1, int(n * 0.1)), max(1, int(n * 0.2)), max(1, int(n * 0.4))
    if n < 250:
        return 10, max(1, int(n * 0.2)), max(1, int(n * 0.4))
    if n < 1000:
        return 10 + int(n * 0.002), 50, 100
    return 10 + int(n * 0.002), max(1, int(n * 0.05)), max(1, int(n * 0.1))


def leaderboard_thresholds(scores: Sequence[float], lower_is_better: bool) -> Thresholds:
    board = sort_best_first(scores, lower_is_better)
    gold, silver, bronze = medal_positions(len(board))
    return Thresholds(median=float(np.median(board)), bronze=float(board[bronze - 1]),
                      silver=float(board[silver - 1]), gold=float(board[gold - 1]))


def humanrank(score: float | None, leaderboards: Sequence[Sequence[float]],
              lower_is_better: bool) -> float:
    """MLE-Dojo HumanRank, averaged over the given boards (public and private where both exist).

    On a board of N scores sorted best first, p is the first 1-based position whose score the
    submission ties or beats (p = N + 1 if none); the board's rank is (N - p + 1) / N.
    An invalid submission (score None) ranks 0.
    """
    if not leaderboards:
        raise ValueError("humanrank needs at least one leaderboard")
    ranks = []
    for scores in leaderboards:
        board = sort_best_first(scores, lower_is_better)
        n = len(board)
        if score is None:
            ranks.append(0.0)
            continue
        beaten = reaches(score, board, lower_is_better)
        p = int(np.argmax(beaten)) + 1 if beaten.any() else n + 1
        ranks.append((n - p + 1) / n)
    return float(np.mean(ranks))
