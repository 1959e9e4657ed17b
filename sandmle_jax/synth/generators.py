"""Modality generators: rows of observable inputs plus the latent values the hidden rule reads.

One registered generator per modality (tabular rules with noise; text from a grammar whose
cue-word counts carry the label; small images of shapes on textured backgrounds whose count,
size and brightness carry it; series with level, trend, seasonality and noise). A generator
returns `Inputs`: public feature columns (no id), per-row files (PNG images) and the latent
matrix; `informative` says how many leading latent columns the rule may use, the rest being
visible distractions.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable

import numpy as np
import pandas as pd
from PIL import Image

from sandmle_jax.synth.domains import Domain
from sandmle_jax.synth.dna import TaskDNA
from sandmle_jax.synth.targets import Forecast


@dataclasses.dataclass(frozen=True)
class Inputs:
    features: pd.DataFrame  # public input columns, one row per example, no id
    feature_kind: str  # BaselineSpec.feature_kind
    latent: np.ndarray  # (n, p) what the rule reads
    informative: int  # the rule uses latent[:, :informative]
    files: tuple[bytes, ...] = ()  # per-row file contents (images), named after the row's id
    file_column: str = ""  # the feature column that holds each row's file path
    forecast: Forecast | None = None


Generator = Callable[[TaskDNA, Domain, int, np.random.Generator], Inputs]
GENERATORS: dict[str, Generator] = {}


def register_generator(modality: str):
    def decorator(fn: Generator) -> Generator:
        GENERATORS[modality] = fn
        return fn
    return decorator


def _standardise(x: np.ndarray) -> np.ndarray:
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)


@register_generator("tabular")
def tabular(dna: TaskDNA, domain: Domain, n: int, rng: np.random.Generator) -> Inputs:
    if "n_numeric" in dna.input_shape:  # a real seed's column count; distractors are among them
        n_numeric = min(int(dna.input_shape["n_numeric"]), len(domain.numeric))
        n_informative = n_numeric - min(dna.n_distractors, n_numeric // 2)
    else:
        n_informative = int(dna.input_shape.get("n_features", 6))
        n_numeric = min(n_informative + dna.n_distractors, len(domain.numeric))
    n_categorical = min(int(dna.input_shape.get("n_categorical", 1)), len(domain.categorical))
    numeric = [domain.numeric[i] for i in rng.choice(len(domain.numeric), n_numeric, replace=False)]
    z = rng.standard_normal((n, n_numeric))
    columns = {}
    for j, feature in enumerate(numeric):
        values = feature.mean + feature.std * z[:, j]
        outliers = rng.random(n) < dna.outlier_rate
        values = np.where(outliers, feature.mean + feature.std * rng.choice([-8.0, 8.0], n), values)
        columns[feature.name] = np.round(values, feature.decimals)
    effects = []
    for name, values in [domain.categorical[i] for i in range(n_categorical)]:
        cardinality = min(dna.cat_cardinality, len(values))
        weights = np.exp(-dna.imbalance * np.arange(cardinality))
        codes = rng.choice(cardinality, size=n, p=weights / weights.sum())
        effect = rng.standard_normal(cardinality)
        effects.append(effect[codes])
        columns[name] = np.array(values[:cardinality], dtype=object)[codes]
    frame = pd.DataFrame(columns)
    for name in frame.columns:  # missing cells are missing to the agent, not to the rule
        gaps = rng.random(n) < dna.missing_rate
        frame[name] = frame[name].where(~gaps, None if frame[name].dtype == object else np.nan)
    frame = frame[[frame.columns[i] for i in rng.permutation(len(frame.columns))]]
    # Informative first: the first numeric features, then the categorical effects.
    latent = np.column_stack([z[:, :n_informative], *effects, z[:, n_informative:]])
    return Inputs(frame, "tabular", latent, informative=n_informative + len(effects))


@register_generator("text")
def text(dna: TaskDNA, domain: Domain, n: int, rng: np.random.Generator) -> Inputs:
    n_cues = min(int(dna.input_shape.get("n_cues", 5)) + dna.n_distractors, len(domain.cue_words))
    cues = [domain.cue_words[i] for i in rng.choice(len(domain.cue_words), n_cues, replace=False)]
    words = int(dna.input_shape.get("words", 30))
    rates = np.exp(rng.normal(-0.3, 0.8, size=(n, n_cues)))
    counts = rng.poisson(rates)
    docs = []
    for row in range(n):
        length = words * (3 if rng.random() < dna.outlier_rate else 1)
        tokens = [cue for cue, c in zip(cues, counts[row]) for _ in range(c)]
        filler = rng.choice(domain.filler, size=max(length - len(tokens), 4))
        tokens = list(rng.permutation(np.array(tokens + list(filler), dtype=object)))
        sentences, start = [], 0
        while start < len(tokens):
            stop = start + int(rng.integers(5, 10))
            sentence = " ".join(tokens[start:stop])
            sentences.append(sentence[0].upper() + sentence[1:] + ".")
            start = stop
        docs.append(" ".join(sentences))
    latent = _standardise(counts.astype(float))
    informative = int(dna.input_shape.get("n_cues", 5))
    frame = pd.DataFrame({"text": docs})
    side = min(int(dna.input_shape.get("n_numeric", 0)), len(domain.numeric))
    if side:  # a real seed's numeric side columns (shipped text seeds have none)
        z = rng.standard_normal((n, side))
        for j, feature in enumerate(domain.numeric[:side]):
            frame[feature.name] = np.round(feature.mean + feature.std * z[:, j], feature.decimals)
        latent = np.column_stack([latent[:, :informative], z, latent[:, informative:]])
        informative += side
    return Inputs(frame, "text", latent, informative=informative)


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels * 255, 0, 255).astype(np.uint8), mode="L").save(
        buffer, format="PNG", optimize=False)
    return buffer.getvalue()


@register_generator("image")
def image(dna: TaskDNA, domain: Domain, n: int, rng: np.random.Generator) -> Inputs:
    side = int(dna.input_shape.get("side", 16))
    yy, xx = np.mgrid[0:side, 0:side]
    count = rng.integers(0, 6, size=n).astype(float)
    radius = rng.uniform(1.0, 2.6, size=n)
    brightness = rng.uniform(0.55, 1.0, size=n)
    texture = rng.uniform(0.0, 0.2, size=n)  # distraction: background stripes
    background = rng.uniform(0.05, 0.25, size=n)  # distraction: background level
    files = []
    for row in range(n):
        angle, freq = rng.uniform(0, np.pi), rng.uniform(0.3, 1.2)
        canvas = background[row] + texture[row] * 0.5 * (1 + np.sin(
            freq * (np.cos(angle) * xx + np.sin(angle) * yy)))
        for _ in range(int(count[row])):
            cy, cx = rng.uniform(1, side - 1, size=2)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius[row] ** 2
            canvas = np.where(disc, np.maximum(canvas, brightness[row]), canvas)
        speckles = rng.random((side, side)) < 0.01 * dna.n_distractors
        canvas = np.where(speckles, rng.uniform(0.5, 1.0), canvas)
        canvas = canvas + 0.04 * rng.standard_normal((side, side))
        if rng.random() < dna.outlier_rate:
            canvas = 1.0 - canvas  # an inverted scan
        files.append(_png(canvas))
    latent = _standardise(np.column_stack([count, radius, brightness, texture, background]))
    return Inputs(pd.DataFrame({"image": [""] * n}), "image", latent, informative=3,
                  files=tuple(files), file_column="image")


@register_generator("timeseries")
def timeseries(dna: TaskDNA, domain: Domain, n: int, rng: np.random.Generator) -> Inputs:
    length = int(dna.input_shape.get("length", 32))
    horizon = int(dna.input_shape.get("horizon", 0)) if dna.task_type == "forecasting" else 0
    level = rng.standard_normal(n)
    trend = rng.standard_normal(n)
    amplitude = rng.uniform(0.0, 1.0, size=n)
    period = rng.choice([6.0, 8.0, 12.0], size=n)
    phase = rng.uniform(0, 2 * np.pi, size=n)
    noise_sd = rng.uniform(0.5, 2.0, size=n)
    t = np.arange(length + horizon)
    clean = (100.0 + 10.0 * level[:, None] + 0.4 * trend[:, None] * t
             + 8.0 * amplitude[:, None] * np.sin(2 * np.pi * t / period[:, None] + phase[:, None]))
    observed = clean[:, :length] + noise_sd[:, None] * rng.standard_normal((n, length))
    spikes = rng.random((n, length)) < dna.outlier_rate
    observed = np.where(spikes, observed + 25.0 * rng.choice([-1.0, 1.0], (n, length)), observed)
    columns = {f"t{j:02d}": np.round(observed[:, j], 2) for j in range(length)}
    latent = _standardise(np.column_stack([level, trend, amplitude, noise_sd, period]))
    forecast = Forecast(values=clean[:, length:], noise_sd=noise_sd) if horizon else None
    return Inputs(pd.DataFrame(columns), "timeseries", latent, informative=4, forecast=forecast)
