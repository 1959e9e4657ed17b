"""Trajectory rewards from a grade report and the format rate, one registered function a scheme.

Schemes (SANDMLE.md):
- `paper_dense` (default): 0.1*format + 0.3*[valid] + 0.1*[>= median] + 0.2*[>= bronze]
  + 0.2*[>= silver] + 0.1*[>= gold]; the levels are cumulative, so gold earns all four.
- `release_dense` (the authors' released code): 0.1*format + 0.2*[valid] + the highest tier
  reached only (gold 0.7, silver 0.6, bronze 0.5, median 0.1).
- `sparse_gold` (the paper's ablation): 0.1*format + 0.9*[gold].
"Reaching" a level is inclusive (tie the threshold and it counts), for the median too.
"""

from __future__ import annotations

from collections.abc import Callable

from sandmle_jax.tasks.grading import GradeReport

RewardFn = Callable[[GradeReport, float], float]
_SCHEMES: dict[str, RewardFn] = {}
DEFAULT_SCHEME = "paper_dense"


def register_scheme(name: str) -> Callable[[RewardFn], RewardFn]:
    def register(fn: RewardFn) -> RewardFn:
        if name in _SCHEMES:
            raise ValueError(f"reward scheme {name!r} registered twice")
        _SCHEMES[name] = fn
        return fn
    return register


def scheme_names() -> list[str]:
    return sorted(_SCHEMES)


def reward(report: GradeReport, format_rate: float, scheme: str = DEFAULT_SCHEME) -> float:
    """The scalar reward of one trajectory; `format_rate` is the fraction of well-formed turns."""
    if scheme not in _SCHEMES:
        raise KeyError(f"unknown reward scheme {scheme!r}; known: {scheme_names()}")
    if not 0.0 <= format_rate <= 1.0:
        raise ValueError(f"format_rate must be in [0, 1], got {format_rate}")
    return _SCHEMES[scheme](report, format_rate)


def _valid(report: GradeReport) -> bool:
    return report.valid_submission and report.score is not None


@register_scheme("paper_dense")
def _paper_dense(report: GradeReport, format_rate: float) -> float:
    r = 0.1 * format_rate
    if _valid(report):
        r += 0.3
        r += 0.1 * report.reached("median") + 0.2 * report.reached("bronze")
        r += 0.2 * report.reached("silver") + 0.1 * report.reached("gold")
    return r


_RELEASE_TIERS = (("gold", 0.7), ("silver", 0.6), ("bronze", 0.5), ("median", 0.1))


@register_scheme("release_dense")
def _release_dense(report: GradeReport, format_rate: float) -> float:
    r = 0.1 * format_rate
    if _valid(report):
        r += 0.2
        r += next((bonus for level, bonus in _RELEASE_TIERS if report.reached(level)), 0.0)
    return r


@register_scheme("sparse_gold")
def _sparse_gold(report: GradeReport, format_rate: float) -> float:
    return 0.1 * format_rate + (0.9 if _valid(report) and report.reached("gold") else 0.0)
