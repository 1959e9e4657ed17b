"""Verification gates: a candidate failing any is rejected, with the reason recorded.

Each gate is a registered function `(candidate, draft) -> reason or None`; `draft` is the
candidate's data as a gradable task, so every score here comes from `tasks.grading`.
Gates run in registration order and all of them run, so a report counts every failure.

Known limit: the leak scan tests the columns of train.csv one at a time; it does not look
inside a text or image column (which is the task's input) or for leaks spread over columns.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import pathlib
import re
import tempfile
from collections.abc import Callable

import numpy as np

from sandmle_jax.synth import seed_dna, submissions
from sandmle_jax.synth.candidate import Candidate, score_frame
from sandmle_jax.synth.dna import TRAIN_ROWS
from sandmle_jax.tasks import medals, profile
from sandmle_jax.tasks.task import Task, TaskError

TEST_ROWS = (20, 200)
MAX_PUBLIC_BYTES = 8 << 20
MAX_COLUMNS = 400

Gate = Callable[[Candidate, Task], str | None]
GATES: dict[str, Gate] = {}


def register_gate(name: str):
    def decorator(fn: Gate) -> Gate:
        GATES[name] = fn
        return fn
    return decorator


@dataclasses.dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    reason: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def verify(candidate: Candidate, draft: Task) -> list[GateResult]:
    results = []
    for name, gate in GATES.items():
        try:
            reason = gate(candidate, draft)
        except Exception as e:  # a gate that cannot decide rejects, with the reason
            reason = f"gate crashed: {type(e).__name__}: {e}"
        results.append(GateResult(name, reason is None, reason or ""))
    return results


def _reaches(score: float | None, threshold: float, lower_is_better: bool) -> bool:
    return score is not None and medals.reaches(score, threshold, lower_is_better)


@register_gate("thresholds_monotone")
def thresholds_monotone(candidate: Candidate, draft: Task) -> str | None:
    if candidate.thresholds is None:
        failed = {k: v.error for k, v in candidate.ladder.items() if v.score is None}
        return f"the baseline ladder did not yield four scores: {failed}"
    try:
        candidate.thresholds.check_monotone(candidate.dna.lower_is_better, strict=True)
    except TaskError as e:
        return str(e)
    return None


def _below_median(candidate: Candidate, check: str) -> str | None:
    if candidate.thresholds is None:
        return "no thresholds"
    score = candidate.checks.get(check)
    if score is None:
        return f"the {check} submission did not grade"
    if _reaches(score, candidate.thresholds.median, candidate.dna.lower_is_better):
        return (f"the {check} submission scores {score:.6g}, not below the median "
                f"threshold {candidate.thresholds.median:.6g}")
    return None


@register_gate("sample_below_median")
def sample_below_median(candidate: Candidate, draft: Task) -> str | None:
    return _below_median(candidate, "sample")


@register_gate("constant_below_median")
def constant_below_median(candidate: Candidate, draft: Task) -> str | None:
    return _below_median(candidate, "constant")


@register_gate("shuffled_below_median")
def shuffled_below_median(candidate: Candidate, draft: Task) -> str | None:
    return _below_median(candidate, "shuffled")


@register_gate("gold_reaches_gold")
def gold_reaches_gold(candidate: Candidate, draft: Task) -> str | None:
    if candidate.thresholds is None:
        return "no thresholds"
    score = candidate.checks.get("gold")
    if not _reaches(score, candidate.thresholds.gold, candidate.dna.lower_is_better):
        return (f"the gold reference scores {score}, short of the gold threshold "
                f"{candidate.thresholds.gold:.6g}")
    return None


@register_gate("evaluator_agrees")
def evaluator_agrees(candidate: Candidate, draft: Task) -> str | None:
    """The MLOps evaluator.py scored and refused as the registry did (evaluator_check)."""
    problems = candidate.evaluator_problems
    if candidate.evaluator is None:
        return "no evaluator.py" + (f": {problems[0]}" if problems else "")
    if problems:
        more = f" (and {len(problems) - 2} more)" if len(problems) > 2 else ""
        return "evaluator.py disagrees with the registry: " + "; ".join(problems[:2]) + more
    return None


def _row_keys(candidate: Candidate, frame) -> set[str]:
    """Each row's inputs as one string; file paths stand for their files' bytes."""
    data = candidate.data
    columns = list(data.baseline.feature_columns)
    view = frame[columns].apply(lambda column: column.map(str))
    if data.files:
        for column in columns:
            view[column] = [hashlib.sha256(data.files[p]).hexdigest() if p in data.files else p
                            for p in view[column]]
    return set(view.agg("\x1f".join, axis=1))


@register_gate("no_duplicate_rows")
def no_duplicate_rows(candidate: Candidate, draft: Task) -> str | None:
    shared = _row_keys(candidate, candidate.data.train) & _row_keys(candidate, candidate.data.test)
    if shared:
        return f"{len(shared)} test rows repeat a training row's inputs exactly"
    return None


@register_gate("no_leaky_column")
def no_leaky_column(candidate: Candidate, draft: Task) -> str | None:
    """No single train.csv column (the id included) predicts the target at gold level. A
    column of content (a note, an image or audio path) is the task's input, not a leak."""
    data, thresholds = candidate.data, candidate.thresholds
    if thresholds is None:
        return "no thresholds"
    columns = [data.id_column] + [  # paths to per-row files or free text: the row's content
        c for c in data.baseline.feature_columns
        if not (profile.is_media_names(data.train[c]) or profile.is_text(data.train[c]))]
    leaks = []
    with tempfile.TemporaryDirectory(prefix="leakscan-") as tmp:
        for column in columns:
            frame = submissions.single_column(data, column)
            score, error = score_frame(draft, frame, pathlib.Path(tmp) / f"{len(leaks)}.csv")
            if _reaches(score, thresholds.gold, candidate.dna.lower_is_better):
                leaks.append(f"{column} ({score:.4g})")
    if leaks:
        return (f"single columns reach the gold threshold {thresholds.gold:.4g} on their own: "
                f"{leaks}")
    return None


@register_gate("sizes_within_bounds")
def sizes_within_bounds(candidate: Candidate, draft: Task) -> str | None:
    data = candidate.data
    problems = []
    if not TRAIN_ROWS[0] <= len(data.train) <= TRAIN_ROWS[1]:
        problems.append(f"{len(data.train)} train rows, outside {list(TRAIN_ROWS)}")
    if not TEST_ROWS[0] <= len(data.test) <= TEST_ROWS[1]:
        problems.append(f"{len(data.test)} test rows, outside {list(TEST_ROWS)}")
    if data.train.shape[1] > MAX_COLUMNS:
        problems.append(f"{data.train.shape[1]} columns, over {MAX_COLUMNS}")
    size = sum(p.stat().st_size for p in draft.public_dir.rglob("*") if p.is_file())
    if size > MAX_PUBLIC_BYTES:
        problems.append(f"public/ holds {size} bytes, over {MAX_PUBLIC_BYTES}")
    return "; ".join(problems) or None


_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.]*\d)")


def _matches(token: str, value: float) -> bool:
    """Whether a number printed in text is `value` at the text's precision (>= 2 decimals, or
    an integer written with 3+ significant digits)."""
    decimals = len(token.split(".")[1]) if "." in token else 0
    if decimals < 2 and not (decimals == 0 and len(token.lstrip("-")) >= 3 and value == int(value)):
        return False
    return math.isclose(float(token), round(value, decimals), abs_tol=0.5 * 10 ** -decimals)


@register_gate("description_clean")
def description_clean(candidate: Candidate, draft: Task) -> str | None:
    """The description prints no rule parameter, no specific answer value, and no test id
    beside its answer."""
    text = candidate.description
    if not text.strip():
        return "the description is empty"
    tokens = _NUMBER.findall(text)
    params = [p for p in candidate.data.rule_parameters if any(_matches(t, abs(p)) or _matches(t, p)
                                                                 for t in tokens)]
    if params:
        return f"the description prints hidden rule parameters {params[:5]}"
    data = candidate.data
    answers = data.answers
    numeric = [c for c in data.target_columns
               if answers[c].dtype.kind == "f" and data.baseline.output == "value"]
    leaked = sorted({t for c in numeric for t in tokens if "." in t
                     and np.isclose(answers[c].to_numpy(dtype=float), float(t), atol=1e-9).any()})
    if leaked:
        return f"the description prints answer values {leaked[:5]}"
    by_id = {str(i): {str(v) for v in row}
             for i, row in zip(answers[data.id_column], answers[list(data.target_columns)].values)}
    for line in text.splitlines():
        words = set(re.findall(r"-?\w+(?:\.\d+)?", line))
        for token in words & set(by_id):
            if words & (by_id[token] - {token}):
                return f"the description pairs test id {token} with its answer: {line.strip()!r}"
    return None


@register_gate("deterministic")
def deterministic(candidate: Candidate, draft: Task) -> str | None:
    digest = candidate.data.digest()
    if candidate.replay_digest != digest:
        return (f"the same seed gave different data (checksums {digest[:12]} vs "
                f"{candidate.replay_digest[:12]}); seed every random draw from dna.seed")
    return None


@register_gate("seed_dna_kept")
def seed_dna_kept(candidate: Candidate, draft: Task) -> str | None:
    """A real seed's descendant, read back from its files, keeps the seed's structure
    (`seed_dna.micro_expectation`); shipped seeds carry no DNA to keep."""
    if not candidate.dna.seed_dna:
        return None
    expected = seed_dna.micro_expectation(seed_dna.SeedDNA.from_dict(candidate.dna.seed_dna))
    drifted = seed_dna.drift(expected, seed_dna.read_seed_dna(draft, measure_signal=False))
    return f"drifted from seed {candidate.dna.seed_id}: {'; '.join(drifted)}" if drifted else None
