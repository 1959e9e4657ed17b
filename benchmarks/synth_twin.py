"""Per-step execution time of the baseline ladder: micro tasks vs their full-scale twins.

    PYTHONPATH=. python benchmarks/synth_twin.py \
        [--seeds tabular_binary_auc,timeseries_forecast_rmse] [--rows 50000] [--workers 1]

For each seed, one procedural DNA is generated at micro scale (50-200 training rows) and at
`--rows` (the twin: same rule, noise and mutations). Each of the five baseline programs is one
execution step, run in the sandbox exactly like an agent's step; the table prints each step's
wall time and the ratio of the mean twin step to the mean micro step (paper: 196.17 s vs
14.31 s, 13.7x). One worker by default, so steps do not compete for the cores.
"""

import argparse
import pathlib
import tempfile

import numpy as np

from sandbox_runner import Limits, Pool, Sandbox
from sandmle_jax.synth import dna as dna_lib
from sandmle_jax.synth import roles, seeds, twin
import run_facts


def main():
    print(run_facts.header())
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="tabular_binary_auc,timeseries_forecast_rmse")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--task_seed", type=int, default=1)
    args = parser.parse_args()
    shipped = seeds.load_seeds()
    limits = Limits(wall_s=900, cpu_s=1800, memory_bytes=6 << 30, cpus=1)
    all_micro, all_full = [], []
    with tempfile.TemporaryDirectory() as tmp, Pool(Sandbox(), workers=args.workers) as pool:
        workshop = roles.Workshop(pool, limits, pathlib.Path(tmp))
        for seed_id in args.seeds.split(","):
            dna = dna_lib.mutate(dna_lib.extract_dna(shipped[seed_id]),
                                 np.random.default_rng(args.task_seed), seed=args.task_seed)
            micro, full = twin.micro_and_twin(dna, args.rows, workshop)
            print(f"\n{seed_id}: micro {micro.rows} train rows vs twin {full.rows} train rows")
            print(f"{'step':<14}{'micro s':>9}{'twin s':>9}{'ratio':>8}"
                  f"{'micro score':>13}{'twin score':>12}")
            for rung in micro.wall_s:
                m, f = micro.wall_s[rung], full.wall_s[rung]
                print(f"{rung:<14}{m:>9.2f}{f:>9.2f}{f / m:>8.1f}"
                      f"{micro.scores[rung]:>13.4f}{full.scores[rung]:>12.4f}")
            m, f = np.mean(list(micro.wall_s.values())), np.mean(list(full.wall_s.values()))
            print(f"{'mean step':<14}{m:>9.2f}{f:>9.2f}{f / m:>8.1f}")
            all_micro += list(micro.wall_s.values())
            all_full += list(full.wall_s.values())
    m, f = np.mean(all_micro), np.mean(all_full)
    print(f"\nall seeds: mean step {m:.2f} s (micro) vs {f:.2f} s (twin): {f / m:.1f}x "
          f"(paper: 14.31 s vs 196.17 s, 13.7x)")


if __name__ == "__main__":
    main()
