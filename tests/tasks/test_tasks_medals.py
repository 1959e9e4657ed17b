"""Medal positions per leaderboard-size bracket (numbers worked out by hand), tiers, HumanRank."""

import numpy as np
import pytest

from sandmle_jax.tasks import medals
from sandmle_jax.tasks.task import Thresholds

# num_teams -> (gold, silver, bronze) 1-based positions, computed by hand from SANDMLE.md's rules.
HAND_POSITIONS = {
    1: (1, 1, 1),
    5: (1, 1, 2),
    50: (5, 10, 20),
    99: (9, 19, 39),
    100: (10, 20, 40),
    150: (10, 30, 60),
    249: (10, 49, 99),
    250: (10, 50, 100),
    600: (11, 50, 100),
    999: (11, 50, 100),
    1000: (12, 50, 100),
    5000: (20, 250, 500),
}


@pytest.mark.parametrize("n", sorted(HAND_POSITIONS))
def test_medal_positions_by_bracket(n):
    assert medals.medal_positions(n) == HAND_POSITIONS[n]


@pytest.mark.parametrize("n", sorted(HAND_POSITIONS))
@pytest.mark.parametrize("lower", [False, True])
def test_leaderboard_thresholds(n, lower):
    # Position p holds score p (lower better) or n - p + 1 (higher better); shuffled on input.
    positions = np.arange(1, n + 1, dtype=float)
    scores = positions if lower else n - positions + 1
    shuffled = np.random.default_rng(n).permutation(scores)
    got = medals.leaderboard_thresholds(shuffled, lower)
    gold, silver, bronze = HAND_POSITIONS[n]
    at = (lambda p: float(p)) if lower else (lambda p: float(n - p + 1))
    assert (got.gold, got.silver, got.bronze) == (at(gold), at(silver), at(bronze))
    assert got.median == pytest.approx(float(np.median(scores)))


def test_direction_from_leaderboard():
    assert medals.lower_is_better_from_leaderboard([0.1, 0.2, 0.5]) is True
    assert medals.lower_is_better_from_leaderboard([0.9, 0.7, 0.5]) is False


T_HIGH = Thresholds(median=0.5, bronze=0.6, silver=0.7, gold=0.8)
T_LOW = Thresholds(median=5.0, bronze=4.0, silver=3.0, gold=2.0)


@pytest.mark.parametrize("score, thresholds, lower, expected", [
    (0.8, T_HIGH, False, (True, False, False, True)),    # tie gold: gold, medals exclusive
    (0.79, T_HIGH, False, (False, True, False, True)),
    (0.6, T_HIGH, False, (False, False, True, True)),    # tie bronze counts
    (0.5, T_HIGH, False, (False, False, False, False)),  # tie median is not above it
    (0.51, T_HIGH, False, (False, False, False, True)),
    (2.0, T_LOW, True, (True, False, False, True)),
    (3.5, T_LOW, True, (False, False, True, True)),
    (5.0, T_LOW, True, (False, False, False, False)),
    (9.0, T_LOW, True, (False, False, False, False)),
    (None, T_HIGH, False, (False, False, False, False)),
])
def test_medals(score, thresholds, lower, expected):
    got = medals.medals(score, thresholds, lower)
    assert (got.gold_medal, got.silver_medal, got.bronze_medal, got.above_median) == expected
    assert got.any_medal == any(expected[:3])


@pytest.mark.parametrize("score, expected", [
    (0.95, 1.0), (0.9, 1.0), (0.85, 0.75), (0.8, 0.75), (0.65, 0.25), (0.5, 0.0), (None, 0.0)])
def test_humanrank_single_board(score, expected):
    assert medals.humanrank(score, [[0.6, 0.9, 0.7, 0.8]], False) == pytest.approx(expected)


def test_humanrank_averages_boards_and_respects_direction():
    # Board A (lower better) [1, 2, 3, 4]: score 2.5 beats position 3 -> (4-3+1)/4 = 0.5.
    # Board B [2, 3]: score 2.5 beats position 2 -> (2-2+1)/2 = 0.5; mean 0.5.
    assert medals.humanrank(2.5, [[4, 3, 2, 1], [3, 2]], True) == pytest.approx(0.5)
    assert medals.humanrank(0.5, [[4, 3, 2, 1], [3, 2]], True) == pytest.approx(1.0)


def test_bad_leaderboards():
    with pytest.raises(ValueError):
        medals.leaderboard_thresholds([], False)
    with pytest.raises(ValueError):
        medals.leaderboard_thresholds([0.5, float("nan")], False)
    with pytest.raises(ValueError):
        medals.humanrank(0.5, [], False)
