"""Sandboxes on a local Ray cluster (`ray_cluster`: real raylets, actors and object store; its
nodes share this machine, so the workspace still travels as bytes as between machines).

Failures are real ones: an actor killed with `ray.kill`, a node's raylet removed mid-execution,
a cluster address nobody answers at, actors that cannot start.
"""

import asyncio
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import ray
from conftest import require_bwrap

from sandbox_runner import Episode, Limits
from sandbox_runner.ray_pool import ClusterUnavailable, ExecutionLost, RayPool

LIMITS = Limits(wall_s=10, memory_bytes=512 << 20, max_processes=64, workspace_bytes=64 << 20)
# Appends one line per run, then takes long enough for a failure to strike mid-run.
COUNTED = "open('runs.txt', 'a').write('run\\n')\nimport time\ntime.sleep({s})\nprint('done')\n"


@pytest.fixture(scope="module")
def pool(ray_cluster):
    require_bwrap()
    with RayPool(ray_cluster.address, workers=2) as pool:
        yield pool


@pytest.fixture
def public(tmp_path):
    public = tmp_path / "task" / "public"
    public.mkdir(parents=True)
    (public / "train.csv").write_text("id,y\n1,0\n2,1\n")
    return public


def _episode(public, pool, tmp_path):
    (tmp_path / "runs").mkdir(exist_ok=True)
    episode = Episode(public, pool, LIMITS, root=str(tmp_path / "runs"))
    os.symlink(episode.public_dir, episode.workspace / "data")  # as tools.new_episode does
    return episode


def _runs(episode) -> int:
    return (episode.workspace / "runs.txt").read_text().count("run")


def test_steps_see_the_callers_paths_and_their_workspace_persists(pool, public, tmp_path):
    with _episode(public, pool, tmp_path) as episode:
        first = episode.run_code("import os\nprint(os.getcwd())\n"
                                 "print(open('data/train.csv').read(), end='')\n"
                                 "os.makedirs('models')\nopen('models/m.txt', 'w').write('fit')")
        assert first.exit_code == 0, first.stderr_tail
        assert first.stdout_tail == f"{episode.workspace}\nid,y\n1,0\n2,1\n"
        assert first.isolation == "bwrap"
        assert (episode.workspace / "models" / "m.txt").read_text() == "fit"  # came back
        second = episode.run_code("import os\nprint(open('models/m.txt').read())\n"
                                  "os.remove('models/m.txt')\nopen('submission.csv', 'w')")
        assert second.stdout_tail == "fit\n"
        assert sorted(os.listdir(episode.workspace)) == ["data", "models", "submission.csv"]
        assert os.listdir(episode.workspace / "models") == []


def test_concurrent_episodes_spread_over_the_nodes(pool, public, tmp_path):
    assert len({node["node"] for node in pool.nodes}) == 2  # SPREAD: one actor per node
    before = list(pool.per_actor)

    async def play():
        with _episode(public, pool, tmp_path) as a, _episode(public, pool, tmp_path) as b:
            results = await asyncio.gather(*(pool.arun(e.request(code=COUNTED.format(s=1)))
                                             for e in (a, b)))
            return results, [_runs(a), _runs(b)]
    results, runs = asyncio.run(play())
    assert [r.stdout_tail for r in results] == ["done\n", "done\n"] and runs == [1, 1]
    assert [after - was for after, was in zip(pool.per_actor, before)] == [1, 1]


def test_a_public_dir_travels_once_per_content(pool, public, tmp_path):
    with _episode(public, pool, tmp_path) as episode:
        shipped = pool.stats["public_shipped"]
        for _ in range(3):
            assert episode.run_code("print(open('data/train.csv').read())").exit_code == 0
        assert pool.stats["public_shipped"] - shipped == 1
        (public / "train.csv").write_text("id,y\n1,1\n")  # new content travels again
        changed = episode.run_code("print(open('data/train.csv').read(), end='')")
        assert changed.stdout_tail == "id,y\n1,1\n"
        assert pool.stats["public_shipped"] - shipped == 2


def test_a_killed_actor_restarts_and_its_execution_runs_again_from_the_same_workspace(
        pool, public, tmp_path):
    with _episode(public, pool, tmp_path) as episode:
        def kill_the_busy_actor():
            time.sleep(1.5)
            busy = [a for a, n in zip(pool.actors, pool._inflight) if n]
            ray.kill(busy[0], no_restart=False)  # as a crash: Ray restarts it

        killer = threading.Thread(target=kill_the_busy_actor)
        killer.start()
        result = episode.run_code(COUNTED.format(s=4))
        killer.join()
        assert result.exit_code == 0 and result.stdout_tail == "done\n"
        assert _runs(episode) == 1  # the killed run's append died with its copy


def test_a_node_lost_mid_execution_has_its_execution_retried_on_another(
        ray_cluster, public, tmp_path):
    """Two 4-second executions, one per actor; 1.5 s in, the first actor's node is lost: its
    raylet removed and the actor's process killed, as when a machine dies (a worker whose raylet
    is gone can still finish its call). A spare node gives Ray room to restart the actor."""
    require_bwrap()
    with RayPool(ray_cluster.address, workers=2) as pool:
        victim_id, victim_pid = pool.nodes[0]["node"], pool.nodes[0]["pid"]
        victim = [n for n in ray_cluster.worker_nodes if n.node_id == victim_id][0]
        ray_cluster.add_node(num_cpus=2)  # it stays: the cluster keeps two worker nodes
        ray_cluster.wait_for_nodes()

        async def play():
            with _episode(public, pool, tmp_path) as a, _episode(public, pool, tmp_path) as b:
                runs = [asyncio.ensure_future(pool.arun(e.request(code=COUNTED.format(s=4))))
                        for e in (a, b)]
                await asyncio.sleep(1.5)
                os.kill(victim_pid, signal.SIGKILL)
                ray_cluster.remove_node(victim, allow_graceful=False)
                return await asyncio.gather(*runs), [_runs(a), _runs(b)]
        results, runs = asyncio.run(play())
        assert [r.stdout_tail for r in results] == ["done\n", "done\n"] and runs == [1, 1]
        assert pool.stats["completed"] == 2 and pool.stats["failed"] == 0


def test_an_execution_whose_actor_comes_back_too_late_is_given_up(pool, public, tmp_path):
    """Ray waits forever for room to restart a lost actor, so each execution has a deadline of
    its own: its wall limit plus `restart_margin_s`. Here the margin is shorter than a restart
    and rerun take: the execution fails with ExecutionLost instead of waiting, the slot is free
    again, and the workspace is as it was sent."""
    limits = dataclasses.replace(LIMITS, wall_s=5)
    margin, pool.restart_margin_s = pool.restart_margin_s, 0.5
    try:
        with _episode(public, pool, tmp_path) as episode:
            def kill_the_busy_actor():
                time.sleep(1.5)
                busy = [a for a, n in zip(pool.actors, pool._inflight) if n]
                ray.kill(busy[0], no_restart=False)

            killer = threading.Thread(target=kill_the_busy_actor)
            killer.start()
            start = time.monotonic()
            with pytest.raises(ExecutionLost, match="short of CPUs"):
                pool.run(episode.request(code=COUNTED.format(s=4), limits=limits))
            killer.join()
            assert time.monotonic() - start < 5.5 + 2
            assert not (episode.workspace / "runs.txt").exists()
            assert pool.run(episode.request(code="print('next')")).stdout_tail == "next\n"
    finally:
        pool.restart_margin_s = margin


def test_cancelling_an_execution_kills_its_program(ray_cluster, public, tmp_path):
    require_bwrap()
    with RayPool(ray_cluster.address, workers=1) as pool:
        async def cancel_then_run():
            with _episode(public, pool, tmp_path) as episode:
                task = asyncio.ensure_future(pool.arun(episode.request(
                    code="import time\ntime.sleep(120)",
                    limits=dataclasses.replace(LIMITS, wall_s=300))))
                await asyncio.sleep(2)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                start = time.monotonic()
                after = await pool.arun(episode.request(code="print('next')"))
                return after, time.monotonic() - start
        after, waited = asyncio.run(cancel_then_run())
    # One slot: had the sleeper lived on, the next execution would wait for it.
    assert after.stdout_tail == "next\n" and waited < 8


def test_more_workers_than_the_cluster_has_cpus_is_refused_at_once(ray_cluster):
    start = time.monotonic()
    with pytest.raises(ClusterUnavailable, match="has 4 CPUs.*need 64"):
        RayPool(ray_cluster.address, workers=64)
    assert time.monotonic() - start < 20


def test_actors_that_cannot_start_fail_the_pool_in_one_line(ray_cluster):
    with pytest.raises(ClusterUnavailable, match="failed to start.*does-not-exist") as caught:
        RayPool(ray_cluster.address, workers=1, interpreter="/does-not-exist/python",
                ready_timeout_s=60)
    assert "\n" not in str(caught.value)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_cluster_is_one_line_within_seconds():
    """In a fresh process (this one has joined the test cluster)."""
    address = f"127.0.0.1:{_free_port()}"
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", f"from sandbox_runner.ray_pool import RayPool\n"
                           f"RayPool({address!r})"], capture_output=True, text=True, timeout=120)
    assert time.monotonic() - start < 30
    assert done.returncode != 0
    assert f"ClusterUnavailable: no Ray cluster answers at '{address}'" in done.stderr
