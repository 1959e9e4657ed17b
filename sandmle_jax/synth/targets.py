"""Task heads: noise-free signals -> noisy targets, hidden answers and a gold reference.

One head per task type (a registry, so a new type is a decorator). A head returns the training
target columns, the answers and the gold reference in the submission's format, the constant
sample submission, and the `BaselineSpec` fields that say how predictions are written. The gold
reference is the Bayes prediction under the generating process (class probabilities, expected
value, noise-free grade or ranking): no learner trained on the micro data can expect to beat it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd

from sandmle_jax.synth.dna import DNAError, TaskDNA
from sandmle_jax.synth.domains import Domain
from sandmle_jax.tasks import metrics as metrics_lib

Kind = metrics_lib.Kind
_OUTPUT_OF_KIND = {Kind.PROBABILITY: "probability", Kind.LABEL: "label",
                   Kind.CLASS_PROBABILITIES: "class_probabilities",
                   Kind.MULTILABEL_PROBABILITIES: "multilabel", Kind.VALUE: "value",
                   Kind.ORDINAL: "ordinal", Kind.RANKED_LIST: "ranked_list"}


@dataclasses.dataclass(frozen=True)
class Targets:
    train_columns: pd.DataFrame  # target columns as train.csv holds them (all rows)
    answers: pd.DataFrame  # submission target columns (all rows; the test part is hidden)
    gold: pd.DataFrame  # gold reference predictions, submission columns (all rows)
    sample: dict[str, object]  # the constant sample submission's value per column
    output: str  # BaselineSpec.output
    classes: tuple[str, ...] = ()
    k: int = 0
    non_negative: bool = False


@dataclasses.dataclass(frozen=True)
class Forecast:
    """A series generator's own targets: the noise-free continuation and its noise scale."""

    values: np.ndarray  # (n, horizon)
    noise_sd: np.ndarray  # (n,)


Head = Callable[..., Targets]
HEADS: dict[str, Head] = {}
_WIDTH: dict[str, Callable[[TaskDNA], int]] = {}


def register_head(task_type: str, width: Callable[[TaskDNA], int]):
    """Registers a head and how many signal columns it consumes."""
    def decorator(fn: Head) -> Head:
        HEADS[task_type] = fn
        _WIDTH[task_type] = width
        return fn
    return decorator


def signal_width(dna: TaskDNA) -> int:
    return _WIDTH[dna.task_type](dna)


def output_kind(dna: TaskDNA) -> str:
    return _OUTPUT_OF_KIND[metrics_lib.get_metric(dna.metric).kind]


def make_targets(dna: TaskDNA, domain: Domain, signals: np.ndarray, rng: np.random.Generator,
                 forecast: Forecast | None = None) -> Targets:
    if dna.task_type not in HEADS:
        raise DNAError(f"no head for task_type {dna.task_type!r}; heads: {sorted(HEADS)}")
    return HEADS[dna.task_type](dna, domain, signals, rng, forecast=forecast)


def _require_output(dna: TaskDNA, allowed: tuple[str, ...]) -> str:
    output = output_kind(dna)
    if output not in allowed:
        raise DNAError(f"metric {dna.metric!r} writes {output!r} predictions, which a "
                       f"{dna.task_type} task cannot use; pick a metric whose predictions are "
                       f"one of {allowed}")
    return output


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _sharpness(dna: TaskDNA) -> float:
    return 1.5 / dna.noise


def _binary_probability(dna: TaskDNA, s: np.ndarray, prevalence: float) -> np.ndarray:
    threshold = np.quantile(s, 1.0 - prevalence)
    return _sigmoid((s - threshold) * _sharpness(dna))


@register_head("binary", width=lambda dna: 1)
def binary(dna, domain, signals, rng, forecast=None) -> Targets:
    output = _require_output(dna, ("probability", "label"))
    column, negative, positive = domain.binary
    p = _binary_probability(dna, signals[:, 0], prevalence=0.5 - 0.4 * dna.imbalance)
    y = (rng.random(len(p)) < p).astype(int)
    if output == "probability":
        frame = pd.DataFrame({column: y})
        return Targets(frame, frame, pd.DataFrame({column: np.round(p, 6)}), {column: 0.5},
                       output)
    labels = np.where(y == 1, positive, negative)
    frame = pd.DataFrame({column: labels})
    gold = pd.DataFrame({column: np.where(p > 0.5, positive, negative)})
    return Targets(frame, frame, gold, {column: negative}, output)


@register_head("multiclass", width=lambda dna: dna.n_classes)
def multiclass(dna, domain, signals, rng, forecast=None) -> Targets:
    output = _require_output(dna, ("class_probabilities", "label"))
    column, names = domain.classes
    # A real seed may have more classes than the domain names (digits: 10).
    classes = [*names, *(f"{column}_{j}" for j in range(len(names), dna.n_classes))]
    classes = classes[: dna.n_classes]
    prior = np.exp(-2.0 * dna.imbalance * np.arange(len(classes)) / max(len(classes) - 1, 1))
    logits = signals * _sharpness(dna) + np.log(prior / prior.sum())
    prob = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    y = (prob.cumsum(axis=1) < rng.random((len(prob), 1))).sum(axis=1).clip(0, len(classes) - 1)
    labels = np.array(classes)[y]
    train = pd.DataFrame({column: labels})
    if output == "label":
        gold = pd.DataFrame({column: np.array(classes)[prob.argmax(axis=1)]})
        return Targets(train, train, gold, {column: classes[0]}, output)
    answers = pd.DataFrame({c: (y == j).astype(int) for j, c in enumerate(classes)})
    gold = pd.DataFrame({c: np.round(prob[:, j], 6) for j, c in enumerate(classes)})
    return Targets(train, answers, gold, {c: round(1 / len(classes), 6) for c in classes},
                   output, classes=tuple(classes))


@register_head("multilabel", width=lambda dna: dna.n_targets)
def multilabel(dna, domain, signals, rng, forecast=None) -> Targets:
    _require_output(dna, ("multilabel",))
    names = domain.labels[: dna.n_targets]
    frame, gold = {}, {}
    for j, name in enumerate(names):
        prevalence = float(rng.uniform(0.3, 0.5)) * (1.0 - 0.5 * dna.imbalance)
        p = _binary_probability(dna, signals[:, j], prevalence)
        frame[name] = (rng.random(len(p)) < p).astype(int)
        gold[name] = np.round(p, 6)
    frame = pd.DataFrame(frame)
    return Targets(frame, frame, pd.DataFrame(gold), {n: 0.5 for n in names}, "multilabel")


def _values(dna: TaskDNA, names: list[str], mean: np.ndarray, noise_sd: np.ndarray,
            rng: np.random.Generator) -> Targets:
    """Targets = mean + noise; train targets (never answers) get the outliers."""
    non_negative = dna.metric in ("rmsle", "mean_columnwise_rmsle")
    y = mean + noise_sd * rng.standard_normal(mean.shape)
    outliers = rng.random(mean.shape) < dna.outlier_rate
    outliers[dna.n_train:] = False
    y = np.where(outliers, y + 4.0 * noise_sd * np.sign(rng.standard_normal(mean.shape)), y)
    if non_negative:
        y, mean = np.clip(y, 0.0, None), np.clip(mean, 0.0, None)
    frame = pd.DataFrame({n: np.round(y[:, j], 3) for j, n in enumerate(names)})
    gold = pd.DataFrame({n: np.round(mean[:, j], 3) for j, n in enumerate(names)})
    return Targets(frame, frame, gold, {n: 0.0 for n in names}, "value",
                   non_negative=non_negative)


@register_head("regression", width=lambda dna: dna.n_targets)
def regression(dna, domain, signals, rng, forecast=None) -> Targets:
    _require_output(dna, ("value",))
    names = [name for name, _ in domain.regression[: dna.n_targets]]
    if len(names) < dna.n_targets:
        raise DNAError(f"domain {domain.name!r} has {len(names)} regression targets; "
                       f"dna.n_targets={dna.n_targets}")
    loc = np.round(rng.uniform(20, 200, size=len(names)), 1)
    scale = loc * rng.uniform(0.15, 0.3, size=len(names))
    mean = loc + scale * signals
    return _values(dna, names, mean, np.broadcast_to(scale * dna.noise, mean.shape), rng)


@register_head("forecasting", width=lambda dna: 0)
def forecasting(dna, domain, signals, rng, forecast=None) -> Targets:
    _require_output(dna, ("value",))
    if forecast is None:
        raise DNAError("forecasting needs a series modality (the generator supplies the horizon)")
    names = [f"next_{h + 1}" for h in range(forecast.values.shape[1])]
    noise = forecast.noise_sd[:, None] * (dna.noise / 0.25) * np.ones_like(forecast.values)
    return _values(dna, names, forecast.values, noise, rng)


@register_head("ordinal", width=lambda dna: 1)
def ordinal(dna, domain, signals, rng, forecast=None) -> Targets:
    output = _require_output(dna, ("ordinal", "label"))
    s = signals[:, 0]
    grades = dna.n_classes
    positions = (np.arange(1, grades) / grades) ** (1.0 + dna.imbalance)
    cuts = np.quantile(s, positions)
    noisy = s + dna.noise * 1.2 * rng.standard_normal(len(s))
    frame = pd.DataFrame({domain.grade: np.searchsorted(cuts, noisy)})
    gold = pd.DataFrame({domain.grade: np.searchsorted(cuts, s)})
    return Targets(frame, frame, gold, {domain.grade: 0}, output)


@register_head("ranking", width=lambda dna: int(dna.input_shape.get("n_items", 8)))
def ranking(dna, domain, signals, rng, forecast=None) -> Targets:
    _require_output(dna, ("ranked_list",))
    noun, names = domain.items
    items = np.array(names[: signals.shape[1]])
    k = metrics_lib.get_metric(dna.metric).k
    popularity = dna.imbalance * 1.5 * rng.permutation(np.linspace(1.0, 0.0, len(items)))
    affinity = signals + popularity
    noisy = affinity + dna.noise * 2.0 * rng.standard_normal(affinity.shape)
    relevant = np.argsort(-noisy, axis=1, kind="stable")[:, :2]
    best = np.argsort(-affinity, axis=1, kind="stable")[:, :k]
    column = f"{noun}s"
    frame = pd.DataFrame({column: [" ".join(items[r]) for r in relevant]})
    gold = pd.DataFrame({column: [" ".join(items[r]) for r in best]})
    return Targets(frame, frame, gold, {column: " ".join(items[:k])}, "ranked_list", k=k)
