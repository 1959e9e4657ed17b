"""The fidelity benchmark's statistics, against numpy re-derivations: ranks (ties, failed
strategies), Spearman's rho of real vs mean micro ranks, and the bootstrap interval."""

import numpy as np
import pytest

from sandmle_jax.synth import fidelity


def test_ranks_put_the_best_first_share_ties_and_sink_failures():
    scores = {"a": 0.9, "b": 0.7, "c": 0.9, "d": None, "e": 0.5}
    assert fidelity.ranks(scores, lower_is_better=False) == {
        "a": 1.5, "c": 1.5, "b": 3.0, "e": 4.0, "d": 5.0}
    assert fidelity.ranks({"x": 2.0, "y": 1.0, "z": float("nan")}, lower_is_better=True) == {
        "y": 1.0, "x": 2.0, "z": 3.0}


def _spearman_by_hand(x, y):
    """Pearson's r of the ranks (no ties in these inputs)."""
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return float(np.corrcoef(rx, ry)[0, 1])


def test_seed_spearman_compares_real_ranks_with_mean_micro_ranks():
    real = {"constant": 0.5, "linear": 0.8, "forest": 0.9, "tuned": 0.95}
    same_order = [{"constant": 0.4, "linear": 0.6, "forest": 0.7, "tuned": 0.75}] * 3
    assert fidelity.seed_spearman(real, same_order, lower_is_better=False) == pytest.approx(1.0)
    micro = [{"constant": 0.5, "linear": 0.9, "forest": 0.7, "tuned": 0.6},
             {"constant": 0.5, "linear": 0.6, "forest": 0.9, "tuned": 0.7}]
    mean_micro_ranks = [4.0, 2.0, 1.5, 2.5]  # constant, linear, forest, tuned (1 = best)
    real_ranks = [4, 3, 2, 1]
    expected = _spearman_by_hand(real_ranks, mean_micro_ranks)
    assert fidelity.seed_spearman(real, micro, lower_is_better=False) == pytest.approx(expected)
    assert fidelity.seed_spearman({k: -v for k, v in real.items()}, same_order,
                                  lower_is_better=True) == pytest.approx(-1.0)


def test_bootstrap_interval_brackets_the_mean_and_narrows_with_agreement():
    values = [0.9, 0.6, 0.8, 0.7, 0.95, 0.5]
    low, high = fidelity.bootstrap_interval(values)
    assert low < np.mean(values) < high and min(values) <= low and high <= max(values)
    tight = fidelity.bootstrap_interval([0.8, 0.81, 0.79, 0.8, 0.8, 0.8])
    assert tight[1] - tight[0] < (high - low) / 5


def test_real_seed_leaderboards_list_the_strategies_best_first_with_scores_between():
    from benchmarks.real_seeds import leaderboard
    board = leaderboard([0.5, 0.9, 0.7, 0.9], lower_is_better=False)
    assert board[0] == 0.9 and board[-1] == 0.5 and board == sorted(board, reverse=True)
    assert 0.7 in board and len(board) == 1 + 2 * 7
    losses = leaderboard([0.3, 0.1], lower_is_better=True)
    assert losses[0] == 0.1 and losses[-1] == 0.3 and losses == sorted(losses)
