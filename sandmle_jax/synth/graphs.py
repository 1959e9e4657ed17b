"""Graph modality: node prediction over one graph that spans the train and test rows.

Each row is a node with numeric features; edges.csv lists the undirected edges among all nodes
(transductive, as in citation-graph benchmarks). Nodes belong to hidden communities; edges fall
mostly within a community and a node's features drift towards its community's centre. The rule
reads a node's own leading features, the mean of its neighbours' and its community's effect, so a
model that aggregates over edges beats one that reads a row alone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sandmle_jax.synth.domains import Domain
from sandmle_jax.synth.dna import TaskDNA
from sandmle_jax.synth.inputs import Inputs, standardise


def _edges(community: np.ndarray, degree: float, within: float,
           rng: np.random.Generator) -> np.ndarray:
    """(m, 2) unique undirected pairs (i < j); each node draws ~Poisson(degree / 2) partners,
    from its own community with probability `within`."""
    n = len(community)
    members = {c: np.flatnonzero(community == c) for c in np.unique(community)}
    pairs = set()
    for i in range(n):
        for _ in range(max(1, rng.poisson(degree / 2))):
            pool = members[community[i]] if rng.random() < within else np.arange(n)
            j = int(rng.choice(pool))
            if j != i:
                pairs.add((min(i, j), max(i, j)))
    return np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)


def neighbour_mean(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Each node's mean over its neighbours (0 for an isolated node)."""
    total = np.zeros_like(values)
    count = np.zeros(len(values))
    for a, b in ((0, 1), (1, 0)):
        np.add.at(total, edges[:, a], values[edges[:, b]])
        np.add.at(count, edges[:, a], 1.0)
    return total / np.maximum(count, 1.0)[:, None]


def node_graph(dna: TaskDNA, domain: Domain, n: int, rng: np.random.Generator) -> Inputs:
    n_informative = int(dna.input_shape.get("n_features", 4))
    n_numeric = min(n_informative + dna.n_distractors, len(domain.numeric))
    n_communities = int(dna.input_shape.get("communities", 4))
    degree = float(dna.input_shape.get("degree", 6))
    community = rng.integers(0, n_communities, size=n)
    centres = rng.standard_normal((n_communities, n_numeric))
    z = 0.8 * centres[community] + 0.6 * rng.standard_normal((n, n_numeric))
    z[:, n_informative:] = rng.standard_normal((n, n_numeric - n_informative))  # distractors
    edges = _edges(community, degree, within=0.8, rng=rng)
    features = [domain.numeric[i] for i in rng.choice(len(domain.numeric), n_numeric,
                                                      replace=False)]
    columns = {}
    for j, feature in enumerate(features):
        values = feature.mean + feature.std * z[:, j]
        outliers = rng.random(n) < dna.outlier_rate
        values = np.where(outliers, feature.mean + feature.std * rng.choice([-8.0, 8.0], n),
                          values)
        columns[feature.name] = np.round(values, feature.decimals)
    effect = rng.standard_normal(n_communities)[community]
    own = z[:, :min(2, n_informative)]
    latent = standardise(np.column_stack([own, neighbour_mean(own, edges), effect,
                                          z[:, own.shape[1]:]]))
    return Inputs(pd.DataFrame(columns), "graph", latent, informative=2 * own.shape[1] + 1,
                  edges=edges)
