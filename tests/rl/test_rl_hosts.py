"""rl.hosts: which process plays which episodes, the trajectory exchange and the batch checksum.

The collective parts run for real: two local processes joined through jax.distributed (gloo CPU
collectives), each with its own share of made-up trajectories.
"""

import json
import os
import subprocess
import sys

from sandmle_jax.agent.trajectory import EpisodeInfo, TokenSequence, Trajectory
from sandmle_jax.rl import batching, hosts
from sandmle_jax.rl.episodes import Row

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _trajectory(i: int) -> Trajectory:
    """Job i's trajectory: varied sequences (a pruned episode has two), floats and optionals."""
    sequences = tuple(TokenSequence(ids=[i, i + 1, 7 * k], loss_mask=[0, 1, 1],
                                    logprobs=[0.0, -0.1 * i - 1e-9, -1 / 3])
                      for k in range(1 + i % 2))
    info = EpisodeInfo(task_id=f"t{i}", termination="answer" if i % 3 else "context_limit",
                       turns=i, format_rate=0.5, score=None if i % 4 == 0 else i / 7,
                       valid_submission=bool(i % 2), medal="bronze" if i == 2 else None,
                       weight_versions=(str(i), "7"), exec_seconds=0.1 * i)
    return Trajectory(sequences, reward=i / 3, info=info)


def test_shares_split_the_jobs_between_processes():
    shares = [hosts.Hosts(k, 3).share(8) for k in range(3)]
    assert shares == [[0, 3, 6], [1, 4, 7], [2, 5]]
    assert hosts.Hosts().share(4) == [0, 1, 2, 3] and hosts.Hosts().writer
    assert not hosts.Hosts(1, 2).writer


def test_a_trajectory_survives_the_json_round_trip():
    for i in range(5):
        original = _trajectory(i)
        assert Trajectory.from_dict(json.loads(json.dumps(original.to_dict()))) == original


def test_the_batch_digest_sees_every_array():
    rows = [Row((1, 2, 3, 4), (0, 1, 1, 1), (0.0, -1.0, -2.0, -0.5))]
    config = batching.BatchingConfig(bucket_lengths=(8,), rows=2)
    digest = hosts.batch_digest(batching.pack(rows, [1.0], config).micro_batches)
    assert digest == hosts.batch_digest(batching.pack(rows, [1.0], config).micro_batches)
    assert digest != hosts.batch_digest(batching.pack(rows, [0.5], config).micro_batches)
    other = [Row((1, 2, 3, 5), (0, 1, 1, 1), (0.0, -1.0, -2.0, -0.5))]
    assert digest != hosts.batch_digest(batching.pack(other, [1.0], config).micro_batches)


def _worker(coordinator: str, index: int, out: str) -> None:
    from sandmle_jax.parallel import distributed

    distributed.initialize(coordinator, num_processes=2, process_id=index)
    job = hosts.Hosts.of_this_job()
    mine = job.share(5)
    everyone = job.exchange(mine, [_trajectory(i) for i in mine], 5)
    assert everyone == [_trajectory(i) for i in range(5)], "exchange lost or reordered jobs"
    job.check_same("an equal batch", 1234)
    try:
        job.check_same("a batch that differs", 1000 + index)
        disagreement = None
    except RuntimeError as error:
        disagreement = str(error)
    with open(os.path.join(out, f"process{index}.json"), "w") as f:
        json.dump({"mine": mine, "disagreement": disagreement}, f)


def test_two_processes_exchange_in_job_order_and_catch_a_disagreement(tmp_path):
    from benchmarks.local_cluster import free_port

    coordinator = f"127.0.0.1:{free_port()}"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    procs = [subprocess.Popen([sys.executable, __file__, coordinator, str(k), str(tmp_path)],
                              env=env, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for k in (0, 1)]
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    for p, output in zip(procs, outputs):
        assert p.returncode == 0, output[-3000:]
    results = [json.loads((tmp_path / f"process{k}.json").read_text()) for k in (0, 1)]
    assert [r["mine"] for r in results] == [[0, 2, 4], [1, 3]]
    for r in results:
        assert "processes disagree on a batch that differs" in r["disagreement"]
        assert "000003e8" in r["disagreement"] and "000003e9" in r["disagreement"]


if __name__ == "__main__":
    _worker(sys.argv[1], int(sys.argv[2]), sys.argv[3])
