"""Task DNA: a seed's abstract schema plus the mutations that make a new task from it.

`extract_dna(seed)` keeps the schema (modality, input shape, label cardinality, task type,
metric, direction) and strips the story; `mutate(dna, rng)` re-casts it into a domain and
samples every mutation knob. Knobs that a modality cannot express are still recorded but
ignored by its generator: missing values and categorical cardinality shape only tabular data,
distractors are extra features (tabular), neutral cue words (text) or speckles (image), and
series tasks have no distractors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from sandmle_jax import dataclass_keys
from sandmle_jax.errors import UserError
from sandmle_jax.synth import domains as domains_lib
from sandmle_jax.synth.seeds import MODALITIES, TASK_TYPES, Seed
from sandmle_jax.tasks import metrics as metrics_lib

TRAIN_ROWS = (50, 200)  # the micro scale (SANDMLE.md)
# Inclusive ranges of each mutation knob: (low, high).
RANGES: dict[str, tuple[float, float]] = {
    "noise": (0.1, 0.45),  # label/target noise relative to the signal
    "imbalance": (0.0, 0.6),  # 0 balanced; higher skews class priors / item popularity
    "missing_rate": (0.0, 0.12),  # fraction of public feature cells left empty
    "n_distractors": (0, 5),  # input features (or cue words) unrelated to the target
    "cat_cardinality": (3, 8),  # categories per categorical column
    "nonlinearity": (0.0, 1.0),  # weight of non-linear terms in the hidden rule
    "interactions": (0, 3),  # pairwise products in the hidden rule
    "outlier_rate": (0.0, 0.04),  # fraction of corrupted feature cells / train targets
    "n_train": TRAIN_ROWS,
}
_INT_KNOBS = ("n_distractors", "cat_cardinality", "interactions", "n_train")
ALL_INPUTS = 64  # rule_inputs that reads every informative input of any generator
# Valid values: RANGES, except that a real seed's descendants may be as noisy as the seed
# (a seed that models barely learn needs label noise far beyond the shipped seeds' draws).
_LIMITS = {**RANGES, "noise": (0.1, 2.5)}
# The heads' learnability at each noise level (`seed_signal.measure` on 1,000-row linear tasks
# of the shipped tabular seeds: benchmarks/synth_noise_calibration.py; classes: the mean of
# binary and multiclass), to invert a seed's.
_NOISE_LEVELS = (0.1, 0.2, 0.3, 0.45, 0.7, 1.0, 1.5, 2.5)
_SIGNAL_AT_NOISE = {"classes": (0.871, 0.788, 0.698, 0.603, 0.436, 0.294, 0.202, 0.084),
                    "values": (0.99, 0.96, 0.914, 0.825, 0.66, 0.485, 0.291, 0.122)}


class DNAError(UserError, ValueError):
    """A DNA dict is inconsistent; the message names the field and its allowed range."""


@dataclasses.dataclass(frozen=True)
class TaskDNA:
    seed_id: str
    modality: str
    task_type: str
    metric: str
    lower_is_better: bool
    input_shape: Mapping[str, int]
    n_classes: int
    n_targets: int
    domain: str = "healthcare"
    noise: float = 0.25
    imbalance: float = 0.0
    missing_rate: float = 0.0
    n_distractors: int = 2
    cat_cardinality: int = 4
    nonlinearity: float = 0.3
    interactions: int = 1
    outlier_rate: float = 0.0
    n_train: int = 120
    n_test: int = 80
    seed: int = 0  # the generator's RNG seed: same DNA, same task, byte for byte
    rule_inputs: int = 0  # inputs each rule output reads; 0: 2-4 (a real seed's: all it has)
    # A real seed's DNA (`seed_dna.SeedDNA`), kept in every descendant's task.json.
    seed_dna: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # The LLM Strategist's free-form plan for a real seed: story, feature semantics, mutations.
    brief: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.modality not in MODALITIES:
            raise DNAError(f"dna.modality {self.modality!r} not in {MODALITIES}")
        if self.task_type not in TASK_TYPES:
            raise DNAError(f"dna.task_type {self.task_type!r} not in {TASK_TYPES}")
        try:
            metrics_lib.check_direction(self.metric, self.lower_is_better)
        except (KeyError, ValueError) as e:
            raise DNAError(f"dna: {e.args[0]}") from None
        if self.domain not in domains_lib.DOMAINS:
            raise DNAError(f"dna.domain {self.domain!r} unknown; use one of "
                           f"{domains_lib.domain_names()}")
        for knob, (low, high) in _LIMITS.items():
            value = getattr(self, knob)
            if not low <= value <= high:
                raise DNAError(f"dna.{knob}={value} outside [{low}, {high}]")
        if not 0 <= self.rule_inputs <= ALL_INPUTS:
            raise DNAError(f"dna.rule_inputs={self.rule_inputs} outside [0, {ALL_INPUTS}]")
        if self.n_test < 20:
            raise DNAError(f"dna.n_test={self.n_test}: need >= 20 test rows for stable scores")
        object.__setattr__(self, "input_shape", dict(self.input_shape))
        object.__setattr__(self, "seed_dna", dict(self.seed_dna))
        object.__setattr__(self, "brief", dict(self.brief))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TaskDNA:
        dataclass_keys.check_keys(cls, raw, "dna", error=DNAError, require=True)
        try:
            return cls(**raw)
        except TypeError as e:
            raise DNAError(f"dna: {e}") from None


def extract_dna(seed: Seed) -> TaskDNA:
    """The seed's schema with neutral mutations (the Strategist's first step)."""
    return TaskDNA(seed_id=seed.id, modality=seed.modality, task_type=seed.task_type,
                   metric=seed.metric, lower_is_better=seed.lower_is_better,
                   input_shape=seed.input_shape, n_classes=seed.n_classes,
                   n_targets=seed.n_targets, seed_dna=seed.dna)


def test_size(n_train: int) -> int:
    """Test rows for a training size: enough for scores that separate the baseline rungs
    (accuracy on 40 rows moves in steps of 2.5%, and ties between rungs fail the ladder)."""
    return int(np.clip(round(0.8 * n_train), 60, 150))


def mutate(dna: TaskDNA, rng: np.random.Generator, seed: int) -> TaskDNA:
    """A new task's DNA: a domain and every knob drawn from RANGES (uniform); a real seed's
    DNA sets imbalance, gaps, outliers, noise, non-linearity and size instead
    (`_seeded_knobs`)."""
    knobs = {}
    for knob, (low, high) in RANGES.items():
        knobs[knob] = (int(rng.integers(low, high + 1)) if knob in _INT_KNOBS
                       else round(float(rng.uniform(low, high)), 3))
    domain = domains_lib.domain_names()[int(rng.integers(len(domains_lib.DOMAINS)))]
    if dna.seed_dna:
        knobs |= _seeded_knobs(dna, rng)
    return dataclasses.replace(dna, domain=domain, n_test=test_size(knobs["n_train"]), seed=seed,
                               **knobs)


def _clip(knob: str, value: float) -> float:
    low, high = _LIMITS[knob]
    return round(float(np.clip(value, low, high)), 3)


def noise_for_signal(signal: float, task_type: str) -> float:
    """The label noise at which the heads are as learnable as a seed whose `signal` this is."""
    curve = _SIGNAL_AT_NOISE["values" if task_type in ("regression", "forecasting")
                             else "classes"]
    noise = np.interp(signal, curve[::-1], _NOISE_LEVELS[::-1])  # signal falls as noise rises
    return round(float(noise), 3)


def _seeded_knobs(dna: TaskDNA, rng: np.random.Generator) -> dict[str, float]:
    """Imbalance, missing and outlier rates, noise, non-linearity, rule density, distractors and
    size from the real seed's DNA (jittered, so descendants differ).

    The heads' priors invert: a binary head's positive share is 0.5 - 0.4 * imbalance; a
    multiclass head's rarest/commonest prior ratio is exp(-2 * imbalance)."""
    shares = list(dna.seed_dna.get("class_shares") or ())
    knobs = {}
    if len(shares) >= 2 and dna.task_type in ("binary", "multiclass", "ordinal"):
        if dna.task_type == "binary":
            imbalance = (0.5 - shares[-1]) / 0.4
        else:
            imbalance = -np.log(max(shares[-1], 1e-3) / shares[0]) / 2.0
        knobs["imbalance"] = _clip("imbalance", imbalance + rng.uniform(-0.05, 0.05))
    missing = float(dna.seed_dna.get("missing_rate") or 0.0)
    if missing > 0:
        knobs["missing_rate"] = _clip("missing_rate", missing * rng.uniform(0.7, 1.3))
    if "outlier_rate" in dna.seed_dna:  # a clean table's descendants stay clean
        knobs["outlier_rate"] = _clip("outlier_rate",
                                      float(dna.seed_dna["outlier_rate"]) * rng.uniform(0.7, 1.3))
    # As many rows as the micro scale allows, up to the seed's own: a learner's rank moves
    # with the row count (15 neighbours smooth 50 rows far more than 500).
    rows = int(dna.seed_dna.get("train_rows") or TRAIN_ROWS[1])
    high = int(np.clip(rows, TRAIN_ROWS[0], TRAIN_ROWS[1]))
    knobs["n_train"] = int(rng.integers(max(TRAIN_ROWS[0], high - 50), high + 1))
    signal, linearity = dna.seed_dna.get("signal"), dna.seed_dna.get("linearity")
    relevant = dna.seed_dna.get("relevant_share")
    if relevant is not None:  # real tables are dense: the rule reads every informative input
        width = int(dna.input_shape.get("n_numeric", 0))
        distractors = round(width * (1.0 - relevant))
        knobs["n_distractors"] = int(np.clip(distractors, *RANGES["n_distractors"]))
        knobs["rule_inputs"] = ALL_INPUTS
    if signal is not None and linearity is not None:
        # A seed that is easy to learn gets little label noise; one that a linear model fits
        # about as well as a forest gets a (nearly) linear rule without interactions.
        knobs["noise"] = _clip("noise", noise_for_signal(signal, dna.task_type)
                               * rng.uniform(0.9, 1.1))
        knobs["nonlinearity"] = _clip("nonlinearity",
                                      3.0 * (1.0 - linearity) + rng.uniform(-0.05, 0.05))
        knobs["interactions"] = int(0 if linearity >= 0.9 else min(3, round(10 * (1 - linearity))))
    return knobs


def at_scale(dna: TaskDNA, n_train: int) -> TaskDNA:
    """The full-scale twin: the same DNA at `n_train` rows (bypasses the micro bounds)."""
    twin = dataclasses.replace(dna, n_train=TRAIN_ROWS[1])
    object.__setattr__(twin, "n_train", int(n_train))
    object.__setattr__(twin, "n_test", int(max(twin.n_test, n_train // 4)))
    return twin
