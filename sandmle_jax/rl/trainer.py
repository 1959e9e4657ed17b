"""The SandMLE RL job: tasks -> base policy -> SFT warm start -> GRPO steps -> evaluation -> export.

Everything the run writes lives in `workdir` (the same command resumes from it):

    tasks/              generated micro tasks (synth pipeline; skipped if already there)
    base_model/         the starting HF directory (given, or built for the tiny recipe)
    checkpoints/sft/    Orbax checkpoints of the SFT warm start
    checkpoints/grpo/   Orbax checkpoints of GRPO (params, optimizer, step, RNG, cursor, config)
    hf_export/          the final policy as an HF Qwen3 directory (SGLang / transformers load it)
    metrics/            metrics.jsonl and TensorBoard events
    plots/              reward curve and medal-rate PNGs
    report.json         before/after evaluation, reference baseline, where everything is

Restore order on start: GRPO checkpoint if any (params, optimizer, step, RNG, curriculum cursor);
else an SFT checkpoint (finished: its params start GRPO; unfinished: SFT resumes); else fresh.

A job of N processes (`--dist_*` flags, parallel/distributed.py) trains one model on one mesh
over all their devices; who plays which episodes, how trajectories are exchanged and who writes
what is rl/hosts.py's, and the methods below call it where each of those happens.

Departures from the paper, on purpose: failed episodes (engine, sandbox or grader errors) are
dropped before advantages rather than scored 0; the tiny recipe trains its own tokenizer and a
random tiny Qwen3, since no checkpoint can be downloaded here.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import pathlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np
from absl import logging
from flax import nnx

from sandbox_runner.workspace import Runner

from sandmle_jax import paths
from sandmle_jax.agent import config as agent_config, reference, strategies
from sandmle_jax.agent import sandbox_setup
from sandmle_jax.agent.chat import ChatFormat
from sandmle_jax.agent.policy import EnginePolicy
from sandmle_jax.agent.trajectory import Trajectory
from sandmle_jax.eval import plots, report as report_lib, runner
from sandmle_jax.errors import ConfigError, SetupError
from sandmle_jax.models import hf, tokenizer as tokenizer_lib
from sandmle_jax.monitoring import console
from sandmle_jax.monitoring.metrics_writer import MetricsWriter
from sandmle_jax.parallel import mesh as mesh_lib
from sandmle_jax.rl import (base_model, batching, checkpoint, curriculum as curriculum_lib,
                            episodes, hosts as hosts_lib, learner as learner_lib, optim,
                            sft as sft_lib, sft_data, weight_sync)
from sandmle_jax.rollout import engine as engine_lib, factory
from sandmle_jax.synth import pipeline as synth_pipeline
from sandmle_jax.tasks import rewards, task_set
from sandmle_jax.tasks.task import Task


def _to_dict(config) -> dict[str, Any]:
    return config.to_dict() if hasattr(config, "to_dict") else dict(config)


@dataclasses.dataclass
class _Policy:
    """The trained model: its module (structure), its initial params, the learner and the rollout
    engine serving it (None for SFT, which samples nothing)."""

    module: nnx.Module
    params: Any
    learner: learner_lib.Learner
    engine: engine_lib.Engine | None
    chat: ChatFormat


class Trainer:
    def __init__(self, config, workdir: str | pathlib.Path):
        self.config = config
        self.workdir = paths.absolute(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.agent_config = agent_config.agent_config_from(config)
        self.hosts = hosts_lib.Hosts.of_this_job()
        if self.hosts.count > 1 and not config.mesh.enabled:
            raise ConfigError(f"a job of {self.hosts.count} processes trains one model on a mesh "
                              "over all their devices: set mesh.enabled=True")
        self.writer = MetricsWriter(self.workdir / "metrics", enabled=self.hosts.writer)
        self.report: dict[str, Any] = {"workdir": str(self.workdir)}

    def say(self, message: str) -> None:
        """A stage line on the console (process 0 only) and in the log."""
        if self.hosts.writer:
            console.stage(message)
        else:
            logging.info(message)

    # ---- tasks ------------------------------------------------------------------------------

    def tasks(self) -> tuple[list[Task], list[Task]]:
        source = self.config.tasks
        root = pathlib.Path(source.dir) if source.dir else self.workdir / "tasks"
        if not source.dir and self.hosts.writer and not task_set.has_manifest(root):
            start = time.perf_counter()
            synth_config = _to_dict(source.synth) | {"seed": self.config.seed}
            made = synth_pipeline.Generator(synth_config, root).run(source.num_tasks)
            self.say(f"tasks: generated {made['kept']} of {made['requested']} into {root} in "
                     f"{_duration(time.perf_counter() - start)} ({made['candidates']} "
                     f"candidates, {made['yield']:.0%} kept)")
        self.hosts.barrier("tasks generated")
        train = task_set.load_task_set(root, "train")
        validation = task_set.load_task_set(root, "validation")
        if source.max_validation_tasks:
            validation = validation[:source.max_validation_tasks]
        if not train or not validation:
            raise SetupError(_no_tasks_message(root, len(train), len(validation)))
        self.say(f"tasks: {len(train)} train, {len(validation)} validation ({root})")
        return train, validation

    # ---- base model and tokenizer -----------------------------------------------------------

    def base_model_dir(self, train_tasks: Sequence[Task]) -> pathlib.Path:
        m = self.config.model
        if m.hf_dir:
            self.say(f"base model: {m.hf_dir}")
            return pathlib.Path(m.hf_dir)
        out = self.workdir / "base_model"
        if self.hosts.writer and not (out / "config.json").is_file():
            t = m.tiny
            base_model.build_tiny_base_model(
                out, train_tasks, vocab_size=t.vocab_size, hidden_size=t.hidden_size,
                intermediate_size=t.intermediate_size, num_layers=t.num_layers,
                num_heads=t.num_heads, num_kv_heads=t.num_kv_heads, head_dim=t.head_dim,
                max_positions=self.config.agent.context_tokens, seed=self.config.seed,
                shared_programs=self.config.sft.shared_programs)
            self.say(f"base model: built a random tiny Qwen3 and its tokenizer in {out}")
        self.hosts.barrier("base model built")
        return out

    # ---- policy: model, learner, engine -----------------------------------------------------

    def build_policy(self, model_dir: pathlib.Path, optimizer_config: Mapping[str, Any],
                     loss: learner_lib.LossConfig, *, with_engine: bool) -> _Policy:
        c = self.config
        mesh = None
        if c.mesh.enabled:
            axes = {k: v for k, v in _to_dict(c.mesh).items() if k != "enabled"}
            mesh = mesh_lib.make_mesh(mesh_lib.MeshConfig.from_dict(axes))
        # fp32 master weights; the model itself casts them to the compute dtype per matmul.
        compute = jnp.bfloat16 if c.model.compute_dtype == "bfloat16" else None
        module = hf.load_model(str(model_dir), mesh=mesh, param_dtype=jnp.float32,
                               dtype=compute, remat=c.model.remat)
        apply_fn, params = learner_lib.nnx_apply_fn(module)
        shardings = learner_lib.nnx_param_shardings(module, mesh) if mesh is not None else None
        learner = learner_lib.Learner(
            apply_fn, optim.make_optimizer(optim.OptimizerConfig.from_dict(optimizer_config)),
            loss, mesh=mesh, param_shardings=shardings,
            logit_chunk_tokens=c.model.logit_chunk_tokens or None)
        tokenizer = tokenizer_lib.load_tokenizer(str(model_dir))
        engine = None
        if with_engine:
            engine = factory.engine_from_config(c.rollout, model_dir, tokenizer)
        return _Policy(module, params, learner, engine, ChatFormat.from_tokenizer(tokenizer))

    # ---- episodes ---------------------------------------------------------------------------

    async def play(self, jobs: Sequence[tuple[Task, str]], policy_for, chat: ChatFormat,
                   pool: Runner, desc: str) -> list[Trajectory]:
        """All `jobs`' trajectories, in job order, on every process."""
        return (await self.play_timed(jobs, policy_for, chat, pool, desc))[0]

    async def play_timed(self, jobs: Sequence[tuple[Task, str]], policy_for, chat: ChatFormat,
                         pool: Runner, desc: str) -> tuple[list[Trajectory], float, float]:
        """`play`, the seconds spent waiting for the slowest process and the seconds of the
        exchange itself: this process plays its share of the jobs (each with the policy of its
        index in all of them), then all exchange."""
        mine = self.hosts.share(len(jobs))
        played = await runner.run_episodes(
            [jobs[i] for i in mine], lambda k: policy_for(mine[k]), chat, pool,
            self.agent_config, concurrency=self.config.rollout.concurrency, desc=desc,
            progress=self.hosts.writer)
        start = time.perf_counter()
        self.hosts.barrier("episodes played")
        waited = time.perf_counter() - start
        trajectories = self.hosts.exchange(mine, played, len(jobs))
        exchanged = time.perf_counter() - start - waited
        if self.hosts.count > 1:
            logging.info("%s: process %d played %d of %d episodes; waited %.3f s, exchange "
                         "%.3f s", desc, self.hosts.index, len(mine), len(jobs), waited, exchanged)
        return trajectories, waited, exchanged

    async def evaluate(self, name: str, tasks: Sequence[Task], policy_for_seed, chat, pool
                       ) -> dict[str, Any]:
        start = time.perf_counter()
        summary, _ = await runner.evaluate(
            tasks, policy_for_seed, chat, pool, self.agent_config, seeds=self.config.eval.seeds,
            prefix=f"eval-{name}", play=lambda jobs, policy_for: self.play(
                jobs, policy_for, chat, pool, desc=f"eval-{name}"))
        logging.info("evaluation %s:\n%s", name, report_lib.format_table(summary))
        self.say(f"evaluation, {name} policy: {report_lib.rates_line(summary)} in "
                 f"{_duration(time.perf_counter() - start)}")
        return summary

    def engine_policy_for_seed(self, policy: _Policy):
        e = self.config.eval
        return lambda seed: EnginePolicy(policy.engine, temperature=e.temperature,
                                         top_p=e.top_p, seed=1000 + seed)

    # ---- SFT warm start ---------------------------------------------------------------------

    async def warm_start(self, model_dir: pathlib.Path, train: Sequence[Task], pool: Runner
                         ) -> Any:
        """Runs (or resumes, or skips) SFT on reference-agent episodes and collected data;
        returns its params."""
        s = self.config.sft
        policy = self.build_policy(model_dir, _to_dict(s.optimizer), sft_lib.SFT_LOSS,
                                   with_engine=False)
        state = policy.learner.init_state(policy.params, self.config.seed)
        ckpt = checkpoint.Checkpointer(self.workdir / "checkpoints" / "sft", keep_last=1,
                                       async_save=False)
        with ckpt:
            restored = ckpt.restore_latest(checkpoint.abstract_like(state))
            if restored is not None:
                state = restored.state
                if restored.cursor.get("done"):
                    self.say(f"SFT: finished earlier (checkpoint step {restored.step})")
                    return state.params
            rows = await self.sft_rows(train, policy.chat, pool)
            start = time.perf_counter()
            first = int(state.step)
            stream = sft_lib.sft_batches(rows, s.batch_size, self.batching_config(),
                                         self.config.seed, first)
            metrics: dict[str, float] = {}
            for step in range(first, s.steps):
                batch = next(stream)
                state, metrics = policy.learner.train_step(state, batch)
                if step % s.log_every == 0 or step == s.steps - 1:
                    metrics["nll"] = sft_lib.mean_nll(policy.learner, state.params, batch)
                    logging.info("sft step %d: nll %.3f", step, metrics["nll"])
                self.writer.write(step, {f"sft/{k}": v for k, v in metrics.items()})
                if (step + 1) % s.checkpoint_every == 0 or step == s.steps - 1:
                    ckpt.save(step + 1, state, cursor={"done": step == s.steps - 1},
                              config=_to_dict(self.config))
            self.say(f"SFT: {s.steps - first} steps in {_duration(time.perf_counter() - start)}"
                     f", final NLL per token {metrics.get('nll', float('nan')):.3f}")
        return state.params

    async def sft_rows(self, train: Sequence[Task], chat: ChatFormat, pool: Runner
                       ) -> list[episodes.Row]:
        """SFT rows: reference-agent episodes of `sft.tiers` and the collected `sft.data`."""
        s = self.config.sft
        rows: list[episodes.Row] = []
        if s.tiers:
            played = [(task, tier) for i, task in enumerate(train)
                      for tier in tiers_for_task(s.tiers, s.tiers_per_task, i)]
            jobs = [(task, f"sft-{task.id}-{tier}") for task, tier in played]
            tiers = [tier for _, tier in played]
            start = time.perf_counter()
            trajectories = await self.play(
                jobs, lambda i: reference.ReferencePolicy(
                    chat, tier=tiers[i], shared=s.shared_programs, explore=s.explore_first),
                chat, pool,
                desc="reference episodes")
            rows = sft_lib.sft_rows(trajectories)
            valid = np.mean([t.info.valid_submission for t in trajectories])
            self.say(f"SFT data: {len(trajectories)} reference episodes ({valid:.0%} valid) -> "
                     f"{len(rows)} rows in {_duration(time.perf_counter() - start)}")
            if not rows:
                raise SetupError("SFT has no data: no reference episode produced a training "
                                 f"row (terminations: {_terminations(trajectories)})")
        if s.data:
            collected, too_long = sft_data.load_rows(
                s.data, chat, max(self.config.batching.bucket_lengths))
            self.say(f"SFT data: {len(collected)} rows collected in {s.data}"
                     + (f" ({too_long} longer than the largest bucket left out)"
                        if too_long else ""))
            if not collected:
                raise SetupError(f"SFT has no data: {s.data} holds no row that fits")
            rows += collected
        return rows

    def batching_config(self) -> batching.BatchingConfig:
        return batching.BatchingConfig(**_to_dict(self.config.batching))

    # ---- GRPO -------------------------------------------------------------------------------

    async def rollout(self, step: int, task_ids: Sequence[str], policy: _Policy,
                      tasks: dict[str, Task], pool: Runner) -> _Rollouts:
        """One step's episodes: each task `group_size` times."""
        g, r = self.config.grpo, self.config.rollout
        jobs = [(tasks[i], f"grpo-{step}-{i}-{k}") for i in task_ids for k in range(g.group_size)]
        start = time.perf_counter()
        trajectories, wait_s, exchange_s = await self.play_timed(
            jobs, lambda _: EnginePolicy(policy.engine, temperature=r.temperature, top_p=r.top_p,
                                         seed=self.config.seed * 100_003 + step),
            policy.chat, pool, desc=f"step {step} rollouts")
        groups = [trajectories[k * g.group_size:(k + 1) * g.group_size]
                  for k in range(len(task_ids))]
        return _Rollouts(step, groups, time.perf_counter() - start - wait_s - exchange_s,
                         wait_s, exchange_s)

    async def learn(self, rollouts: _Rollouts, state, policy: _Policy, workers: int):
        """Selection, one learner step (in a thread, so rollouts in flight go on) and sync."""
        g = self.config.grpo
        groups = [[t for t in group if not _stale(t, int(state.step), g.max_staleness)]
                  for group in rollouts.groups]
        stale = sum(len(a) - len(b) for a, b in zip(rollouts.groups, groups))
        chosen = episodes.select(groups, _filter_config(g))
        trajectories = [t for group in rollouts.groups for t in group]
        metrics = _rollout_metrics(trajectories, chosen)
        metrics["filter/stale"] = float(stale)
        metrics["time/rollout_s"] = rollouts.seconds
        metrics["time/wait_s"] = rollouts.wait_seconds
        metrics["time/exchange_s"] = rollouts.exchange_seconds
        metrics["time/execute_s"] = sum(t.info.exec_seconds for t in trajectories) / workers
        if not chosen.rows:
            logging.warning("step %d: no usable trajectories (all failed, stale, timed out or "
                            "zero-variance); no update", rollouts.step)
            return state, metrics
        batch = batching.pack(chosen.rows, chosen.advantages, self.batching_config(),
                              seq_count=chosen.seq_count)
        digest = hosts_lib.batch_digest(batch.micro_batches)
        # The token ids alone compare runs whose log-probs differ in the last bits (another mesh).
        logging.info("step %d: batch checksum %08x, token ids %08x", rollouts.step, digest,
                     hosts_lib.batch_digest(batch.micro_batches, ["input_ids"]))
        self.hosts.check_same(f"step {rollouts.step}'s batch", digest)
        start = time.perf_counter()
        state, learned = await asyncio.to_thread(policy.learner.train_step, state, batch)
        metrics.update({f"learn/{k}": v for k, v in learned.items()})
        metrics["time/learn_s"] = time.perf_counter() - start
        start = time.perf_counter()
        await self.push_weights(policy, state)
        metrics["time/sync_s"] = time.perf_counter() - start
        return state, metrics

    async def push_weights(self, policy: _Policy, state) -> None:
        """The rollout engine serves `state`'s params. Every process has its own embedded
        engine (fed a whole copy of the params); SGLang's servers are told by process 0, after
        all processes wrote the HF directory together, and nobody samples before that."""
        embedded = self.config.rollout.engine == "embedded"
        await weight_sync.push(
            policy.engine, policy.module,
            self.hosts.host_copy(state.params) if embedded else state.params,
            version=str(int(state.step)), config=self.config.rollout, workdir=self.workdir,
            compute_dtype=self.config.model.compute_dtype,
            notify=embedded or self.hosts.writer)
        self.hosts.barrier(f"weights {int(state.step)} served")

    async def grpo(self, model_dir: pathlib.Path, sft_params, train: Sequence[Task],
                   validation: Sequence[Task], pool: Runner) -> dict[str, Any]:
        g = self.config.grpo
        loss = learner_lib.LossConfig.from_dict(_to_dict(g.loss))
        policy = self.build_policy(model_dir, _to_dict(g.optimizer), loss, with_engine=True)
        try:
            start_params = policy.params if sft_params is None else sft_params
            state = policy.learner.init_state(start_params, self.config.seed)
            tasks = {t.id: t for t in train}
            curriculum = curriculum_lib.Curriculum(sorted(tasks), self.config.seed)
            ckpt = checkpoint.Checkpointer(self.workdir / "checkpoints" / "grpo",
                                           keep_last=self.config.checkpoint.keep_last)
            with ckpt:
                restored = ckpt.restore_latest(checkpoint.abstract_like(state))
                history, first = [], 0
                if restored is not None:
                    # The checkpoint's step, not the optimizer's: a step with nothing to learn
                    # made no update, and must not be replayed.
                    state, first = restored.state, restored.step
                    curriculum.restore(restored.cursor["curriculum"])
                    history = restored.cursor.get("eval_history", [])
                    self.report.update(restored.cursor.get("start_evaluation", {}))
                    logging.info("resuming GRPO at step %d", first)
                await self.push_weights(policy, state)
                if "before" not in self.report and restored is None:
                    self.report["start"] = "SFT" if sft_params is not None else "base"
                    self.report["before"] = await self.evaluate(
                        self.report["start"].lower(), validation,
                        self.engine_policy_for_seed(policy), policy.chat, pool)
                prefetch, prefetch_cursor = None, None

                def start_rollout(k: int):
                    """Draws step k's tasks now (so the cursor is known) and starts its episodes."""
                    before = curriculum.cursor()
                    task_ids = curriculum.next(g.tasks_per_step)
                    task = asyncio.create_task(self.rollout(k, task_ids, policy, tasks, pool))
                    return task, before

                for step in range(first, g.steps):
                    if prefetch is None:
                        prefetch, _ = start_rollout(step)
                    rollouts = await prefetch
                    prefetch, prefetch_cursor = None, None
                    if g.overlap and step + 1 < g.steps:  # step k+1's rollouts run while k learns
                        prefetch, prefetch_cursor = start_rollout(step + 1)
                    state, metrics = await self.learn(rollouts, state, policy, pool.workers)
                    if self.config.eval.every and (step + 1) % self.config.eval.every == 0:
                        summary = await self.evaluate(f"step{step + 1}", validation,
                                                      self.engine_policy_for_seed(policy),
                                                      policy.chat, pool)
                        metrics.update(_eval_metrics(summary))
                        history.append({"step": step + 1, **_eval_metrics(summary)})
                    self.writer.write(step, metrics)
                    self.say(f"GRPO step {step + 1}/{g.steps}: reward "
                             f"{metrics['train/reward_mean']:.3f}, valid "
                             f"{metrics['train/valid_rate']:.0%}, medal "
                             f"{metrics['train/medal_rate']:.0%} ({_step_note(metrics)})")
                    if (step + 1) % self.config.checkpoint.every == 0 or step + 1 == g.steps:
                        # With a prefetch in flight, a resumed run must redraw its tasks.
                        cursor = prefetch_cursor or curriculum.cursor()
                        ckpt.save(step + 1, state, config=_to_dict(self.config), cursor={
                            "curriculum": cursor, "eval_history": history,
                            "start_evaluation": {key: self.report[key] for key in
                                                 ("start", "before") if key in self.report}})
                ckpt.wait()
                self.report["after"] = await self.evaluate(
                    "grpo", validation, self.engine_policy_for_seed(policy), policy.chat, pool)
                self.report["eval_history"] = history
                export = self.workdir / "hf_export"
                weight_sync.export(policy.module, state.params, export, model_dir)
                self.report["hf_export"] = str(export)
                self.say(f"export: {export} (an HF Qwen3 directory)")
        finally:
            await factory.close_engine(policy.engine)
        return self.report

    # ---- the whole job ----------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        box = self.config.sandbox
        with sandbox_setup.runner_for(box) as pool:
            libraries = sandbox_setup.check_sandbox(pool)
            self.agent_config = dataclasses.replace(self.agent_config, libraries=libraries)
            self.say(f"sandbox: {pool.isolation.name.lower()} isolation, {box.workers} workers "
                     f"({_where(box)}), programs import {', '.join(libraries)}")
            train, validation = self.tasks()
            model_dir = self.base_model_dir(train)
            self.report["base_model"] = str(model_dir)
            if self.config.eval.reference_baseline:
                chat = ChatFormat.from_tokenizer(tokenizer_lib.load_tokenizer(str(model_dir)))
                self.report["reference"] = await self.evaluate(
                    "reference", validation,
                    lambda seed: reference.ReferencePolicy(chat, tier=strategies.TUNED), chat, pool)
            params = None  # sft.steps=0: GRPO starts from the base model
            if self.config.sft.steps:
                params = await self.warm_start(model_dir, train, pool)
            await self.grpo(model_dir, params, train, validation, pool)
        self.finish()
        return self.report

    def finish(self) -> None:
        if not self.hosts.writer:
            return
        plot_dir = self.workdir / "plots"
        plot_dir.mkdir(exist_ok=True)
        plots.plot_curves(self.workdir / "metrics", plot_dir / "reward.png",
                          ["train/reward_mean", "train/valid_rate", "train/medal_rate",
                           "eval/any_medal", "eval/valid_submission"])
        rows = {name: {k: v["mean"] for k, v in summary["overall"].items()}
                for name, summary in evaluations(self.report).items()}
        if rows:
            plots.plot_rates(rows, plot_dir / "medal_rates.png")
        self.report["plots"] = str(plot_dir)
        self.report["checkpoints"] = str(self.workdir / "checkpoints")
        self.report["metrics"] = str(self.workdir / "metrics" / "metrics.jsonl")
        (self.workdir / "report.json").write_text(json.dumps(self.report, indent=2))
        self.writer.close()


def _where(box) -> str:
    return "this host" if box.backend == "local" else f"Ray cluster {box.ray_address}"


def evaluations(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The report's evaluation summaries by policy: the reference agent, the policy GRPO started
    from (SFT, or the base model with sft.steps=0) and the GRPO policy."""
    names = (("reference", "reference"), (report.get("start", "SFT"), "before"),
             ("GRPO", "after"))
    return {name: report[key] for name, key in names if key in report}


@dataclasses.dataclass(frozen=True)
class _Rollouts:
    step: int
    groups: list[list[Trajectory]]
    seconds: float  # playing this process's share
    wait_seconds: float = 0.0  # for the other processes to finish theirs
    exchange_seconds: float = 0.0  # getting every process's trajectories


def _stale(trajectory: Trajectory, current_version: int, max_staleness: int) -> bool:
    """Sampled (in part) by weights more than `max_staleness` updates old."""
    versions = [int(v) for v in trajectory.info.weight_versions if v.lstrip("-").isdigit()]
    return bool(versions) and current_version - min(versions) > max_staleness


def _filter_config(g) -> episodes.FilterConfig:
    return episodes.FilterConfig(
        std_normalize=g.std_normalize, drop_zero_variance=g.drop_zero_variance,
        max_timeout_fraction=g.max_timeout_fraction, pruned_rows=g.pruned_rows)


def _rollout_metrics(trajectories: Sequence[Trajectory], chosen: episodes.Selection
                     ) -> dict[str, float]:
    ok = [t for t in trajectories if not t.failed] or list(trajectories)
    rewards = np.array([t.reward for t in ok])
    generated = sum(s.num_generated for t in trajectories for s in t.sequences)
    return {
        "train/reward_mean": float(rewards.mean()), "train/reward_std": float(rewards.std()),
        "train/valid_rate": float(np.mean([t.info.valid_submission for t in ok])),
        "train/medal_rate": float(np.mean([t.info.medal is not None for t in ok])),
        "train/format_rate": float(np.mean([t.info.format_rate for t in ok])),
        "train/turns": float(np.mean([t.info.turns for t in ok])),
        "train/exec_seconds": float(np.mean([t.info.exec_seconds for t in ok])),
        "train/generated_tokens": float(generated), "train/episodes": float(len(trajectories)),
        "filter/failed": float(chosen.failed), "filter/timed_out": float(chosen.timed_out),
        "filter/zero_variance_groups": float(chosen.zero_variance_groups),
        "filter/kept": float(chosen.kept_episodes)}


def _eval_metrics(summary: dict[str, Any]) -> dict[str, float]:
    return {f"eval/{k}": v["mean"] for k, v in summary["overall"].items()}


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def _terminations(trajectories: Sequence[Trajectory]) -> str:
    counts = collections.Counter(t.info.termination for t in trajectories)
    errors = [t.info.error for t in trajectories if t.info.error]
    first = f"; first error: {errors[0]}" if errors else ""
    return ", ".join(f"{k} {v}" for k, v in counts.most_common()) + first


def _step_note(metrics: dict[str, float]) -> str:
    return (f"rollouts {_duration(metrics['time/rollout_s'])}, learn "
            f"{_duration(metrics.get('time/learn_s', 0.0))}")


def _no_tasks_message(root: pathlib.Path, train: int, validation: int) -> str:
    message = (f"{root} holds {train} training and {validation} validation tasks; the run needs "
               "both")
    report = root / "report.json"
    if report.is_file():
        why = synth_pipeline.most_common_rejection(json.loads(report.read_text()))
        message += f" (see {report}{'; most common rejection: ' + why if why else ''})"
    else:
        message += " (tasks.dir must name a store with a train and a validation split)"
    return message


def train(config, workdir: str | pathlib.Path) -> dict[str, Any]:
    """The whole job, resumable from `workdir`; returns the report."""
    return asyncio.run(Trainer(checked_config(config), workdir).run())


def checked_config(config):
    """A copy of `config` with its paths made absolute, once `validate_config` accepts it."""
    validate_config(config)
    config = config.copy_and_resolve_references()
    config.tasks.dir = paths.absolute_or_empty(config.tasks.dir)
    config.model.hf_dir = paths.absolute_or_empty(config.model.hf_dir)
    config.sft.data = paths.absolute_or_empty(config.sft.data)
    config.rollout.weights_dir = paths.absolute_or_empty(config.rollout.weights_dir)
    config.sandbox.interpreter = paths.absolute_or_empty(config.sandbox.interpreter)
    config.tasks.synth.sandbox.interpreter = paths.absolute_or_empty(
        config.tasks.synth.sandbox.interpreter)
    return config


def validate_config(config) -> None:
    """Fails fast, before any work or any file written, on values the run could only reject
    much later; ConfigError names the key."""
    try:
        _validate(config)
    except ConfigError:
        raise
    except (ValueError, TypeError, KeyError) as e:  # the config dataclasses' own checks
        raise ConfigError(f"config: {console.one_line(e)}") from None


def tiers_for_task(tiers: Sequence[str], per_task: int, index: int) -> list[str]:
    """The `per_task` tiers (0 = all) the reference agent plays on the index-th training task:
    consecutive tasks take consecutive tiers, so over the tasks each tier is played as often."""
    if not per_task:
        return list(tiers)
    return [tiers[(index * per_task + k) % len(tiers)] for k in range(per_task)]


def _validate_sft(s) -> None:
    if s.steps < 0:
        raise ConfigError(f"sft.steps must be >= 0 (0: GRPO from the base model), got {s.steps}")
    if s.steps and not (s.tiers or s.data):
        raise ConfigError("sft.steps > 0 needs data: sft.tiers (reference-agent episodes) "
                          "and/or sft.data (a directory launch.collect wrote)")
    if not 0 <= s.tiers_per_task <= len(s.tiers):
        raise ConfigError(f"sft.tiers_per_task must be in [0, {len(s.tiers)}] (0 = every tier of "
                          f"sft.tiers), got {s.tiers_per_task}")
    for tier in s.tiers:
        strategies.check_tier(tier)
        if s.shared_programs and tier in strategies.LIBRARY_TIERS:
            raise ConfigError(f"sft.tiers: {tier!r} has no shared program (sft.shared_programs)")
    if s.data and not (paths.absolute(s.data) / sft_data.FILE).is_file():
        raise ConfigError(f"sft.data {s.data!r}: no {sft_data.FILE} there (python -m "
                          "launch.collect writes it)")


def _validate(config) -> None:
    if config.agent.reward_scheme not in rewards.scheme_names():
        raise ConfigError(f"agent.reward_scheme {config.agent.reward_scheme!r} unknown; known: "
                          f"{rewards.scheme_names()}")
    if config.rollout.engine not in ("embedded", "sglang"):
        raise ConfigError(f"rollout.engine must be 'embedded' or 'sglang', got "
                          f"{config.rollout.engine!r}")
    learner_lib.LossConfig.from_dict(_to_dict(config.grpo.loss))
    _filter_config(config.grpo)
    if config.grpo.overlap and config.grpo.loss.tis_cap is None:
        raise ConfigError("grpo.overlap samples each step with weights one update old: set "
                          "grpo.loss.tis_cap (e.g. 2.0) so the loss corrects for it")
    if config.grpo.pruned_rows == "episode" and config.grpo.loss.kl_coef:
        raise ConfigError("grpo.pruned_rows='episode' weights rows through their advantages, "
                          "which the KL term does not read: use kl_coef=0 or another "
                          "pruned_rows")
    optim.OptimizerConfig.from_dict(_to_dict(config.grpo.optimizer))
    optim.OptimizerConfig.from_dict(_to_dict(config.sft.optimizer))
    batching.BatchingConfig(**_to_dict(config.batching))
    if config.grpo.loss.temperature != config.rollout.temperature:
        raise ConfigError(f"grpo.loss.temperature ({config.grpo.loss.temperature}) must equal "
                          f"rollout.temperature ({config.rollout.temperature}): the learner must "
                          "score tokens under the distribution they were sampled from")
    if config.grpo.group_size < 2:
        raise ConfigError("grpo.group_size must be >= 2: advantages compare a group's members")
    if max(config.batching.bucket_lengths) < config.agent.context_tokens:
        raise ConfigError(f"the largest batching bucket ({max(config.batching.bucket_lengths)})"
                          f" must hold agent.context_tokens ({config.agent.context_tokens})")
    sandbox_setup.check_section(config.sandbox)
    for key in ("sft.batch_size", "grpo.tasks_per_step", "eval.seeds",
                "rollout.concurrency", "checkpoint.every"):
        section, name = key.split(".")
        if config[section][name] < 1:
            raise ConfigError(f"{key} must be >= 1, got {config[section][name]!r}")
    _validate_sft(config.sft)
    if config.tasks.dir:
        if not paths.absolute(config.tasks.dir).is_dir():
            raise ConfigError(f"tasks.dir {config.tasks.dir!r}: no such directory")
    else:
        if config.tasks.num_tasks < 2:
            raise ConfigError(f"tasks.num_tasks must be >= 2 (a train and a validation split), "
                              f"got {config.tasks.num_tasks}")
        try:
            synth_pipeline.validate_config(_to_dict(config.tasks.synth))
        except ConfigError as e:
            raise ConfigError(f"tasks.synth.{e}") from None
    if config.model.hf_dir and not (paths.absolute(config.model.hf_dir) / "config.json").is_file():
        raise ConfigError(f"model.hf_dir {config.model.hf_dir!r}: no config.json there; name an "
                          "HF Qwen3 directory")
