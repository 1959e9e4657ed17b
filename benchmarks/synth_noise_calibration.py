"""How learnable the procedural heads are at each label-noise level: the table `synth.dna`
inverts to give a real seed's descendants the seed's learnability.

    PYTHONPATH=. python benchmarks/synth_noise_calibration.py

For the shipped tabular binary, multiclass and regression seeds, a linear task (no
non-linearity, interactions, outliers, gaps or distractors) of 1,000 training rows is
synthesised at each noise level and measured with `synth.seed_signal.measure`, the same
cross-validation that measures a real seed. Prints signal per noise level per task type.
"""

import dataclasses

import numpy as np

from sandmle_jax.synth import dna as dna_lib
from sandmle_jax.synth import seed_signal, seeds, synthesis
import run_facts

NOISE_LEVELS = (0.1, 0.2, 0.3, 0.45, 0.7, 1.0, 1.5, 2.5)


def main() -> None:
    print(run_facts.header())
    shipped = seeds.load_seeds()
    for seed_id in ("tabular_binary_auc", "tabular_multiclass_accuracy",
                    "tabular_regression_rmse"):
        base = dna_lib.mutate(dna_lib.extract_dna(shipped[seed_id]), np.random.default_rng(1),
                              seed=1)
        base = dataclasses.replace(base, nonlinearity=0.0, interactions=0, outlier_rate=0.0,
                                   missing_rate=0.0, n_distractors=0)
        row = []
        for noise in NOISE_LEVELS:
            dna = dataclasses.replace(base, noise=noise)
            object.__setattr__(dna, "n_train", 1000)  # past the micro bound, as at_scale does
            data = synthesis.synthesize(dna)
            target = data.train[data.baseline.train_targets[0]]
            signal, _ = seed_signal.measure(data.train, list(data.baseline.feature_columns),
                                            target, dna.task_type)
            row.append(f"{noise}:{signal:.3f}")
        print(f"{base.task_type:11s} " + " ".join(row))


if __name__ == "__main__":
    main()
