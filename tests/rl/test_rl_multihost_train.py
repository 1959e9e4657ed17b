"""The RL job as two processes (`launch.train` with --dist_* flags, gloo CPU collectives, one CPU
device each, one mesh over both) against the same job as one process.

Rewards are made to vary within each group (the smoke recipe's barely-trained policy earns 0
everywhere, which would leave GRPO nothing to update); everything else is launch.train as a user
runs it: process 0 generates the tasks, both play half of every batch of episodes and exchange.
"""

import dataclasses
import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from sandmle_jax.models import safetensors_io
from sandmle_jax.monitoring.metrics_writer import read_metrics

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMOKE = ["--config=configs/tiny_cpu.py:smoke", "--config.mesh.enabled=True",
         "--config.agent.max_turns=2", "--config.sft.steps=2", "--config.grpo.steps=2",
         "--config.grpo.drop_zero_variance=False", "--config.checkpoint.every=1"]
ENV = {"XLA_FLAGS": "--xla_force_host_platform_device_count=1", "JAX_PLATFORMS": "cpu"}


def _run(workdir: pathlib.Path, extra: list[str], processes: int) -> None:
    from benchmarks.local_cluster import free_port

    env = dict(os.environ, **ENV)
    dist = [f"--dist_coordinator_address=127.0.0.1:{free_port()}",
            f"--dist_num_processes={processes}"] if processes > 1 else []
    procs = [subprocess.Popen(
        [sys.executable, __file__, f"--workdir={workdir}", *SMOKE, *extra, *dist,
         *([f"--dist_process_id={k}"] if processes > 1 else [])],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for k in range(processes)]
    outputs = [p.communicate(timeout=1800)[0] for p in procs]
    for p, output in zip(procs, outputs):
        assert p.returncode == 0, output[-4000:]


def _log_lines(workdir: pathlib.Path, pattern: str) -> dict[str, list[str]]:
    """Matches of `pattern` in each process's log file (absl names them by pid)."""
    return {log.name: re.findall(pattern, log.read_text())
            for log in sorted((workdir / "logs").glob("*.log.INFO.*"))}


def _weights(model_dir: pathlib.Path) -> dict[str, np.ndarray]:
    file = safetensors_io.SafetensorsFile(str(model_dir / "model.safetensors"))
    return {key: np.asarray(file.tensor(key), np.float64) for key in file.keys()}


@pytest.mark.slow
def test_two_processes_train_as_one(tmp_path):
    two, one = tmp_path / "two", tmp_path / "one"
    _run(two, [], processes=2)
    _run(one, [f"--config.tasks.dir={two / 'tasks'}"], processes=1)

    # Each process played half of each step's 8 episodes (and its share of the rest).
    played = _log_lines(two, r"step (\d) rollouts: process (\d) played (\d+) of (\d+)")
    assert len(played) == 2
    assert sorted(m for matches in played.values() for m in matches) == [
        ("0", "0", "4", "8"), ("0", "1", "4", "8"), ("1", "0", "4", "8"), ("1", "1", "4", "8")]
    # Both processes packed the same batches; the one-process run sampled the same tokens (its
    # log-probs differ in the last bits: its SFT summed gradients over one device, not two).
    pattern = r"step (\d): batch checksum (\w+), token ids (\w+)"
    sums = list(_log_lines(two, pattern).values())
    assert sums[0] == sums[1] and len(sums[0]) == 2
    alone = list(_log_lines(one, pattern).values())[0]
    assert [(step, ids) for step, _, ids in sums[0]] == [(step, ids) for step, _, ids in alone]
    # Metrics are written once (by process 0), and the updates had something to learn from.
    rows = [r for r in read_metrics(two / "metrics") if "train/reward_mean" in r]
    assert [r["step"] for r in rows] == [0, 1]
    assert all(r["learn/grad_norm"] > 0 for r in rows)
    assert json.loads((two / "report.json").read_text())["after"]["overall"]
    # The final policies agree up to the order of floating-point sums across devices, which
    # Adam's normalised steps carry into the weights: within 1% of how far training moved them.
    ours, reference = _weights(two / "hf_export"), _weights(one / "hf_export")
    base = _weights(two / "base_model")
    assert ours.keys() == reference.keys()
    moved = max(np.abs(reference[k] - base[k]).max() for k in reference)
    differ = max(np.abs(ours[k] - reference[k]).max() for k in reference)
    assert moved > 1e-4 and differ < 1e-2 * moved, (moved, differ)


def _main() -> None:
    """`launch.train` with rewards 1, 0, 1, 0 ... within each rollout group."""
    from absl import flags

    from launch import train as launch_train
    from sandmle_jax.monitoring import console
    from sandmle_jax.rl import trainer

    played = trainer.Trainer.rollout

    async def varied(self, *args, **kwargs):
        rollouts = await played(self, *args, **kwargs)
        groups = [[dataclasses.replace(t, reward=float(i % 2 == 0)) for i, t in enumerate(g)]
                  for g in rollouts.groups]
        return dataclasses.replace(rollouts, groups=groups)

    trainer.Trainer.rollout = varied
    flags.mark_flag_as_required("config")
    console.run_launcher(launch_train.main)


if __name__ == "__main__":
    _main()
