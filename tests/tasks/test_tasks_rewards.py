"""Reward schemes reproduce SANDMLE.md's formulas at every tier."""

import pytest

from sandmle_jax.tasks import rewards
from sandmle_jax.tasks.grading import GradeReport


def _report(score, lower=False, valid=True):
    thresholds = (5.0, 4.0, 3.0, 2.0) if lower else (0.5, 0.6, 0.7, 0.8)
    return GradeReport(
        competition_id="t", score=score if valid else None,
        median_threshold=thresholds[0], bronze_threshold=thresholds[1],
        silver_threshold=thresholds[2], gold_threshold=thresholds[3],
        any_medal=False, gold_medal=False, silver_medal=False, bronze_medal=False,
        above_median=False, submission_exists=True, valid_submission=valid,
        is_lower_better=lower, submission_path="s.csv", created_at="now")


# score -> (paper_dense, release_dense, sparse_gold) rewards at format rate 1.0, by hand.
CASES = [
    (None, (0.1, 0.1, 0.1)),
    (0.1, (0.4, 0.3, 0.1)),          # valid, below median
    (0.5, (0.5, 0.4, 0.1)),          # ties the median: reached (inclusive)
    (0.65, (0.7, 0.8, 0.1)),         # bronze
    (0.7, (0.9, 0.9, 0.1)),          # silver
    (0.99, (1.0, 1.0, 1.0)),         # gold
]


@pytest.mark.parametrize("score, expected", CASES)
def test_schemes_higher_is_better(score, expected):
    report = _report(score, valid=score is not None)
    for scheme, want in zip(("paper_dense", "release_dense", "sparse_gold"), expected):
        assert rewards.reward(report, 1.0, scheme) == pytest.approx(want), scheme


def test_lower_is_better_and_format_rate():
    report = _report(2.5, lower=True)  # silver (<= 3.0), not gold (> 2.0)
    assert rewards.reward(report, 0.5) == pytest.approx(0.05 + 0.3 + 0.1 + 0.2 + 0.2)
    assert rewards.reward(report, 0.0, "release_dense") == pytest.approx(0.2 + 0.6)
    assert rewards.reward(report, 0.0, "sparse_gold") == 0.0


def test_default_scheme_is_paper_dense():
    assert rewards.DEFAULT_SCHEME == "paper_dense"
    assert set(rewards.scheme_names()) == {"paper_dense", "release_dense", "sparse_gold"}


def test_bad_arguments():
    with pytest.raises(KeyError, match="unknown reward scheme"):
        rewards.reward(_report(0.5), 1.0, "nope")
    with pytest.raises(ValueError, match="format_rate"):
        rewards.reward(_report(0.5), 1.5)
