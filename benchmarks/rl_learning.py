"""Evidence that GRPO learns: a run's SFT-only policy vs its GRPO policy on held-out tasks.

    python benchmarks/rl_learning.py --run=runs/learn --seeds=8 --out=benchmarks/plots

`--run` is a finished `launch.train` workdir. Its newest SFT checkpoint is exported next to it
(`sft_export/`, once) and played against its final GRPO export (`hf_export/`) in this process:
the same validation tasks, the same seeds, the recipe's sampling temperature and limits. Prints
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

from sandbox_runner import Isolation, Pool, Sandbox
from sandmle_jax.agent import loop
from sandmle_jax.agent.chat import ChatFormat
from sandmle_jax.agent.policy import EnginePolicy
from sandmle_jax.eval import plots, runner
from sandmle_jax.models import tokenizer as tokenizer_lib
from sandmle_jax.rl import weight_sync
from sandmle_jax.rollout import factory
from sandmle_jax.tasks import task_set

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


async def play(config, model_dir: pathlib.Path, tasks, seeds: int, name: str):
    tokenizer = tokenizer_lib.load_tokenizer(str(model_dir))
    chat = ChatFormat.from_tokenizer(tokenizer)
    engine = factory.engine_from_config(config.rollout, model_dir, tokenizer)
    e, box = config.eval, config.sandbox
    try:
        with Pool(Sandbox(min_isolation=Isolation.parse(box.min_isolation)),
                  workers=box.workers) as pool:
            summary, results = await runner.evaluate(
                tasks, lambda seed: EnginePolicy(engine, temperature=e.temperature,
                                                 top_p=e.top_p, seed=1000 + seed),
                chat, pool, loop.agent_config_from(config), seeds=seeds,
                concurrency=config.rollout.concurrency, prefix=name)
    finally:
        factory.close_engine(engine)
    tiers = collections.Counter(tier for _, t in results for tier in chosen_tiers(chat, t))
    return summary, tiers


def main(_):
    config, run = _CONFIG.value, pathlib.Path(_RUN.value)
    tasks = task_set.load_task_set(_TASKS.value or run / "tasks", "validation")
    sft = run / "sft_export"
    if not (sft / "config.json").is_file():
        weight_sync.export_checkpoint(str(run / "checkpoints" / "sft"), str(sft))
    rows = {}
    for name, model_dir in (("SFT only", sft), ("SFT + GRPO", run / "hf_export")):
        rows[name] = asyncio.run(play(config, model_dir, tasks, _SEEDS.value, name))
    print(f"\n{len(tasks)} validation tasks x {_SEEDS.value} seeds, temperature "
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
