"""Does a policy trained in our scaffold still work in one it never saw? A run's SFT-only and
SFT+GRPO policies (and the reference agent, the ceiling) on held-out tasks, in our training
scaffold and in MLE-Dojo's (sandmle_jax/dojo).

    PYTHONPATH=. python benchmarks/scaffold_transfer.py --run=runs/tiny --seeds=3 --out=DIR

`--run` is a finished `launch.train` workdir (e.g. the README's main job). Each policy is played
as `launch.evaluate --scaffold=sandmle,dojo` plays it (reports under the run's
`scaffold_transfer/`): the run's validation tasks, the same seeds, the recipe's sampling and
limits. Prints, per policy and scaffold, MLE-bench-style rates (mean ± SEM over seeds), the
format rate (the share of turns the scaffold could parse) and HumanRank where the tasks have
leaderboards. With --out, writes the table as JSON and a bar chart (`scaffold_transfer.json`,
`scaffold_transfer.png`).
"""

import asyncio
import json
import pathlib

import numpy as np
from absl import app, flags
from ml_collections import config_flags

from sandmle_jax.eval import cli, plots
from sandmle_jax.parallel import host_memory
from sandmle_jax.rl import weight_sync
import run_facts

_CONFIG = config_flags.DEFINE_config_file("config", "configs/tiny_cpu.py", "The run's recipe.")
_RUN = flags.DEFINE_string("run", None, "A finished launch.train workdir.", required=True)
_TASKS = flags.DEFINE_string("tasks", None, "Task store (default: the run's tasks/).")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Episodes per task, policy and scaffold.")
_OUT = flags.DEFINE_string("out", None, "Folder for scaffold_transfer.json and .png.")

SCAFFOLDS = ("sandmle", "dojo")
RATES = ("valid_submission", "above_median", "any_medal", "reward")


def play(config, policy: str, model_dir, tasks: pathlib.Path, seeds: int, out: pathlib.Path):
    """{scaffold: overall rates + format rate} of one policy in both scaffolds."""
    asyncio.run(cli.evaluate(config, cli.EvalRequest(
        tasks=tasks, split="validation", policy=policy, model_dir=model_dir, seeds=seeds,
        scaffolds=SCAFFOLDS, out=out)))
    report = json.loads((out / "report.json").read_text())
    rows = {}
    for scaffold in SCAFFOLDS:
        overall = dict(report["scaffolds"][scaffold]["overall"])
        episodes = [e for e in report["episodes"] if e["scaffold"] == scaffold]
        per_seed = [np.mean([e["format_rate"] for e in episodes if e["seed"] == seed])
                    for seed in range(seeds)]
        sem = float(np.std(per_seed, ddof=1) / np.sqrt(seeds)) if seeds > 1 else 0.0
        overall["format_rate"] = {"mean": float(np.mean(per_seed)), "sem": sem}
        overall["tasks"] = report["scaffolds"][scaffold]["tasks"]
        rows[scaffold] = overall
    return rows


def main(_):
    print(run_facts.header())
    host_memory.keep_freed_memory_from_flags()
    config, run = _CONFIG.value, pathlib.Path(_RUN.value).resolve()
    tasks = pathlib.Path(_TASKS.value or run / "tasks").resolve()
    policies = {"reference (tuned)": ("reference", None),
                "SFT only": ("embedded", weight_sync.sft_export(run)),
                "SFT + GRPO": ("embedded", run / "hf_export")}
    table = {}
    for name, (policy, model_dir) in policies.items():
        slug = name.split(" ")[0].lower() + ("_grpo" if "GRPO" in name else "")
        table[name] = play(config, policy, model_dir, tasks, _SEEDS.value,
                           run / "scaffold_transfer" / slug)
    tasks_played = next(iter(table.values()))["sandmle"]["tasks"]
    print(f"\n{tasks_played} validation tasks x {_SEEDS.value} seeds per policy and scaffold, "
          f"temperature {config.eval.temperature}, top_p {config.eval.top_p}")
    columns = RATES + ("format_rate",) + (("humanrank",) if all(
        "humanrank" in row for rows in table.values() for row in rows.values()) else ())
    print("| policy | scaffold | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 2) + "|")
    for name, rows in table.items():
        for scaffold, row in rows.items():
            cells = [f"{row[c]['mean']:.3f} ± {row[c]['sem']:.3f}" for c in columns]
            print(f"| {name} | {scaffold} | " + " | ".join(cells) + " |")
    if _OUT.value:
        out = pathlib.Path(_OUT.value)
        out.mkdir(parents=True, exist_ok=True)
        (out / "scaffold_transfer.json").write_text(json.dumps(table, indent=2))
        plots.plot_rates({f"{name} / {scaffold}": {c: row[c]["mean"] for c in columns}
                          for name, rows in table.items() for scaffold, row in rows.items()},
                         out / "scaffold_transfer.png", rates=columns[:3] + ("format_rate",))


if __name__ == "__main__":
    app.run(main)
