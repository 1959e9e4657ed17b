"""What `launch.evaluate` does: check the request, build the chosen policy, play the task set in
each chosen scaffold, write the report."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import pathlib
from collections.abc import Sequence

from sandbox_runner.workspace import Runner

from sandmle_jax import paths
from sandmle_jax.agent import config as agent_config, react, reference
from sandmle_jax.agent.chat import ChatFormat
from sandmle_jax.agent.policy import EnginePolicy
from sandmle_jax.agent import sandbox_setup
from sandmle_jax.agent.trajectory import Trajectory
from sandmle_jax.dojo import reference as dojo_reference, scaffold as dojo_scaffold
from sandmle_jax.errors import ConfigError
from sandmle_jax.eval import openai_policy, plots, report, runner
from sandmle_jax.models import small_tokenizer, tokenizer as tokenizer_lib
from sandmle_jax.monitoring import console
from sandmle_jax.rollout import factory
from sandmle_jax.tasks import task_set

POLICIES = ("reference", "embedded", "sglang", "openai")
# How the policy meets the task: our training scaffold, or MLE-Dojo's (through its environment).
SCAFFOLDS = {react.NAME: react.open_scaffold, dojo_scaffold.NAME: dojo_scaffold.open_scaffold}


@dataclasses.dataclass(frozen=True)
class EvalRequest:
    """Who plays which tasks, and where the report goes. Paths become absolute on creation."""

    tasks: str | pathlib.Path
    out: str | pathlib.Path
    policy: str = "reference"
    split: str | None = "validation"
    model_dir: str | pathlib.Path | None = None  # HF directory: weights and/or tokenizer
    tier: str = "tuned"  # the reference agent's tier
    sglang_urls: Sequence[str] = ()
    openai_base_url: str | None = None
    openai_model: str = "default"
    seeds: int = 1
    scaffolds: Sequence[str] = (react.NAME,)  # several: compared side by side in one report

    def __post_init__(self):
        object.__setattr__(self, "tasks", paths.absolute(self.tasks))
        object.__setattr__(self, "out", paths.absolute(self.out))
        object.__setattr__(self, "scaffolds", tuple(self.scaffolds))
        if self.model_dir:
            object.__setattr__(self, "model_dir", paths.absolute(self.model_dir))


def check_request(config, request: EvalRequest) -> None:
    """ConfigError for a request that cannot run, before anything is written."""
    if request.policy not in POLICIES:
        raise ConfigError(f"--policy {request.policy!r} unknown; known: {POLICIES}")
    unknown = [s for s in request.scaffolds if s not in SCAFFOLDS]
    if unknown or not request.scaffolds or len(set(request.scaffolds)) < len(request.scaffolds):
        raise ConfigError(f"--scaffold {','.join(request.scaffolds)!r}: name each of "
                          f"{sorted(SCAFFOLDS)} at most once")
    if request.seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {request.seeds}")
    if not request.tasks.exists():
        raise ConfigError(f"--tasks {request.tasks}: no such task, store or folder")
    if request.policy == "embedded" and not request.model_dir:
        raise ConfigError("--policy=embedded needs --model_dir (an HF Qwen3 directory)")
    if request.policy == "sglang" and not (request.sglang_urls or config.rollout.sglang_urls):
        raise ConfigError("--policy=sglang needs --sglang_urls (or rollout.sglang_urls)")
    if request.policy == "openai" and not request.openai_base_url:
        raise ConfigError("--policy=openai needs --openai_base_url")
    if request.model_dir and not request.model_dir.is_dir():
        raise ConfigError(f"--model_dir {request.model_dir}: no such directory")
    sandbox_setup.check_section(config.sandbox)


def policy_factory(request: EvalRequest, chat: ChatFormat, engine, e, scaffold: str):
    """seed -> the policy playing that seed's episodes in `scaffold`."""
    if request.policy == "reference":
        if scaffold == dojo_scaffold.NAME:
            return lambda seed: dojo_reference.DojoReferencePolicy(chat, tier=request.tier)
        return lambda seed: reference.ReferencePolicy(chat, tier=request.tier)
    if request.policy == "openai":  # one client for all episodes: it learns the request style once
        policy = openai_policy.OpenAIChatPolicy(
            chat, request.openai_base_url, request.openai_model, temperature=e.temperature,
            top_p=e.top_p)
        return lambda seed: policy
    return lambda seed: EnginePolicy(engine, temperature=e.temperature, top_p=e.top_p,
                                     seed=1000 + seed)


def _run_name(request: EvalRequest, scaffold: str) -> str:
    return request.policy if len(request.scaffolds) == 1 else f"{request.policy}/{scaffold}"


@dataclasses.dataclass(frozen=True)
class Players:
    """What a checked request plays with: its tasks, chat format, sandbox pool, engine and the
    agent's limits (with the libraries the sandbox imports)."""

    tasks: list
    chat: ChatFormat
    pool: Runner
    engine: object | None
    agent: agent_config.AgentConfig


@contextlib.asynccontextmanager
async def players(config, request: EvalRequest):
    """Loads the tasks, the tokenizer, the sandbox (checked) and the engine a request needs;
    closes the engine and the pool on the way out."""
    check_request(config, request)
    task_list = task_set.load_task_set(request.tasks, request.split)
    tokenizer_dir = request.model_dir or small_tokenizer.qwen3_tokenizer_dir()
    chat = ChatFormat.from_tokenizer(tokenizer_lib.load_tokenizer(str(tokenizer_dir)))
    with sandbox_setup.runner_for(config.sandbox) as pool:
        agent = dataclasses.replace(agent_config.agent_config_from(config),
                                    libraries=sandbox_setup.check_sandbox(pool))
        engine = None
        if request.policy in ("embedded", "sglang"):
            rollout = config.rollout.copy_and_resolve_references()
            rollout.engine = request.policy
            engine = factory.engine_from_config(rollout, request.model_dir, chat.tokenizer,
                                                sglang_urls=request.sglang_urls)
        try:
            yield Players(task_list, chat, pool, engine, agent)
        finally:
            await factory.close_engine(engine)


async def evaluate(config, request: EvalRequest) -> tuple[dict, list[tuple[int, Trajectory]]]:
    """Plays the task set in each requested scaffold; writes report.json (the first scaffold's
    summary, every scaffold's under `scaffolds`, every episode with its scaffold) and plots/
    under `request.out`; returns the first scaffold's summary and all (seed, trajectory)
    results."""
    summaries, results = {}, []
    async with players(config, request) as p:
        for scaffold in request.scaffolds:
            summary, played = await runner.evaluate(
                p.tasks, policy_factory(request, p.chat, p.engine, config.eval, scaffold),
                p.chat, p.pool, p.agent, seeds=request.seeds,
                concurrency=config.rollout.concurrency,
                prefix=f"eval-{request.policy}-{scaffold}", open_scaffold=SCAFFOLDS[scaffold])
            summaries[scaffold] = summary
            results += played
    out = request.out
    out.mkdir(parents=True, exist_ok=True)
    episodes = [{"seed": seed, **t.to_dict()["info"], "reward": t.reward} for seed, t in results]
    first = summaries[request.scaffolds[0]]
    (out / "report.json").write_text(json.dumps(
        {"summary": first, "scaffolds": summaries, "episodes": episodes}, indent=2))
    rows = {_run_name(request, name): summary for name, summary in summaries.items()}
    rates = list(plots.RATES) + (["humanrank"] if all(
        "humanrank" in s["overall"] for s in summaries.values()) else [])
    plots.plot_rates({name: {k: v["mean"] for k, v in s["overall"].items()}
                      for name, s in rows.items()}, out / "plots" / "rates.png", rates=rates)
    for name, summary in rows.items():
        console.stage(f"{name}:\n{report.format_table(summary)}")
    if len(rows) > 1:
        console.stage("side by side, mean ± SEM:\n" + report.comparison_table(rows))
    console.stage(f"report: {out / 'report.json'}")
    return first, results
