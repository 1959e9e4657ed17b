"""Modality generators: rows of observable inputs plus the latent values the hidden rule reads.

One generator per modality (`GENERATORS`): tabular rules with noise; text as sentences whose
content carries the label (how strongly each cue is mentioned, negated mentions counting for
nothing); series with level, trend, seasonality and noise; RGB images and audio clips
(media.py); node graphs (graphs.py); and multimodal rows, a table plus a text or an image. A
generator returns `Inputs` (inputs.py).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from sandmle_jax.synth import graphs, media
from sandmle_jax.synth.domains import Domain
from sandmle_jax.synth.dna import TaskDNA
from sandmle_jax.synth.inputs import Inputs, standardise
from sandmle_jax.synth.targets import Forecast

Generator = Callable[[TaskDNA, Domain, int, np.random.Generator], Inputs]


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


_INTENSITY = (("slight", 0.5), ("", 1.0), ("marked", 1.5), ("severe", 2.0))
_NEGATED = ("no {cue} at all", "without any {cue}", "{cue} was ruled out", "not a trace of {cue}")


def _sentence(words: list[str]) -> str:
    text = " ".join(w for w in words if w)
    return text[0].upper() + text[1:] + "."


def text(dna: TaskDNA, domain: Domain, n: int, rng: np.random.Generator) -> Inputs:
    """Notes of a few sentences; each mention of a cue has an intensity or is negated, and the
    rule reads the summed intensity per cue, so word counts alone only approximate it."""
    informative = int(dna.input_shape.get("n_cues", 5))
    n_cues = min(informative + dna.n_distractors, len(domain.cue_words))
    informative = min(informative, n_cues)
    cues = [domain.cue_words[i] for i in rng.choice(len(domain.cue_words), n_cues, replace=False)]
    words = int(dna.input_shape.get("words", 30))
    mentions = rng.poisson(np.exp(rng.normal(-0.4, 0.7, size=(n, n_cues))))
    strength = np.zeros((n, n_cues))
    docs = []
    for row in range(n):
        sentences = []
        for j, cue in enumerate(cues):
            for _ in range(mentions[row, j]):
                lead = list(rng.choice(domain.filler, size=2))
                if rng.random() < 0.3:
                    template = _NEGATED[rng.integers(len(_NEGATED))]
                    sentences.append(_sentence(lead + [template.format(cue=cue)]))
                    continue
                word, weight = _INTENSITY[rng.integers(len(_INTENSITY))]
                strength[row, j] += weight
                sentences.append(_sentence(lead + [word, cue]))
        length = words * (3 if rng.random() < dna.outlier_rate else 1)
        while sum(len(s.split()) for s in sentences) < length:
            sentences.append(_sentence(list(rng.choice(domain.filler,
                                                       size=int(rng.integers(4, 8))))))
        docs.append(" ".join(rng.permutation(np.array(sentences, dtype=object))))
    latent = standardise(strength)
    frame = pd.DataFrame({"text": docs})
    side = min(int(dna.input_shape.get("n_numeric", 0)), len(domain.numeric))
    if side:  # a real seed's numeric side columns (shipped text seeds have none)
        z = rng.standard_normal((n, side))
        for j, feature in enumerate(domain.numeric[:side]):
            frame[feature.name] = np.round(feature.mean + feature.std * z[:, j], feature.decimals)
        latent = np.column_stack([latent[:, :informative], z, latent[:, informative:]])
        informative += side
    return Inputs(frame, "text", latent, informative=informative)

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
    latent = standardise(np.column_stack([level, trend, amplitude, noise_sd, period]))
    forecast = Forecast(values=clean[:, length:], noise_sd=noise_sd) if horizon else None
    return Inputs(pd.DataFrame(columns), "timeseries", latent, informative=4, forecast=forecast)


def multimodal(dna: TaskDNA, domain: Domain, n: int, rng: np.random.Generator) -> Inputs:
    """A table plus one text note (`n_cues` in the input shape) or one image (`side`) per row;
    the rule reads both."""
    table = tabular(dna, domain, n, rng)
    second = (media.image if "side" in dna.input_shape else text)(dna, domain, n, rng)
    features = pd.concat([table.features, second.features], axis=1)
    return Inputs(features, "multimodal", table.informative_first(second),
                  informative=table.informative + second.informative, files=second.files,
                  file_column=second.file_column)


GENERATORS: dict[str, Generator] = {
    "tabular": tabular, "text": text, "image": media.image, "timeseries": timeseries,
    "multimodal": multimodal, "graph": graphs.node_graph, "audio": media.audio,
}
