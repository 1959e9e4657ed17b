"""One adversarial program per guarantee of the bwrap backend (see sandbox_runner's docstring).

Destructive programs (fork bomb, memory, disk, kill-all) run only after a probe in the same
test has shown that the isolation and the limit containing them are active; otherwise the test
fails WITHOUT running the attack. Limits are kept small (64 processes, 512 MiB, 256 MiB disk).

Where bwrap cannot start these tests skip, except under CI=true: CI is where the guarantees are
proved, and a skip there would let an unproved sandbox land.
"""

import dataclasses
import os
import resource
import socket
import subprocess
import threading
import time

import pytest
from conftest import require_bwrap

from sandbox_runner import backends
from sandbox_runner.contracts import Limits
from sandbox_runner.executor import disk_usage
from sandbox_runner.pool import Pool
from sandbox_runner.ray_pool import RayPool
from sandbox_runner.sandbox import Sandbox
from sandbox_runner.workspace import Episode, UnsafeWorkspaceFile, read_workspace_file

SAFE = Limits(wall_s=20, cpu_s=20, memory_bytes=512 << 20, max_processes=64,
              file_size_bytes=128 << 20, workspace_bytes=256 << 20, output_bytes=4096)
SECRET = "label-7f3a-HIDDEN"


@pytest.fixture(scope="module")
def sandbox():
    require_bwrap()
    return Sandbox(backend="bwrap", min_isolation="bwrap")


@pytest.fixture(scope="module", params=["local", "ray"])
def pool(request, sandbox):
    """Each attack runs through this host's pool, then through sandbox actors on a local Ray
    cluster (the workspace travelling to the actor and back)."""
    if request.param == "local":
        with Pool(sandbox, workers=2) as pool:
            yield pool
        return
    with RayPool(request.getfixturevalue("ray_cluster").address, workers=2) as pool:
        yield pool


@pytest.fixture
def task(tmp_path):
    public, private = tmp_path / "task" / "public", tmp_path / "task" / "private"
    public.mkdir(parents=True)
    private.mkdir()
    (public / "train.csv").write_text("id,y\n1,0\n")
    (private / "answers.csv").write_text(f"id,y\n1,{SECRET}\n")
    return tmp_path / "task"


@pytest.fixture
def episode(pool, task, tmp_path):
    (tmp_path / "runs").mkdir()
    with Episode(task / "public", pool, SAFE, root=str(tmp_path / "runs")) as ep:
        yield ep
        still = ep.run_code("print('still fine')")  # the host and the pool keep working
        assert still.exit_code == 0 and still.stdout_tail == "still fine\n"


def _on_ray(pool) -> bool:
    return isinstance(pool, RayPool)


def _enforced(sandbox, pool, limit: str) -> str:
    """How `limit` is enforced where the pool runs programs ('' if anywhere it is not)."""
    if not _on_ray(pool):
        return sandbox.enforcement()[limit]
    found = {node["enforcement"][limit] for node in pool.nodes}
    return "" if "" in found or len(found) > 1 else found.pop()


def _leftover_groups(sandbox, pool) -> list[str]:
    """cgroups left by the processes running the executions (this one, or the Ray actors)."""
    pids = [n["pid"] for n in pool.nodes] if _on_ray(pool) else [os.getpid()]
    return [str(p) for c in sandbox.setup.controllers.values() for pid in pids
            for p in c.base.glob(f"sandbox_runner-{pid}-*")]


def test_reads_outside_public_and_workspace_fail(episode, task, sandbox, monkeypatch):
    monkeypatch.setenv("SANDBOX_RUNNER_HOST_SECRET", SECRET)
    host_home = os.path.expanduser("~")
    code = f"""
import glob, os
tries = [{str(task / 'private' / 'answers.csv')!r},
         {str(task / 'public')!r} + '/../private/answers.csv',
         '/proc/{os.getpid()}/environ', '/proc/{os.getppid()}/environ', '/etc/shadow']
for path in tries:
    try:
        print('LEAKED', path, open(path).read())
    except OSError as e:
        print('denied', path, type(e).__name__)
for path in ['/proc/{os.getpid()}/cwd', '/proc/{os.getpid()}/root']:
    print('link', path, os.path.exists(path))
for path in glob.glob('/proc/*/environ'):
    print('environ', path, open(path, 'rb').read())
print('home', sorted(os.listdir({host_home!r})) if os.path.isdir({host_home!r}) else None)
"""
    result = episode.run_code(code, limits=Limits(**{**SAFE.to_dict(), "output_bytes": 1 << 20}))
    assert result.exit_code == 0, result.stderr_tail
    assert SECRET not in result.stdout_tail and "LEAKED" not in result.stdout_tail
    assert result.stdout_tail.count("denied") == 5
    assert "link /proc/" in result.stdout_tail and " True" not in result.stdout_tail
    home_line = [l for l in result.stdout_tail.splitlines() if l.startswith("home")][0]
    roots = sandbox.setup.interpreter_roots
    visible = eval(home_line[5:]) or []
    allowed = {os.path.relpath(r, host_home).split("/")[0] for r in roots
               if r.startswith(host_home + "/")}
    assert set(visible) <= allowed  # only the path down to the interpreter, nothing else of home


def test_no_network_but_loopback(episode):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(3)
    accepted = []
    threading.Thread(target=lambda: _accept(server, accepted), daemon=True).start()
    port = server.getsockname()[1]
    code = f"""
import socket
print('ifaces', [n for _, n in socket.if_nameindex()])
for host in ['127.0.0.1', '1.1.1.1', '8.8.8.8']:
    s = socket.socket(); s.settimeout(2)
    try:
        s.connect((host, {port} if host == '127.0.0.1' else 53)); print('CONNECTED', host)
    except OSError as e:
        print('refused', host, e.errno)
"""
    result = episode.run_code(code)
    time.sleep(0.2)
    server.close()
    assert "ifaces ['lo']" in result.stdout_tail
    assert "CONNECTED" not in result.stdout_tail and result.stdout_tail.count("refused") == 3
    assert accepted == []


def _accept(server, accepted):
    try:
        accepted.append(server.accept())
    except OSError:
        pass


def test_fork_bomb_is_contained_by_the_pids_limit(episode, sandbox, pool):
    if not _enforced(sandbox, pool, "max_processes"):
        pytest.fail("no process limit is enforceable here; the fork bomb was NOT run")
    probe = episode.run_code("import threading, time\n"
                             "ts = [threading.Thread(target=time.sleep, args=(2,)) "
                             "for _ in range(40)]\nfor t in ts: t.start()\n",
                             limits=Limits(**{**SAFE.to_dict(), "max_processes": 16}))
    if "max_processes" not in probe.limits_hit or probe.exit_code == 0:
        pytest.fail(f"the process limit did not hold in the probe ({probe}); fork bomb NOT run")
    bomb = ("import os\nwhile True:\n    try:\n        os.fork()\n"
            "    except OSError:\n        pass\n")
    result = episode.run_code(bomb, limits=Limits(**{**SAFE.to_dict(), "wall_s": 3}))
    assert result.timed_out and "max_processes" in result.limits_hit
    assert _leftover_groups(sandbox, pool) == []


def test_memory_bomb_is_killed_by_the_memory_limit(episode, sandbox, pool):
    if not _enforced(sandbox, pool, "memory_bytes"):
        pytest.fail("no memory limit is enforceable here; the memory bomb was NOT run")
    touch = ("chunks = []\nfor _ in range({n}):\n    b = bytearray(16 << 20)\n"
             "    b[::4096] = b'x' * len(b[::4096])\n    chunks.append(b)\nprint('survived')\n")
    small = Limits(**{**SAFE.to_dict(), "memory_bytes": 128 << 20})
    probe = episode.run_code(touch.format(n=16), limits=small)
    if probe.killed_by != "memory_bytes":
        pytest.fail(f"the memory limit did not hold in the probe ({probe}); memory bomb NOT run")
    at_once = episode.run_code("b = bytearray(50 << 30)\nprint('ALLOCATED')")
    assert at_once.exit_code != 0 and "ALLOCATED" not in at_once.stdout_tail
    assert at_once.killed_by == "memory_bytes"
    gradual = episode.run_code(touch.format(n=50 * 64))  # 50 GiB in 16 MiB touched chunks
    assert gradual.killed_by == "memory_bytes" and "survived" not in gradual.stdout_tail
    if _enforced(sandbox, pool, "memory_bytes") == "memory cgroup":  # the whole tree
        assert gradual.peak_rss <= SAFE.memory_bytes + (8 << 20)


def test_disk_bomb_is_stopped_by_the_workspace_quota(pool, task, tmp_path):
    writer = ("import itertools\nblock = b'x' * (1 << 20)\n"
              "for i in itertools.count():\n    with open(f'junk{{i}}', 'wb') as f:\n"
              "        for _ in range(64): f.write(block)\n    if (i + 1) * 64 >= {mib}: break\n"
              "print('WROTE ALL')\n")
    (tmp_path / "runs").mkdir()
    small = Limits(**{**SAFE.to_dict(), "workspace_bytes": 32 << 20})
    with Episode(task / "public", pool, small, root=str(tmp_path / "runs")) as probe_ep:
        probe = probe_ep.run_code(writer.format(mib=128))
        if "workspace_bytes" not in probe.limits_hit or "WROTE ALL" in probe.stdout_tail:
            pytest.fail(f"the workspace quota did not hold in the probe ({probe}); "
                        "10 GB NOT written")
    with Episode(task / "public", pool, SAFE, root=str(tmp_path / "runs")) as ep:
        result = ep.run_code(writer.format(mib=10 * 1024))
        used = disk_usage(str(ep.workspace))
        slack = 0 if ep.quota == "tmpfs" else SAFE.workspace_bytes  # polling may overshoot
        assert result.killed_by == "workspace_bytes" and "WROTE ALL" not in result.stdout_tail
        assert used <= SAFE.workspace_bytes + slack
        for scratch in ("/tmp", "/dev/shm"):  # memory-backed scratch space is capped too
            code = writer.format(mib=10 * 1024).replace("open(f'junk", f"open(f'{scratch}/junk")
            tmp = ep.run_code(code)
            assert tmp.exit_code != 0 and "No space left" in tmp.stderr_tail


def test_a_daemonised_child_dies_with_the_step(episode):
    code = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        if os.fork() == 0:
            os.execv('/bin/sleep', ['sleep', '987.654'])
        while True:
            with open('heartbeat', 'a') as f:
                f.write('x')
            time.sleep(0.02)
    os._exit(0)
time.sleep(0.3)
"""
    result = episode.run_code(code)
    assert result.exit_code == 0 and result.wall_s < 5
    beat = episode.workspace / "heartbeat"
    size = beat.stat().st_size
    time.sleep(0.4)
    assert size > 0 and beat.stat().st_size == size
    assert _processes_with("987.654") == []  # wherever the step ran, nothing of it is left


def _processes_with(argument: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if argument.encode() in f.read().split(b"\0"):
                    found.append(int(pid))
        except OSError:
            continue
    return found


def test_kill_parent_and_kill_all_reach_nothing_outside(episode, sandbox):
    sentinel = subprocess.Popen(["sleep", "60"])
    try:
        probe = episode.run_code(f"import os\nprint(os.getpid(), "
                                 f"len([p for p in os.listdir('/proc') "
                                 f"if p.isdigit()]), os.path.exists('/proc/{sentinel.pid}'))")
        pid, count, sees_sentinel = probe.stdout_tail.split()
        if int(pid) > 3 or int(count) > 3 or sees_sentinel != "False":
            pytest.fail(f"no private pid namespace ({probe.stdout_tail!r}); kill-all NOT run")
        code = f"""
import os, signal, sys
if os.getpid() > 3:
    sys.exit('not in a pid namespace: refusing to kill -1')
for pid in (os.getppid(), 1, {sentinel.pid}, {os.getpid()}):
    try:
        os.kill(pid, signal.SIGKILL); print('sent', pid)
    except OSError as e:
        print('failed', pid, e.errno)
os.kill(-1, signal.SIGKILL)
"""
        result = episode.run_code(code)
        assert sentinel.poll() is None  # the host process survived
        assert f"failed {sentinel.pid}" in result.stdout_tail or sentinel.pid <= 3
    finally:
        sentinel.kill()
        sentinel.wait()


def test_ptrace_is_denied(episode):
    code = f"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
for pid in (1, os.getppid(), {os.getpid()}):
    print(libc.ptrace(16, pid, 0, 0), ctypes.get_errno())
print(libc.ptrace(0, 0, 0, 0), ctypes.get_errno())  # PTRACE_TRACEME
"""
    result = episode.run_code(code)
    assert result.stdout_tail.split("\n")[:4] == ["-1 1"] * 4  # EPERM from the seccomp filter


def test_public_is_read_only(episode, task):
    before = (task / "public" / "train.csv").read_bytes()
    public = str(task / "public")
    code = f"""
import os
def attempt(name, fn):
    try:
        fn(); print('DID', name)
    except OSError as e:
        print('blocked', name, e.errno)
attempt('append', lambda: open('{public}/train.csv', 'a').write('2,1\\n'))
attempt('create', lambda: open('{public}/new.csv', 'w'))
attempt('remove', lambda: os.remove('{public}/train.csv'))
attempt('rename', lambda: os.rename('{public}/train.csv', '{public}/t.csv'))
attempt('chmod', lambda: os.chmod('{public}/train.csv', 0o777))
attempt('usr', lambda: open('/usr/evil', 'w'))
"""
    result = episode.run_code(code)
    assert "DID" not in result.stdout_tail and result.stdout_tail.count("blocked") == 6
    assert (task / "public" / "train.csv").read_bytes() == before
    assert sorted(os.listdir(task / "public")) == ["train.csv"]


def test_the_grader_never_follows_planted_links(episode, task):
    private = str(task / "private" / "answers.csv")
    code = f"""
import os
os.symlink({private!r}, 'submission.csv')
os.symlink({str(task)!r}, 'out')
os.mkfifo('fifo.csv')
try:
    os.link({private!r}, 'hard.csv')
except OSError as e:
    print('no hard link', e.errno)
"""
    result = episode.run_code(code)
    assert result.exit_code == 0 and "no hard link" in result.stdout_tail
    for name in ("submission.csv", "out/private/answers.csv", "../task/private/answers.csv",
                 private):
        with pytest.raises(UnsafeWorkspaceFile):
            read_workspace_file(episode.workspace, name)
    gone = ["hard.csv"]
    if _on_ray(episode.runner):
        gone.append("fifo.csv")  # a workspace from a Ray actor brings no special files back
    else:
        with pytest.raises(UnsafeWorkspaceFile):
            read_workspace_file(episode.workspace, "fifo.csv")
    for name in gone:
        with pytest.raises(FileNotFoundError):
            read_workspace_file(episode.workspace, name)


def test_printing_a_gigabyte_keeps_only_head_and_tail(episode):
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code = ("import sys\nb = b'y' * (1 << 20)\n"
            "for _ in range(1024): sys.stdout.buffer.write(b)\nprint('END')\n")
    result = episode.run_code(code, limits=Limits(**{**SAFE.to_dict(), "wall_s": 60}))
    assert result.exit_code == 0 and result.stdout_bytes == (1 << 30) + 4
    assert result.stdout_tail.endswith("END\n")
    assert len(result.stdout_tail) < SAFE.output_bytes + 100
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 100 << 10  # KiB


def test_no_capabilities_inside(episode):
    code = """
fields = dict(line.split(':', 1) for line in open('/proc/self/status') if line.startswith('Cap'))
print(' '.join(f"{k}={v.strip()}" for k, v in sorted(fields.items())))
"""
    result = episode.run_code(code)
    assert result.exit_code == 0, result.stderr_tail
    fields = dict(item.split("=") for item in result.stdout_tail.split())
    for name in ("CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd"):
        assert int(fields[name], 16) == 0, (name, fields)


def test_a_nested_user_namespace_cannot_be_created(episode):
    code = """
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWUSER = 0x10000000
if libc.unshare(CLONE_NEWUSER) == 0:
    print('CREATED a user namespace')
else:
    print('refused', errno.errorcode[ctypes.get_errno()])
"""
    result = episode.run_code(code)
    assert result.exit_code == 0, result.stderr_tail
    assert result.stdout_tail.startswith("refused"), result.stdout_tail


def test_bwrap_that_cannot_start_fails_under_ci_and_skips_elsewhere(monkeypatch):
    broken = dataclasses.replace(backends.REGISTRY["bwrap"], probe=lambda: "no bwrap binary")
    monkeypatch.setitem(backends.REGISTRY, "bwrap", broken)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must prove"):
        require_bwrap()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="no bwrap binary"):
        require_bwrap()


def test_programs_cannot_raise_their_own_limits(episode):
    code = """
import resource
INF = resource.RLIM_INFINITY
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
print('nofile', soft, hard)
for which in (resource.RLIMIT_NOFILE, resource.RLIMIT_CPU, resource.RLIMIT_FSIZE):
    try:
        resource.setrlimit(which, (INF, INF)); print('RAISED', which)
    except (ValueError, OSError) as e:
        print('refused', which)
try:
    resource.prlimit(1, resource.RLIMIT_CPU, (INF, INF)); print('RAISED init')
except (ValueError, OSError):
    print('refused init')
"""
    result = episode.run_code(code)
    assert f"nofile {SAFE.open_files} {SAFE.open_files}" in result.stdout_tail
    assert "RAISED" not in result.stdout_tail and result.stdout_tail.count("refused") == 4
