"""Pool: concurrency, bounded queue, cancellation (sync and asyncio), and no leaks."""

import asyncio
import glob
import os
import tempfile
import threading
import time

import pytest

from sandbox_runner.contracts import ExecRequest, Limits
from sandbox_runner.pool import Pool, PoolClosed, PoolFull
from sandbox_runner.sandbox import Sandbox

LIMITS = Limits(wall_s=30, memory_bytes=512 << 20, max_processes=64, workspace_bytes=64 << 20)


@pytest.fixture(scope="module")
def sandbox():
    return Sandbox()


def _req(workdir, code):
    return ExecRequest(workdir=str(workdir), code=code, limits=LIMITS)


def test_runs_concurrently_on_all_workers(sandbox, tmp_path):
    with Pool(sandbox, workers=2) as pool:
        code = "import time\nstart = time.time()\ntime.sleep(1)\nprint(start)"
        start = time.monotonic()
        jobs = [pool.submit(_req(tmp_path, code)) for _ in range(2)]
        starts = [float(j.result().stdout_tail) for j in jobs]
        assert abs(starts[0] - starts[1]) < 0.8 and time.monotonic() - start < 1.9


def test_full_queue_is_backpressure_not_buffering(sandbox, tmp_path):
    with Pool(sandbox, workers=1, queue_size=1) as pool:
        running = pool.submit(_req(tmp_path, "import time; time.sleep(30)"))
        time.sleep(0.3)
        queued = pool.submit(_req(tmp_path, "print('never')"))
        with pytest.raises(PoolFull, match="retry later"):
            pool.submit(_req(tmp_path, "print(1)"))
        assert queued.cancel()  # still queued: cancelled before it starts
        running.cancel()
        result = running.result(timeout=10)
        assert result.killed_by == "cancelled" and result.wall_s < 5
        assert pool.snapshot()["rejected"] == 1
    with pytest.raises(PoolClosed):
        pool.submit(_req(tmp_path, "print(1)"))


def test_async_cancellation_kills_the_process_tree(sandbox, tmp_path):
    code = ("import subprocess, time\nsubprocess.Popen(['sh', '-c', 'while :; do echo x >> beat; "
            "sleep 0.02; done'])\ntime.sleep(60)\n")

    async def main(pool):
        runs = [pool.arun(_req(tmp_path, f"print({i})")) for i in range(4)]
        results = await asyncio.gather(*runs)
        assert [r.stdout_tail for r in results] == ["0\n", "1\n", "2\n", "3\n"]
        task = asyncio.ensure_future(pool.arun(_req(tmp_path, code)))
        await asyncio.sleep(1.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with Pool(sandbox, workers=2) as pool:
        asyncio.run(main(pool))
        deadline = time.monotonic() + 5
        while pool.snapshot()["running"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pool.snapshot()["cancelled"] == 1
    size = (tmp_path / "beat").stat().st_size
    time.sleep(0.3)
    assert size > 0 and (tmp_path / "beat").stat().st_size == size


def test_a_bad_request_fails_its_future_not_the_worker(sandbox, tmp_path):
    with Pool(sandbox, workers=1) as pool:
        bad = pool.submit(ExecRequest(workdir=str(tmp_path / "nope"), code="print(1)"))
        with pytest.raises(ValueError, match="existing directory"):
            bad.result()
        assert pool.run(_req(tmp_path, "print(2)")).stdout_tail == "2\n"


def _host_state(sandbox):
    me = os.getpid()
    children = 0
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children += int(fields[1]) == me
    tag = f"sandbox_runner-{me}-"
    groups = [p for c in sandbox.setup.controllers.values() for p in c.base.glob(tag + "*")]
    return {"fds": len(os.listdir("/proc/self/fd")), "children": children,
            "temp_dirs": len(os.listdir(tempfile.gettempdir())),
            "cgroups": len(groups), "threads": threading.active_count()}


def _leak_check(sandbox, tmp_path, executions):
    codes = ["print(1)", "import os; os._exit(3)", "import sys; sys.stderr.write('e' * 100000)",
             "import os\nif os.fork() == 0:\n    import time; time.sleep(30)\n"]
    with Pool(sandbox, workers=2, queue_size=8) as pool:
        pool.run(_req(tmp_path, "print(0)"))
        before = _host_state(sandbox)
        jobs = [pool.submit(_req(tmp_path, codes[i % len(codes)]), block=True)
                for i in range(executions)]
        results = [j.result() for j in jobs]
        after = _host_state(sandbox)
    assert [r.exit_code for r in results[:4]] == [0, 3, 0, 0]
    assert all(r.exit_code in (0, 3) for r in results)
    assert after == before


@pytest.fixture
def private_tempdir(tmp_path, monkeypatch):
    """Code files go to a temp dir of this test alone, so that others' runs do not count."""
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    return tmp_path / "tmp"


def test_no_leaked_processes_fds_temp_dirs_or_cgroups_after_200_runs(sandbox, tmp_path,
                                                                     private_tempdir):
    _leak_check(sandbox, tmp_path, 200)
    assert os.listdir(private_tempdir) == []


@pytest.mark.slow
@pytest.mark.timeout(3 * 3600)  # about 15 minutes on 2 idle cores, far longer when they are busy
def test_no_leaks_after_10000_runs(sandbox, tmp_path, private_tempdir):
    _leak_check(sandbox, tmp_path, 10_000)
    assert os.listdir(private_tempdir) == []
