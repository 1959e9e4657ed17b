"""Summaries: rates per seed then mean ± SEM over seeds, per-task rows, MLE-bench totals."""

import math

import pytest
from scipy import stats

from sandmle_jax.agent.trajectory import EpisodeInfo, Trajectory
from sandmle_jax.eval import report


def _t(task, medal=None, valid=True, above=False, reward=0.5, termination="answer", rank=None):
    info = EpisodeInfo(task_id=task, termination=termination, turns=3, format_rate=1.0,
                       score=0.7 if valid else None, valid_submission=valid, medal=medal,
                       above_median=above, humanrank=rank)
    return Trajectory(sequences=(), reward=reward, info=info)


def test_rates_are_averaged_per_seed_then_over_seeds():
    results = [
        (0, _t("a", medal="gold", above=True, reward=1.0, rank=1.0)),
        (0, _t("b", valid=False, reward=0.1, rank=0.0)),
        (1, _t("a", medal="bronze", above=True, reward=0.7, rank=0.5)),
        (1, _t("b", termination="engine_error", valid=False, reward=0.0)),
    ]
    summary = report.summarize(results)
    o = summary["overall"]
    # seed 0: valid 1/2, medal 1/2, gold 1/2; seed 1: valid 1/2, medal 1/2, gold 0.
    assert o["valid_submission"] == {"mean": 0.5, "sem": 0.0}
    assert o["any_medal"]["mean"] == 0.5
    assert o["gold"]["mean"] == pytest.approx(0.25)
    assert o["gold"]["sem"] == pytest.approx(math.sqrt(0.125) / math.sqrt(2))  # std(ddof=1)/sqrt(2)
    assert o["reward"]["mean"] == pytest.approx((0.55 + 0.35) / 2)
    assert o["humanrank"]["mean"] == pytest.approx(0.5)
    assert summary["failed_episodes"] == 1 and summary["terminations"]["engine_error"] == 1
    rows = {r["task_id"]: r for r in summary["per_task"]}
    assert rows["a"]["any_medal"] == 1.0 and rows["a"]["gold"] == 0.5
    assert rows["b"]["mean_score"] is None
    assert summary["mlebench"] == {
        "total_runs": 4, "total_valid_submissions": 2, "total_medals": 2,
        "total_gold_medals": 1, "total_silver_medals": 0, "total_bronze_medals": 1,
        "total_above_median": 2}
    assert "valid_submission" in report.format_table(summary)


def test_single_seed_sem_over_tasks():
    results = [(0, _t("a", medal="silver")), (0, _t("b")), (0, _t("c")), (0, _t("d"))]
    o = report.summarize(results)["overall"]
    assert o["silver_or_better"]["mean"] == 0.25
    assert o["silver_or_better"]["sem"] == pytest.approx(0.5 / 2)  # std(ddof=1)=0.5, n=4


def test_empty_is_an_error():
    with pytest.raises(ValueError):
        report.summarize([])


def test_relative_gain_interval_matches_the_exact_binomial_bootstrap():
    """With `before` always 1 the resampled gain is Binomial(n, p)/n - 1: its exact 2.5% and
    97.5% quantiles (scipy) bound the bootstrap's to within one step of 1/n."""
    n, successes = 200, 130
    after = [1.0] * successes + [0.0] * (n - successes)
    point, low, high = report.relative_gain([1.0] * n, after)
    assert point == pytest.approx(successes / n - 1)
    exact_low = stats.binom.ppf(0.025, n, successes / n) / n - 1
    exact_high = stats.binom.ppf(0.975, n, successes / n) / n - 1
    assert abs(low - exact_low) <= 1.5 / n and abs(high - exact_high) <= 1.5 / n
    assert low < point < high


def test_relative_gain_is_open_above_when_resamples_can_lose_every_sft_success():
    """1 success in 10 before: (0.9)^10 = 35% of resamples have none, so the upper bound is
    unbounded (not a huge finite number, not NaN)."""
    before = [1.0] + [0.0] * 9
    after = [1.0] * 5 + [0.0] * 5
    point, low, high = report.relative_gain(before, after)
    assert point == pytest.approx(0.5 / 0.1 - 1)
    assert high == math.inf and math.isfinite(low) and low <= point


def test_relative_gain_is_undefined_when_sft_never_succeeds_and_rejects_unpaired_input():
    assert all(math.isnan(v) for v in report.relative_gain([0.0, 0.0], [1.0, 0.0]))
    with pytest.raises(ValueError, match="paired"):
        report.relative_gain([1.0, 0.0], [1.0])
