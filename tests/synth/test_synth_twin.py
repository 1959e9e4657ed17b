"""The full-scale twin: same DNA, more rows, same five sandboxed steps, timed."""

import numpy as np

from sandbox_runner import Limits, Pool, Sandbox
from sandmle_jax.synth import baselines, roles, seeds, synthesis, twin
from sandmle_jax.synth import dna as dna_lib


def test_twin_keeps_the_rule_and_times_every_step(tmp_path):
    dna = dna_lib.mutate(dna_lib.extract_dna(seeds.load_seeds()["tabular_regression_rmse"]),
                         np.random.default_rng(3), seed=3)
    big = dna_lib.at_scale(dna, 2000)
    micro_data, twin_data = synthesis.synthesize(dna), synthesis.synthesize(big)
    assert len(twin_data.train) == 2000 and len(twin_data.test) == 500
    assert twin_data.rule == micro_data.rule  # same hidden rule, only more rows
    # Same columns (their order is drawn after the rows, so it may differ).
    assert sorted(twin_data.train.columns) == sorted(micro_data.train.columns)
    with Pool(Sandbox(), workers=2) as pool:
        workshop = roles.Workshop(pool, Limits(wall_s=300, cpus=1), tmp_path)
        micro, full = twin.micro_and_twin(dna, 2000, workshop)
    assert (micro.rows, full.rows) == (dna.n_train, 2000)
    for times in (micro, full):
        assert set(times.wall_s) == set(baselines.RUNGS)
        assert all(t > 0 for t in times.wall_s.values())
        assert all(s is not None for s in times.scores.values())
    # More data from the same rule: the tuned model's RMSE does not get worse.
    assert full.scores["tuned"] <= micro.scores["tuned"] * 1.05
