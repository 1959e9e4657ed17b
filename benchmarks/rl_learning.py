"""Evidence that GRPO learns: runs' SFT-only policies vs their GRPO policies on held-out tasks,
family by family.

    python benchmarks/rl_learning.py --runs=runs/learn0,runs/learn1,runs/learn2 --seeds=4 \
        --out=benchmarks/plots

Each of `--runs` is a finished `launch.train` workdir (one per training seed). Its newest SFT
checkpoint is exported next to it (`sft_export/`, once) and played against its final GRPO export
(`hf_export/`) in this process, each as `launch.evaluate --policy=embedded` plays it (reports in
`<run>/rl_learning/`): the same tasks (`--split` of `--tasks`, by default the run's validation
split), the same episode seeds, the recipe's sampling temperature and limits. Prints, per task
family (the tasks' `task_type`) and over all, MLE-bench-style rates as mean ± SEM (over runs when
there are several, else over episode seeds), the relative change in medal rate from SFT to GRPO
with a 95% paired bootstrap interval (episodes matched by run, task and seed), and which model
tier each policy's programs chose (the `TIER = "..."` line of the reference programs it learned
to write), so a change in reward can be traced to a change in behaviour. With --out, also writes
the tables as JSON and a bar chart of the rates per family (`rl_learning.json`,
`rl_learning.png`).
"""

import asyncio
import collections
import json
import pathlib
import re

import numpy as np
from absl import app, flags
from ml_collections import config_flags

from sandmle_jax.agent.chat import ChatFormat
from sandmle_jax.eval import cli, plots, report
from sandmle_jax.models import tokenizer as tokenizer_lib
from sandmle_jax.parallel import host_memory
from sandmle_jax.rl import weight_sync
from sandmle_jax.tasks import task_set
import run_facts

_CONFIG = config_flags.DEFINE_config_file("config", "configs/tiny_cpu.py", "The runs' recipe.")
_RUNS = flags.DEFINE_list("runs", None, "Finished launch.train workdirs.", required=True)
_TASKS = flags.DEFINE_string("tasks", None, "Task store (default: each run's tasks/).")
_SPLIT = flags.DEFINE_string("split", "validation", "Split of the store; '' = every task.")
_SEEDS = flags.DEFINE_integer("seeds", 8, "Episodes per task and policy.")
_OUT = flags.DEFINE_string("out", None, "Folder for rl_learning.json and rl_learning.png.")
_SFT_ONLY = flags.DEFINE_bool("sft_only", False, "Play the SFT policies alone (how well SFT "
                              "taught the families, before any GRPO run).")

_TIER = re.compile(r'TIER = \\?"(\w+)')
_KIND = re.compile(r'KIND = \\?"(\w+)')
RATES = ("valid_submission", "above_median", "any_medal", "gold", "reward")
POLICIES = (("SFT only", "eval_sft"), ("SFT + GRPO", "eval_grpo"))


def generated_text(chat: ChatFormat, trajectory) -> str:
    return "".join(chat.decode([i for i, m in zip(s.ids, s.loss_mask) if m])
                   for s in trajectory.sequences)


def episodes(config, run: pathlib.Path, model_dir: pathlib.Path, tasks: pathlib.Path,
             out: pathlib.Path) -> list[dict]:
    """launch.evaluate's embedded-policy run (report in `out`) as one record per episode."""
    _, results = asyncio.run(cli.evaluate(config, cli.EvalRequest(
        tasks=tasks, split=_SPLIT.value or None, policy="embedded", model_dir=model_dir,
        seeds=_SEEDS.value, out=out)))
    chat = ChatFormat.from_tokenizer(tokenizer_lib.load_tokenizer(str(model_dir)))
    records = []
    for seed, t in results:
        text = generated_text(chat, t)
        records.append({"run": str(run), "task": t.info.task_id, "seed": seed,
                        "tiers": _TIER.findall(text), "kinds": _KIND.findall(text),
                        **report.indicators(t), "reward": float(t.reward)})
    return records


def rates(records: list[dict], by: str) -> dict[str, dict[str, float]]:
    """Each rate's mean ± SEM over the groups `by` ("run" or "seed") of the records."""
    groups = collections.defaultdict(list)
    for r in records:
        groups[r[by]].append(r)
    return {rate: report.mean_sem([np.mean([r[rate] for r in g]) for g in groups.values()])
            for rate in RATES}


def medal_gain(before: list[dict], after: list[dict]) -> tuple[float, float, float]:
    """GRPO's medal rate over SFT's minus 1, with a 95% paired bootstrap interval; episodes are
    matched by run, task and seed."""
    key = lambda r: (r["run"], r["task"], r["seed"])  # noqa: E731
    paired = {key(r): [r["any_medal"]] for r in before}
    for r in after:
        paired[key(r)].append(r["any_medal"])
    x, y = np.array([p for p in paired.values() if len(p) == 2]).T
    return report.relative_gain(x, y)


def main(_):
    print(run_facts.header())
    host_memory.keep_freed_memory_from_flags()
    config, runs = _CONFIG.value, [pathlib.Path(r) for r in _RUNS.value]
    policies = POLICIES[:1] if _SFT_ONLY.value else POLICIES
    records = {name: [] for name, _ in policies}
    family = {}
    for run in runs:
        tasks = pathlib.Path(_TASKS.value or run / "tasks")
        family |= {t.id: t.spec.task_type for t in task_set.load_task_set(
            tasks, _SPLIT.value or None)}
        models = {"SFT only": weight_sync.sft_export(run), "SFT + GRPO": run / "hf_export"}
        for name, out in policies:
            records[name] += episodes(config, run, models[name], tasks,
                                      run / "rl_learning" / out)
    by = "run" if len(runs) > 1 else "seed"
    families = sorted(set(family.values())) + ["all"]
    table = {}
    print(f"\n{len(runs)} run(s) x {_SEEDS.value} seeds, split {_SPLIT.value or 'all'}, "
          f"temperature {config.eval.temperature}; ± SEM over {by}s; medal gain: GRPO/SFT - 1 "
          "with a 95% paired bootstrap interval")
    print("| family | policy | episodes | " + " | ".join(RATES) + " | tiers chosen | kinds |")
    print("|---" * (len(RATES) + 5) + "|")
    for fam in families:
        rows = {name: [r for r in recs if fam == "all" or family[r["task"]] == fam]
                for name, recs in records.items()}
        table[fam] = {}
        for name, recs in rows.items():
            tiers = collections.Counter(t for r in recs for t in r["tiers"])
            kinds = collections.Counter(k for r in recs for k in r["kinds"])
            table[fam][name] = {"episodes": len(recs), "rates": rates(recs, by),
                                "tiers": dict(tiers), "kinds": dict(kinds)}
            cells = [f"{v['mean']:.3f} ± {v['sem']:.3f}"
                     for v in table[fam][name]["rates"].values()]
            print(f"| {fam} | {name} | {len(recs)} | " + " | ".join(cells) + " | "
                  + ", ".join(f"{t} {n}" for t, n in tiers.most_common()) + " | "
                  + ", ".join(f"{k} {n}" for k, n in kinds.most_common()) + " |")
        if len(rows) == 2:
            gain = medal_gain(*rows.values())
            table[fam]["medal_gain"] = gain
            print(f"| {fam} | medal gain | | {gain[0]:+.1%} [{gain[1]:+.1%}, {gain[2]:+.1%}] |")
    if _OUT.value:
        out = pathlib.Path(_OUT.value)
        out.mkdir(parents=True, exist_ok=True)
        (out / "rl_learning.json").write_text(json.dumps(table, indent=2))
        plots.plot_rates({f"{fam}: {name}": {r: table[fam][name]["rates"][r]["mean"] for r in RATES}
                          for fam in families for name, _ in policies},
                         out / "rl_learning.png", rates=RATES)


if __name__ == "__main__":
    app.run(main)
