"""The Ray sandbox backend's cost per execution against the local pool, measured side by side.

    python benchmarks/sandbox_ray.py [--repeats 30] [--fit-repeats 10] [--throughput-runs 16]
                                     [--address HOST:PORT]

Baseline: `Pool` (bwrap on this host). Against it, `RayPool` on a local Ray cluster started here
(a head without CPUs and one worker node of 2 CPUs: real raylet, actors and object store, so the
workspace travels as bytes as it would between machines), or on the cluster at --address.
Runs alternate local/Ray so that load from other users of the machine hits both alike.
1. `print(1)`: median wall time per execution, and the time Ray adds.
2. The same with 1, 16 and 64 MiB in the workspace (it travels both ways per execution).
3. A program importing pandas and scikit-learn and fitting two models on 200 rows (a typical
   agent step): median wall time and the ratio Ray / local.
4. Throughput of that program with 2 executions at once (Pool of 2 workers vs RayPool of 2).
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time

from sandbox_runner import Episode, Limits, Pool, Sandbox
from sandbox_runner.ray_pool import RayPool
import run_facts
from sandbox_overhead import FIT, write_fit_task

LIMITS = Limits(wall_s=120, memory_bytes=2048 << 20, max_processes=256,
                workspace_bytes=512 << 20)


def _timed(episode: Episode, code: str) -> float:
    start = time.perf_counter()
    result = episode.run_code(code)
    if result.exit_code != 0:
        raise RuntimeError(f"run failed: {result.stderr_tail[-500:]}")
    return time.perf_counter() - start


def _alternating(episodes: dict[str, Episode], code: str, repeats: int) -> dict[str, list]:
    times = {name: [] for name in episodes}
    for _ in range(repeats):
        for name, episode in episodes.items():
            times[name].append(_timed(episode, code))
    return times


def _throughput(pool, episodes: list[Episode], code: str) -> float:
    async def play():
        await asyncio.gather(*(_run_async(pool, e, code) for e in episodes))
    start = time.perf_counter()
    asyncio.run(play())
    return len(episodes) / (time.perf_counter() - start)


async def _run_async(pool, episode: Episode, code: str) -> None:
    result = await pool.arun(episode.request(code=code))
    if result.exit_code != 0:
        raise RuntimeError(f"run failed: {result.stderr_tail[-500:]}")


def _fill(episode: Episode, mib: int) -> None:
    for name in os.listdir(episode.workspace):
        if name.startswith("ballast"):
            os.remove(episode.workspace / name)
    for i in range(mib):
        (episode.workspace / f"ballast{i}.bin").write_bytes(os.urandom(1 << 20))


def main() -> None:
    print(run_facts.header())
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--fit-repeats", type=int, default=10)
    p.add_argument("--throughput-runs", type=int, default=16)
    p.add_argument("--address", default="", help="a running cluster; default: start one here")
    args = p.parse_args()

    cluster = None
    address = args.address
    if not address:
        from ray.cluster_utils import Cluster
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
        cluster.add_node(num_cpus=2)
        cluster.wait_for_nodes()
        address = cluster.address
    load_before = os.getloadavg()[0]
    sandbox = Sandbox("bwrap", min_isolation="bwrap")
    report = {}
    med = statistics.median
    try:
        with tempfile.TemporaryDirectory() as root, Pool(sandbox, workers=2) as pool, \
                RayPool(address, workers=2) as ray_pool:
            public = os.path.join(root, "public")
            os.mkdir(public)
            write_fit_task(public)
            runners = {"local": pool, "ray": ray_pool}
            episodes = {name: Episode(public, runner, LIMITS, root=root)
                        for name, runner in runners.items()}
            _alternating(episodes, "print(1)", 3)  # warm: imports, public/ shipped once
            times = _alternating(episodes, "print(1)", args.repeats)
            report["print1_ms"] = {n: round(1000 * med(t), 1) for n, t in times.items()}
            report["print1_ray_added_ms"] = round(1000 * (med(times["ray"])
                                                          - med(times["local"])), 1)
            for mib in (1, 16, 64):
                for episode in episodes.values():
                    _fill(episode, mib)
                times = _alternating(episodes, "print(1)", max(5, args.repeats // 3))
                report[f"print1_ms_with_{mib}mib_workspace"] = {
                    n: round(1000 * med(t), 1) for n, t in times.items()}
            for episode in episodes.values():
                _fill(episode, 0)
            fit = FIT.format(public=public)
            times = _alternating(episodes, fit, args.fit_repeats)
            report["fit_s"] = {n: round(med(t), 3) for n, t in times.items()}
            report["fit_ratio_ray_over_local"] = round(med(times["ray"]) / med(times["local"]), 3)
            for episode in episodes.values():
                episode.close()
            for name, runner in runners.items():
                batch = [Episode(public, runner, LIMITS, root=root)
                         for _ in range(args.throughput_runs)]
                report[f"fit_throughput_per_s_{name}_2_workers"] = round(
                    _throughput(runner, batch, fit), 2)
                for episode in batch:
                    episode.close()
            report["nodes"] = len({n["node"] for n in ray_pool.nodes})
    finally:
        if cluster is not None:
            cluster.shutdown()
    report["load_average_1m_before_after"] = [round(load_before, 2),
                                              round(os.getloadavg()[0], 2)]
    report["python"] = sys.version.split()[0]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
