"""The seed's learnability and linearity, on tables whose answers are known by construction."""

import numpy as np
import pandas as pd
import pytest

from sandmle_jax.synth import seed_signal


def _table(n=600, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                          "c": rng.normal(size=n), "shade": rng.choice(["x", "y", "z"], n)})
    return frame, rng


def test_a_linear_rule_is_learnable_and_linear():
    frame, rng = _table()
    label = pd.Series(np.where(2 * frame["a"] - frame["b"] > 0, "yes", "no"))
    signal, linearity = seed_signal.measure(frame, list(frame.columns), label, "binary")
    assert signal > 0.85 and linearity > 0.97
    value = pd.Series(3 * frame["a"] + frame["c"] + 0.1 * rng.normal(size=len(frame)))
    signal, linearity = seed_signal.measure(frame, list(frame.columns), value, "regression")
    assert signal > 0.95 and linearity > 0.97


def test_an_interaction_is_learnable_but_not_linear():
    frame, _ = _table()
    label = pd.Series((frame["a"] * frame["b"] > 0).astype(int))  # XOR of signs
    signal, linearity = seed_signal.measure(frame, list(frame.columns), label, "binary")
    assert signal > 0.5 and linearity < 0.2


def test_noise_has_no_signal_and_unmeasured_types_give_none():
    frame, rng = _table()
    noise = pd.Series(rng.choice(["p", "q"], size=len(frame)))
    signal, _ = seed_signal.measure(frame, list(frame.columns), noise, "binary")
    assert signal == pytest.approx(0.0, abs=0.1)
    assert seed_signal.measure(frame, list(frame.columns), noise, "ranking") is None
    assert seed_signal.measure(frame.head(20), list(frame.columns), noise.head(20),
                               "binary") is None


def test_relevant_share_counts_the_columns_that_matter_alone():
    frame, rng = _table()
    frame["d"], frame["e"] = rng.normal(size=len(frame)), rng.normal(size=len(frame))
    label = pd.Series(np.where(frame["a"] + frame["b"] + (frame["shade"] == "x") > 0.5, 1, 0))
    share = seed_signal.relevant_share(frame, list(frame.columns), label, "binary")
    assert share == pytest.approx(3 / 6, abs=1e-4)  # a, b, shade of a..e and shade
    value = pd.Series(frame[["a", "b", "c", "d", "e"]].sum(axis=1))
    assert seed_signal.relevant_share(frame, list(frame.columns), value,
                                      "regression") == pytest.approx(5 / 6, abs=1e-4)
