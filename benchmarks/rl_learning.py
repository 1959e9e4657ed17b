"""Evidence that GRPO learns: a run's SFT-only policy vs its GRPO policy on held-out tasks.

    python benchmarks/rl_learning.py --run=runs/learn --seeds=8 --out=benchmarks/plots

`--run` is a finished `launch.train` workdir. Its newest SFT checkpoint is exported next to it
(`sft_export/`, once) and played against its final GRPO export (`hf_export/`) in this process,
each as `launch.evaluate --policy=embedded` plays it (reports in `rl_learning/`): the same
validation tasks, the same seeds, the recipe's sampling temperature and limits. Prints
MLE-bench-style rates (mean ± SEM over seeds) and which model tier each policy's programs chose
(the `TIER = "..."` line of the reference programs it learned to write), so a change in reward
can be traced to a change in behaviour. With --out, also writes the table as JSON and a bar chart
of the rates (`rl_learning.json`, `rl_learning.png`).
"""

import asyncio
import collections
import json
import pathlib
import re

from absl import app, flags
from ml_collections import config_flags

from sandmle_jax.agent.chat import ChatFormat
from sandmle_jax.eval import cli, plots
from sandmle_jax.models import tokenizer as tokenizer_lib
from sandmle_jax.parallel import host_memory
from sandmle_jax.rl import weight_sync
import run_facts

_CONFIG = config_flags.DEFINE_config_file("config", "configs/tiny_cpu.py", "The run's recipe.")
_RUN = flags.DEFINE_string("run", None, "A finished launch.train workdir.", required=True)
_TASKS = flags.DEFINE_string("tasks", None, "Task store (default: the run's tasks/).")
_SEEDS = flags.DEFINE_integer("seeds", 8, "Episodes per task and policy.")
_OUT = flags.DEFINE_string("out", None, "Folder for rl_learning.json and rl_learning.png.")

_TIER = re.compile(r'TIER = \\?"(\w+)')


def chosen_tiers(chat: ChatFormat, trajectory) -> list[str]:
    """The tiers named by the programs the policy generated in one episode."""
    text = "".join(chat.decode([i for i, m in zip(s.ids, s.loss_mask) if m])
                   for s in trajectory.sequences)
    return _TIER.findall(text)


def play(config, model_dir: pathlib.Path, tasks: pathlib.Path, seeds: int, out: pathlib.Path):
    """launch.evaluate's embedded-policy run (report in `out`), plus the tiers chosen."""
    summary, results = asyncio.run(cli.evaluate(config, cli.EvalRequest(
        tasks=tasks, split="validation", policy="embedded", model_dir=model_dir, seeds=seeds,
        out=out)))
    chat = ChatFormat.from_tokenizer(tokenizer_lib.load_tokenizer(str(model_dir)))
    tiers = collections.Counter(tier for _, t in results for tier in chosen_tiers(chat, t))
    return summary, tiers


def main(_):
    print(run_facts.header())
    host_memory.keep_freed_memory_from_flags()
    config, run = _CONFIG.value, pathlib.Path(_RUN.value)
    tasks = pathlib.Path(_TASKS.value or run / "tasks")
    sft = weight_sync.sft_export(run)
    rows = {}
    for name, model_dir, out in (("SFT only", sft, "eval_sft"),
                                 ("SFT + GRPO", run / "hf_export", "eval_grpo")):
        rows[name] = play(config, model_dir, tasks, _SEEDS.value, run / "rl_learning" / out)
    tasks_played = next(iter(rows.values()))[0]["tasks"]
    print(f"\n{tasks_played} validation tasks x {_SEEDS.value} seeds, temperature "
          f"{config.eval.temperature}, top_p {config.eval.top_p}")
    rates = ("valid_submission", "above_median", "any_medal", "gold", "reward")
    print("| policy | " + " | ".join(rates) + " | tiers chosen |")
    print("|---" * (len(rates) + 2) + "|")
    for name, (summary, tiers) in rows.items():
        cells = [f"{summary['overall'][r]['mean']:.3f} ± {summary['overall'][r]['sem']:.3f}"
                 for r in rates]
        shares = ", ".join(f"{tier} {n}" for tier, n in tiers.most_common())
        print(f"| {name} | " + " | ".join(cells) + f" | {shares} |")
    if _OUT.value:
        out = pathlib.Path(_OUT.value)
        out.mkdir(parents=True, exist_ok=True)
        (out / "rl_learning.json").write_text(json.dumps(
            {name: {"overall": summary["overall"], "tiers": dict(tiers)}
             for name, (summary, tiers) in rows.items()}, indent=2))
        plots.plot_rates({name: {r: summary["overall"][r]["mean"] for r in rates}
                          for name, (summary, _) in rows.items()}, out / "rl_learning.png",
                         rates=rates)


if __name__ == "__main__":
    app.run(main)
