"""The whole RL job on a tiny recipe: tasks -> tiny base model -> SFT -> GRPO -> eval -> export,
then the same command resumes from its workdir instead of starting over."""

import asyncio
import collections
import dataclasses
import json
import pathlib
import runpy
import signal
import subprocess
import sys
import time

import pytest
from benchmarks import local_cluster
from benchmarks.local_cluster import http_json
from conftest import write_tabular_task

from sandmle_jax.errors import ConfigError, SetupError
from sandmle_jax.eval import cli
from sandmle_jax.monitoring.metrics_writer import read_metrics
from sandmle_jax.rl import collect, trainer, weight_sync

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _store(root):
    ids = [f"toy-{i}" for i in range(3)]
    for i, task_id in enumerate(ids):
        write_tabular_task(root / "tasks" / task_id, seed=i, task_id=task_id)
    manifest = {"tasks": [{"task_id": t, "path": f"tasks/{t}"} for t in ids],
                "train": ids[:2], "validation": ids[2:]}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def _config(store, **overrides):
    c = runpy.run_path(str(ROOT / "configs" / "tiny_cpu.py"))["get_config"]("smoke")
    c.tasks.dir = str(store)
    c.model.tiny.vocab_size = 700
    c.model.tiny.num_layers = 1
    c.agent.max_turns = 2
    c.sft.steps = 2
    c.sft.tiers = ("linear",)
    c.sft.optimizer.total_steps = 2
    c.sft.optimizer.warmup_steps = 1
    c.grpo.steps = 1
    c.grpo.tasks_per_step = 1
    c.grpo.group_size = 2
    c.grpo.drop_zero_variance = False  # an untrained policy's rewards are all equal
    c.rollout.num_slots = 4
    c.checkpoint.every = 1
    for key, value in overrides.items():
        node = c
        *path, leaf = key.split(".")
        for part in path:
            node = node[part]
        node[leaf] = value
    return c


class _VariedRewards(trainer.Trainer):
    """Pays 1, 0, 1, 0 ... within each rollout group. The untrained policy's own rewards are all
    equal, so without this the GRPO step has nothing to learn from, and a step that updates
    nothing would pass unnoticed."""

    async def rollout(self, *args, **kwargs):
        rollouts = await super().rollout(*args, **kwargs)
        groups = [[dataclasses.replace(t, reward=float(i % 2 == 0)) for i, t in enumerate(g)]
                  for g in rollouts.groups]
        return dataclasses.replace(rollouts, groups=groups)


def test_tiny_job_end_to_end_and_resume(tmp_path):
    store = _store(tmp_path / "store")
    workdir = tmp_path / "run"
    config = trainer.checked_config(_config(store, **{"grpo.drop_zero_variance": True}))
    report = asyncio.run(_VariedRewards(config, workdir).run())
    assert report["reference"]["overall"]["valid_submission"]["mean"] == 1.0
    assert "before" in report and "after" in report
    export = pathlib.Path(report["hf_export"])
    assert (export / "config.json").is_file() and (export / "tokenizer.json").is_file()
    rows = list(read_metrics(workdir / "metrics"))
    assert [r["step"] for r in rows if "train/reward_mean" in r] == [0]
    step = next(r for r in rows if "train/reward_mean" in r)
    assert step["train/episodes"] == 2 and step["filter/kept"] == 2
    assert step["filter/zero_variance_groups"] == 0
    assert step["learn/grad_norm"] > 0  # the forced reward variance reached the gradient ...
    sft = tmp_path / "sft_export"  # ... and moved the weights away from the SFT policy's
    weight_sync.export_checkpoint(str(workdir / "checkpoints" / "sft"), str(sft))
    assert (sft / "model.safetensors").read_bytes() != (export / "model.safetensors").read_bytes()
    assert any("sft/loss" in r for r in rows)
    assert (workdir / "plots" / "reward.png").is_file()
    assert json.loads((workdir / "report.json").read_text())["hf_export"] == str(export)
    # launch.export_hf's `orbax` format rebuilds the same weights from the run's checkpoint.
    again = tmp_path / "from_checkpoint"
    weight_sync.export_checkpoint(str(workdir / "checkpoints" / "grpo"), str(again))
    assert ((again / "model.safetensors").read_bytes()
            == (export / "model.safetensors").read_bytes())

    # The same command with more steps resumes at step 1: SFT is not redone, step 0 not replayed;
    # this time step 2's rollouts overlap step 1's update (one step off-policy).
    trainer.train(_config(store, **{"grpo.steps": 3, "grpo.overlap": True}), workdir)
    rows = list(read_metrics(workdir / "metrics"))
    assert [r["step"] for r in rows if "train/reward_mean" in r] == [0, 1, 2]
    assert all(r["filter/stale"] == 0 for r in rows if "filter/stale" in r)
    assert sum("sft/loss" in r for r in rows) == 2


class _NothingToLearn(trainer.Trainer):
    """Every episode earns the same reward, so no GRPO step updates anything; counts rollouts."""

    played = 0

    async def rollout(self, *args, **kwargs):
        _NothingToLearn.played += 1
        rollouts = await super().rollout(*args, **kwargs)
        groups = [[dataclasses.replace(t, reward=0.0) for t in g] for g in rollouts.groups]
        return dataclasses.replace(rollouts, groups=groups)


def test_a_resumed_run_replays_no_step_that_had_nothing_to_learn(tmp_path):
    """The optimizer's step count stays 0 through steps without an update; resuming from it
    replayed them (found running the README's two-process job twice)."""
    store = _store(tmp_path / "store")
    config = trainer.checked_config(_config(store, **{
        "grpo.drop_zero_variance": True, "sft.steps": 0, "eval.reference_baseline": False}))
    first = asyncio.run(_NothingToLearn(config, tmp_path / "run").run())
    assert _NothingToLearn.played == 1 and first["start"] == "base"
    again = asyncio.run(_NothingToLearn(config, tmp_path / "run").run())
    assert _NothingToLearn.played == 1  # nothing replayed
    assert again["before"] == first["before"] and again["start"] == "base"


@pytest.mark.slow
def test_sigkill_mid_run_then_resume(tmp_path):
    """Killing the trainer with SIGKILL and rerunning the command finishes the run."""
    store = _store(tmp_path / "store")
    workdir = tmp_path / "run"
    args = [sys.executable, "-m", "launch.train", "--config=configs/tiny_cpu.py:smoke",
            f"--workdir={workdir}", f"--config.tasks.dir={store}", "--config.grpo.steps=3",
            "--config.grpo.tasks_per_step=1", "--config.grpo.group_size=2",
            "--config.grpo.drop_zero_variance=False", "--config.checkpoint.every=1",
            "--config.agent.max_turns=2"]
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 1800
    grpo = workdir / "checkpoints" / "grpo"
    while time.time() < deadline and process.poll() is None:
        if grpo.is_dir() and any(p.name.isdigit() for p in grpo.iterdir()):
            break
        time.sleep(2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stderr[-3000:]
    steps = [r["step"] for r in read_metrics(workdir / "metrics") if "train/reward_mean" in r]
    assert sorted(set(steps)) == [0, 1, 2]


def test_a_store_without_validation_tasks_stops_naming_its_report(tmp_path):
    store = _store(tmp_path / "store")
    manifest = json.loads((store / "manifest.json").read_text())
    manifest["train"], manifest["validation"] = manifest["train"] + manifest["validation"], []
    (store / "manifest.json").write_text(json.dumps(manifest))
    (store / "report.json").write_text(json.dumps({"candidates": 9, "rejections": {
        f"t{i}": ["thresholds_monotone: the baseline ladder did not yield four scores",
                  "no_leaky_column: no thresholds"] for i in range(6)}}))
    start = time.monotonic()
    with pytest.raises(SetupError) as raised:
        trainer.train(_config(store), tmp_path / "run")
    message = str(raised.value)
    assert "3 training and 0 validation tasks" in message
    assert str(store / "report.json") in message
    assert "6 of 9 candidates: thresholds_monotone: the baseline ladder" in message
    assert time.monotonic() - start < 60


@pytest.mark.parametrize("overrides, message", [
    ({"rollout.temperature": 0.7}, "must equal rollout.temperature"),
    ({"grpo.group_size": 1}, "group_size must be >= 2"),
    ({"agent.reward_scheme": "dense_magic"}, "reward_scheme 'dense_magic' unknown"),
    ({"rollout.engine": "vllm"}, "must be 'embedded' or 'sglang'"),
    ({"sft.tiers": ()}, "sft.steps > 0 needs data"),
    ({"sft.tiers": ("best",)}, "unknown tier 'best'"),
    ({"sft.data": "nowhere"}, "sft.data 'nowhere': no sft.jsonl there"),
    ({"sft.steps": -1}, "sft.steps must be >= 0"),
    ({"sft.shared_programs": True, "sft.tiers": ("lightgbm",)}, "'lightgbm' has no shared"),
    ({"sft.tiers_per_task": 2}, r"tiers_per_task must be in \[0, 1\]"),
    ({"grpo.overlap": True, "grpo.loss.tis_cap": None}, "set grpo.loss.tis_cap"),
    ({"grpo.pruned_rows": "first"}, "pruned_rows 'first' unknown"),
])
def test_config_errors_fail_before_any_work(tmp_path, overrides, message):
    (tmp_path / "store").mkdir()
    with pytest.raises(ConfigError, match=message):
        trainer.validate_config(_config(tmp_path / "store", **overrides))
    trainer.validate_config(_config(tmp_path / "store"))  # the recipe itself is consistent


def test_tiers_per_task_rotate_so_each_tier_is_played_equally_often():
    tiers = ("constant", "linear", "forest", "boosting")
    assert trainer.tiers_for_task(tiers, 0, 5) == list(tiers)
    one = [trainer.tiers_for_task(tiers, 1, i) for i in range(8)]
    assert one == [[t] for t in tiers * 2]
    three = [t for i in range(4) for t in trainer.tiers_for_task(tiers, 3, i)]
    assert collections.Counter(three) == {t: 3 for t in tiers}
    assert all(len(set(trainer.tiers_for_task(tiers, 3, i))) == 3 for i in range(4))


def test_the_families_recipe_is_consistent(tmp_path):
    """configs/tiny_cpu_families.py: shared programs over the tabular families' seeds."""
    (tmp_path / "store").mkdir()
    c = runpy.run_path(str(ROOT / "configs" / "tiny_cpu_families.py"))["get_config"]("smoke")
    c.tasks.dir = str(tmp_path / "store")
    trainer.validate_config(c)
    assert c.sft.shared_programs and set(c.tasks.synth.seeds.split(",")) == {
        "tabular_binary_auc", "tabular_binary_logloss", "tabular_binary_mcc",
        "tabular_binary_accuracy", "tabular_multiclass_accuracy", "tabular_regression_rmse",
        "tabular_regression_mae", "tabular_regression_r2"}


def _no_reference_episodes(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a reference-agent episode was played")
    monkeypatch.setattr(trainer.reference, "ReferencePolicy", refuse)


def test_sft_steps_zero_starts_grpo_from_the_base_model(tmp_path, monkeypatch, capsys):
    """RL from the base model: no reference episode is played, no SFT checkpoint written."""
    _no_reference_episodes(monkeypatch)
    store = _store(tmp_path / "store")
    workdir = tmp_path / "run"
    config = trainer.checked_config(_config(store, **{"sft.steps": 0,
                                                      "eval.reference_baseline": False}))
    report = asyncio.run(_VariedRewards(config, workdir).run())
    assert "reference" not in report and "before" in report and "after" in report
    assert not (workdir / "checkpoints" / "sft").exists()
    rows = list(read_metrics(workdir / "metrics"))
    assert not any("sft/loss" in r for r in rows)
    assert next(r for r in rows if "train/reward_mean" in r)["learn/grad_norm"] > 0
    assert "evaluation, base policy" in capsys.readouterr().out
    assert list(trainer.evaluations(report)) == ["base", "GRPO"]


def test_sft_on_collected_data_alone(tmp_path, monkeypatch):
    """Seed-SFT: a teacher's trajectories (collected here from the reference agent, in the
    Qwen3 tokenizer) train the tiny student (its own tokenizer) with no episode of its own."""
    store = _store(tmp_path / "store")
    request = cli.EvalRequest(tasks=store, out=tmp_path / "data", split="train",
                              policy="reference", tier="linear")
    asyncio.run(collect.collect(_config(store), request, "valid"))
    _no_reference_episodes(monkeypatch)
    config = trainer.checked_config(_config(store, **{
        "sft.tiers": (), "sft.data": str(tmp_path / "data"), "grpo.steps": 0,
        "eval.reference_baseline": False}))
    asyncio.run(trainer.Trainer(config, tmp_path / "run").run())
    rows = list(read_metrics(tmp_path / "run" / "metrics"))
    assert [r["step"] for r in rows if "sft/loss" in r] == [0, 1]


class _Recorded(trainer.Trainer):
    """Keeps each GRPO step's rollouts: the token ids of every sequence, per episode."""

    steps: dict[int, list] = {}

    async def rollout(self, step, *args, **kwargs):
        rollouts = await super().rollout(step, *args, **kwargs)
        self.steps[step] = [[s.ids for s in t.sequences] for g in rollouts.groups for t in g]
        return rollouts


@pytest.mark.slow
def test_grpo_against_served_workers_behind_the_real_router(tmp_path):
    """The trainer with rollout.engine=sglang: two `launch.serve` workers behind PyPI's
    sglang-router, weight sync to both every step; its first step's rollouts equal the embedded
    engine's token for token. Not greedy (the learner scores at the rollout temperature, which
    must be > 0) but seeded: every sampled token drawn alike, a stronger check than greedy."""
    store = _store(tmp_path / "store")
    steps = {"grpo.steps": 2}
    embedded = _Recorded(trainer.checked_config(_config(store, **steps)), tmp_path / "a")
    _Recorded.steps = {}
    asyncio.run(embedded.run())
    reference = dict(_Recorded.steps)
    base = tmp_path / "a" / "base_model"
    with local_cluster.router_over_workers(
            base, serve_args=("--num_slots=4", "--max_len=4096")) as (router, workers):
        served = _config(store, **steps, **{
            "rollout.engine": "sglang", "rollout.sglang_urls": (router,),
            "rollout.sglang_worker_urls": tuple(workers), "model.hf_dir": str(base),
            "rollout.weights_dir": str(tmp_path / "weights")})
        _Recorded.steps = {}
        asyncio.run(_Recorded(trainer.checked_config(served), tmp_path / "b").run())
        versions = [http_json(url, "/model_info")[1]["weight_version"] for url in workers]
    assert _Recorded.steps[0] == reference[0]  # same SFT weights and seeds: the same rollouts
    assert versions[0] == versions[1] == "2"  # every step's sync reached both workers
