"""Evaluating the reference agent over tasks x seeds in the real sandbox, and the plots."""

import asyncio
import json

from conftest import write_tabular_task
from sandbox_runner import Limits, Pool, Sandbox

from sandmle_jax.agent import reference
from sandmle_jax.agent.chat import ChatFormat
from sandmle_jax.agent.config import AgentConfig
from sandmle_jax.eval import plots, runner
from sandmle_jax.monitoring.metrics_writer import MetricsWriter


def test_reference_agent_evaluation(tmp_path, qwen_tokenizer):
    tasks = [write_tabular_task(tmp_path / f"t{i}", seed=i, task_id=f"toy-{i}") for i in range(2)]
    chat = ChatFormat.from_tokenizer(qwen_tokenizer)
    config = AgentConfig(max_turns=5, exec_timeout_s=60, exec_limits=Limits(wall_s=60))
    with Pool(Sandbox(), workers=2) as pool:
        summary, results = asyncio.run(runner.evaluate(
            tasks, lambda seed: reference.ReferencePolicy(chat, tier="forest"), chat, pool,
            config, seeds=2, progress=False))
    assert summary["episodes"] == 4 and summary["seeds"] == 2 and summary["tasks"] == 2
    assert summary["overall"]["valid_submission"]["mean"] == 1.0
    assert [seed for seed, _ in results] == [0, 0, 1, 1]
    assert {t.info.task_id for _, t in results} == {"toy-0", "toy-1"}
    json.dumps(summary)  # the report is JSON-serialisable as written by launch.evaluate


def test_plots_write_pngs(tmp_path):
    with MetricsWriter(tmp_path, tensorboard=False) as writer:
        for step in range(5):
            writer.write(step, {"train/reward_mean": step / 10, "eval/any_medal": step / 20})
    out = tmp_path / "curves.png"
    assert plots.plot_curves(tmp_path, out, ["train/reward_mean", "eval/any_medal",
                                             "absent"]) == ["train/reward_mean",
                                                            "eval/any_medal"]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bars = tmp_path / "plots" / "rates.png"
    plots.plot_rates({"SFT": {"any_medal": 0.2}, "GRPO": {"any_medal": 0.4}}, bars)
    assert bars.stat().st_size > 1000
