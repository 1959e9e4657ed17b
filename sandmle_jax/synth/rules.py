"""The hidden rule: `signal = f(latent inputs)`, a sparse linear map plus non-linear terms and
pairwise interactions, with parameters rounded so that a leak of them is recognisable.

Every modality reduces its rows to latent inputs (standardised feature values, cue-word counts,
shape counts and sizes, series trend and seasonality); the task head then turns signals into
targets with noise. Only the generator and the gates ever see a rule.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

NONLINEAR = {
    "sin": lambda z: np.sin(1.7 * z),
    "square": lambda z: z ** 2 - 1.0,
    "abs": lambda z: np.abs(z) - 0.8,
    "step": lambda z: (z > 0.3).astype(float) - 0.4,
}


@dataclasses.dataclass(frozen=True)
class HiddenRule:
    weights: tuple[tuple[float, ...], ...]  # (inputs, outputs)
    nonlinear: tuple[tuple[int, str, float, int], ...]  # (input, function, coefficient, output)
    interactions: tuple[tuple[int, int, float, int], ...]  # (input a, input b, coefficient, output)

    @property
    def n_outputs(self) -> int:
        return len(self.weights[0])

    def apply(self, z: np.ndarray) -> np.ndarray:
        """Signals (n, outputs), each column standardised over these rows."""
        out = z @ np.asarray(self.weights)  # (n, inputs) @ (inputs, outputs)
        for i, fn, coef, o in self.nonlinear:
            out[:, o] += coef * NONLINEAR[fn](z[:, i])
        for a, b, coef, o in self.interactions:
            out[:, o] += coef * z[:, a] * z[:, b]
        std = out.std(axis=0)
        return (out - out.mean(axis=0)) / np.where(std > 0, std, 1.0)

    def parameters(self) -> list[float]:
        """Every non-zero number of the rule: what a description must never print."""
        values = [w for row in self.weights for w in row]
        values += [t[2] for t in self.nonlinear] + [t[2] for t in self.interactions]
        return [v for v in values if v != 0.0]

    def to_dict(self) -> dict[str, Any]:
        return {"weights": [list(r) for r in self.weights],
                "nonlinear": [list(t) for t in self.nonlinear],
                "interactions": [list(t) for t in self.interactions]}


def sample_rule(rng: np.random.Generator, n_inputs: int, n_outputs: int, *, nonlinearity: float,
                interactions: int, informative: int | None = None,
                inputs_per_output: int = 0) -> HiddenRule:
    """Each output uses `inputs_per_output` (0: 2-4) of the first `informative` inputs (default
    all) with weights of magnitude 0.5-1.5; non-linear terms weigh `nonlinearity`;
    `interactions` products."""
    informative = n_inputs if informative is None else min(informative, n_inputs)
    weights = np.zeros((n_inputs, n_outputs))
    nonlinear, pairs = [], []
    for o in range(n_outputs):
        reads = inputs_per_output or int(rng.integers(2, 5))
        used = rng.choice(informative, size=min(informative, reads), replace=False)
        signs = rng.choice([-1.0, 1.0], size=used.size)
        weights[used, o] = np.round(signs * rng.uniform(0.5, 1.5, size=used.size), 3)
        if nonlinearity > 0:
            fn = sorted(NONLINEAR)[int(rng.integers(len(NONLINEAR)))]
            coef = round(float(nonlinearity * rng.uniform(0.8, 1.6)), 3)
            nonlinear.append((int(rng.choice(used)), fn, coef, o))
        for _ in range(interactions if informative >= 2 else 0):
            a, b = rng.choice(informative, size=2, replace=False)
            coef = round(float(rng.choice([-1.0, 1.0]) * rng.uniform(0.4, 0.9)), 3)
            pairs.append((int(a), int(b), coef, o))
    return HiddenRule(weights=tuple(tuple(float(w) for w in row) for row in weights),
                      nonlinear=tuple(nonlinear), interactions=tuple(pairs))
