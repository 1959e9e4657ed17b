"""What a modality generator returns: observable inputs plus the latent values the rule reads.

`Inputs.features` are the public feature columns (no id); `files` are per-row file contents
(images, waveforms) written under `file_folder/<id><file_suffix>` and named in `file_column`;
`edges` are row-index pairs of a graph over all rows, published as edges.csv. The latent matrix
holds what the hidden rule may read: its first `informative` columns, the rest being visible
distractions.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from sandmle_jax.synth.targets import Forecast

EDGES_FILE = "edges.csv"


@dataclasses.dataclass(frozen=True)
class Inputs:
    features: pd.DataFrame  # public input columns, one row per example, no id
    feature_kind: str  # BaselineSpec.feature_kind: the modality
    latent: np.ndarray  # (n, p) what the rule reads
    informative: int  # the rule uses latent[:, :informative]
    files: tuple[bytes, ...] = ()  # per-row file contents, named after the row's id
    file_column: str = ""  # the feature column that holds each row's file path
    file_folder: str = "images"
    file_suffix: str = ".png"
    forecast: Forecast | None = None
    edges: np.ndarray | None = None  # (m, 2) row indices of undirected edges

    def informative_first(self, other: Inputs) -> np.ndarray:
        """Both latents side by side, the informative columns of each before the others'
        distractions (how a composed modality keeps the rule on signal)."""
        return np.column_stack([self.latent[:, :self.informative],
                                other.latent[:, :other.informative],
                                self.latent[:, self.informative:],
                                other.latent[:, other.informative:]])


def standardise(x: np.ndarray) -> np.ndarray:
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
