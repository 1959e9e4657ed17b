"""What `launch.evaluate` does: build the chosen policy, play the task set, write the report."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Sequence

from sandbox_runner import Isolation, Pool, Sandbox

from sandmle_jax.agent import loop, reference
from sandmle_jax.agent.chat import ChatFormat
from sandmle_jax.agent.policy import EnginePolicy
from sandmle_jax.agent.trajectory import Trajectory
from sandmle_jax.eval import openai_policy, plots, report, runner
from sandmle_jax.models import small_tokenizer, tokenizer as tokenizer_lib
from sandmle_jax.rollout import factory
from sandmle_jax.tasks import task_set

POLICIES = ("reference", "embedded", "sglang", "openai")


async def evaluate(config, *, tasks: str, split: str | None, policy: str, model_dir: str | None,
                   tier: str = "boosting", sglang_urls: Sequence[str] = (),
                   openai_base_url: str | None = None, openai_model: str = "default",
                   seeds: int = 1, out: pathlib.Path
                   ) -> tuple[dict, list[tuple[int, Trajectory]]]:
    """Plays the task set; returns the summary and the (seed, trajectory) results."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; known: {POLICIES}")
    task_list = task_set.load_task_set(tasks, split)
    tokenizer_dir = model_dir or str(small_tokenizer.qwen3_tokenizer_dir())
    tokenizer = tokenizer_lib.load_tokenizer(tokenizer_dir)
    chat = ChatFormat.from_tokenizer(tokenizer)
    engine = None
    if policy == "reference":
        policy_for_seed = lambda seed: reference.ReferencePolicy(chat, tier=tier)  # noqa: E731
    elif policy == "openai":
        if not openai_base_url:
            raise ValueError("policy=openai needs --openai_base_url")
        policy_for_seed = lambda seed: openai_policy.OpenAIChatPolicy(  # noqa: E731
            chat, openai_base_url, openai_model, temperature=config.eval.temperature,
            top_p=config.eval.top_p)
    else:
        if policy == "embedded" and not model_dir:
            raise ValueError("policy=embedded needs --model_dir (an HF Qwen3 directory)")
        rollout = config.rollout.copy_and_resolve_references()
        rollout.engine = policy
        engine = factory.engine_from_config(rollout, model_dir, tokenizer,
                                            sglang_urls=sglang_urls)
        policy_for_seed = lambda seed: EnginePolicy(  # noqa: E731
            engine, temperature=config.eval.temperature, top_p=config.eval.top_p,
            seed=1000 + seed)
    box = config.sandbox
    try:
        with Pool(Sandbox(min_isolation=Isolation.parse(box.min_isolation)),
                  workers=box.workers) as pool:
            summary, results = await runner.evaluate(
                task_list, policy_for_seed, chat, pool, loop.agent_config_from(config),
                seeds=seeds, concurrency=config.rollout.concurrency, prefix=f"eval-{policy}")
    finally:
        factory.close_engine(engine)
    out.mkdir(parents=True, exist_ok=True)
    episodes = [{"seed": seed, **t.to_dict()["info"], "reward": t.reward} for seed, t in results]
    (out / "report.json").write_text(json.dumps({"summary": summary, "episodes": episodes},
                                                indent=2))
    plots.plot_rates({policy: {k: v["mean"] for k, v in summary["overall"].items()}},
                     out / "plots" / "rates.png")
    print(report.format_table(summary))
    return summary, results
