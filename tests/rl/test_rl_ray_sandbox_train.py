"""The smoke job with its sandboxes on a local two-node Ray cluster (`ray.cluster_utils.Cluster`:
real raylets and actors on this machine), as `launch.train` runs for a user.

Mid-run a sandbox actor is killed and later a whole node is removed: the job must finish with
every episode played once and none failed. With the cluster gone, the same command must stop
within a minute in one line.
"""

import json
import pathlib
import subprocess
import sys
import time

import pytest
import ray
from conftest import require_bwrap
from ray.cluster_utils import Cluster

from sandmle_jax.monitoring.metrics_writer import read_metrics

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMOKE = ["--config=configs/tiny_cpu.py:smoke", "--config.agent.max_turns=3",
         "--config.sft.steps=2", "--config.grpo.steps=2", "--config.sandbox.backend=ray"]


def _command(workdir: pathlib.Path, address: str) -> list[str]:
    return [sys.executable, "-m", "launch.train", f"--workdir={workdir}", *SMOKE,
            f"--config.sandbox.ray_address={address}"]


def _sandbox_actors() -> list:
    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
             if a["name"].startswith("sandbox-")]
    return [ray.get_actor(name, namespace="sandbox_runner") for name in names]


@pytest.mark.slow
def test_the_job_survives_a_killed_actor_and_a_lost_node_and_stops_without_a_cluster(tmp_path):
    require_bwrap()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    nodes = [cluster.add_node(num_cpus=2) for _ in range(2)]  # room for a moved actor
    cluster.wait_for_nodes()
    try:
        job = subprocess.Popen(_command(tmp_path / "run", cluster.address), cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ray.init(address=cluster.address, logging_level="warning")
        lines, struck = [], []
        for line in job.stdout:
            lines.append(line)
            if line.startswith("tasks:") and not struck:  # the reference evaluation follows
                time.sleep(5)
                ray.kill(_sandbox_actors()[0], no_restart=False)
                struck.append("actor")
            if line.startswith("GRPO step 1/2") and len(struck) == 1:
                time.sleep(3)  # step 2's episodes are running
                victim = _sandbox_actors()[0]
                node_id = ray.get(victim.where.remote())["node"]
                cluster.remove_node([n for n in nodes if n.node_id == node_id][0],
                                    allow_graceful=False)
                struck.append("node")
        assert job.wait(timeout=600) == 0, "".join(lines)[-4000:]
        assert struck == ["actor", "node"]
    finally:
        ray.shutdown()
        cluster.shutdown()

    output = "".join(lines)
    assert "(Ray cluster " in output and "bwrap isolation" in output
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    for name in ("reference", "before", "after"):  # every evaluation episode played, none failed
        summary = report[name]
        assert summary["failed_episodes"] == 0, (name, summary)
        assert summary["episodes"] == summary["tasks"] * summary["seeds"], (name, summary)
    rows = [r for r in read_metrics(tmp_path / "run" / "metrics") if "train/reward_mean" in r]
    assert [r["step"] for r in rows] == [0, 1]
    assert [(r["train/episodes"], r["filter/failed"]) for r in rows] == [(8, 0), (8, 0)]

    # The cluster is gone: the same command stops within a minute, in one line.
    start = time.monotonic()
    done = subprocess.run(_command(tmp_path / "again", cluster.address), cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert time.monotonic() - start < 60
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr[-2000:]
    assert "no Ray cluster answers" in done.stderr
