"""Runs one request under one backend and supervises it to the end.

The child starts behind a gate (a shell waiting for one line on stdin) so that its cgroups and
rlimits are in place before the program's first instruction; then the supervisor reads output,
watches the clock, the workspace and cancellation, and finally kills whatever is left of the
tree, so nothing outlives the call.
"""

import dataclasses
import math
import os
import resource
import selectors
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping

from sandbox_runner import seccomp
from sandbox_runner.backends import Backend, Plan
from sandbox_runner.capture import HeadTail
from sandbox_runner.cgroups import Controller, ExecGroup
from sandbox_runner.contracts import ExecRequest, ExecResult, Limits

GATE = 'read _ || exit 111; exec "$@" </dev/null'
KILL_GRACE_S = 1.0  # between SIGTERM and SIGKILL when the wall clock runs out
WORKSPACE_POLL_S = 0.1  # how often the workspace size is checked when no kernel quota holds it
PROCESS_LIMIT_SIGNS = ("can't start new thread", "BlockingIOError: [Errno 11]",
                       "fork: Resource temporarily unavailable")
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS", "LOKY_MAX_CPU_COUNT")


@dataclasses.dataclass(frozen=True)
class Setup:
    """Everything decided once at start-up: backend, cgroups, interpreter."""

    backend: Backend
    controllers: dict[str, Controller]
    interpreter: str
    interpreter_roots: tuple[str, ...]
    euid: int


def enforcement(setup: Setup) -> dict[str, str]:
    """For each limit, the mechanism that enforces it here ('' when nothing does)."""
    has = setup.controllers
    return {
        "wall_s": "timer + pid namespace" if setup.backend.level > 0 else "timer + process group",
        "cpu_s": "RLIMIT_CPU (per process)",
        "memory_bytes": "memory cgroup" if "memory" in has else "RLIMIT_AS (per process)",
        "max_processes": ("pids cgroup" if "pids" in has else
                          "RLIMIT_NPROC (over this user's tasks at start)" if setup.euid != 0
                          else ""),
        "file_size_bytes": "RLIMIT_FSIZE",
        "open_files": "RLIMIT_NOFILE",
        "workspace_bytes": "tmpfs quota where the workspace is one, else polling",
        "output_bytes": "head+tail capture",
        "cpus": "thread-count environment variables",
    }


def sandbox_env(setup: Setup, req: ExecRequest) -> dict[str, str]:
    threads = str(req.limits.cpus)
    env = {"PATH": f"{os.path.dirname(setup.interpreter)}:/usr/local/bin:/usr/bin:/bin",
           "HOME": req.workdir, "TMPDIR": "/tmp", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
           "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp/matplotlib",
           "XDG_CACHE_HOME": "/tmp/.cache"}
    env.update({name: threads for name in THREAD_VARS})
    env.update(dict(req.env))
    return env


def _check_request(req: ExecRequest) -> None:
    for path in (req.workdir, *req.readonly_mounts):  # ExecRequest refused relative paths
        if not os.path.isdir(path):
            raise ValueError(f"{path!r} is not an existing directory; workdir and "
                             "readonly_mounts must be such directories")


def _workspace_has_quota(workdir: str, limit: int) -> bool:
    if not os.path.ismount(workdir):
        return False
    st = os.statvfs(workdir)
    return st.f_blocks * st.f_frsize <= limit + (1 << 20)


def _workspace_full(workdir: str) -> bool:
    st = os.statvfs(workdir)
    return os.path.ismount(workdir) and st.f_bavail * st.f_frsize < (1 << 20)


def disk_usage(root: str) -> int:
    """Bytes allocated under `root`, symlinks not followed."""
    total, stack = 0, [root]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    st = entry.stat(follow_symlinks=False)
                    total += st.st_blocks * 512
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(entry.path)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
    return total


def user_task_count(uid: int) -> int:
    """Tasks (processes and threads) whose real uid is `uid`: what RLIMIT_NPROC counts."""
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as f:
                status = f.read()
            real_uid = int(status.split("\nUid:", 1)[1].split()[0])
            threads = int(status.split("\nThreads:", 1)[1].split()[0])
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
        count += threads if real_uid == uid else 0
    return count


def _apply_rlimits(pid: int, limits: Limits, setup: Setup) -> None:
    cpu = math.ceil(limits.cpu_s)
    wanted = {resource.RLIMIT_CPU: (cpu, cpu + 1), resource.RLIMIT_FSIZE: limits.file_size_bytes,
              resource.RLIMIT_NOFILE: limits.open_files, resource.RLIMIT_CORE: 0}
    if "memory" not in setup.controllers:
        wanted[resource.RLIMIT_AS] = limits.memory_bytes
    if "pids" not in setup.controllers and setup.euid != 0:
        # RLIMIT_NPROC counts every task of the user on the host, so the budget is added to
        # what the user already runs; root is exempt from it (hence pids cgroup or nothing).
        wanted[resource.RLIMIT_NPROC] = user_task_count(os.getuid()) + limits.max_processes
    for which, value in wanted.items():
        soft, hard = value if isinstance(value, tuple) else (value, value)
        resource.prlimit(pid, which, (soft, hard))


def execute(setup: Setup, req: ExecRequest, cancel: threading.Event | None = None,
            sources: Mapping[str, str] | None = None) -> ExecResult:
    """Run `req` to completion (or to a limit) and return what happened.

    `sources` maps some of `req`'s directories (workdir, readonly_mounts) to where they lie on
    this host, when that is elsewhere: the program still sees them at `req`'s paths (a request
    made on another node runs unchanged). Only a backend that mounts directories (bwrap) can.
    """
    sources = dict(sources or {})
    if sources and not setup.backend.places_mounts:
        raise ValueError(f"the {setup.backend.name} backend shows the host's own paths; "
                         f"running a request from another node needs bwrap")
    on_host = dataclasses.replace(
        req, workdir=sources.get(req.workdir, req.workdir),
        readonly_mounts=tuple(sources.get(p, p) for p in req.readonly_mounts))
    _check_request(on_host)
    code_dir = None
    try:
        argv = req.argv
        if req.code is not None:
            code_dir = tempfile.mkdtemp(prefix="sandbox_runner-code-")
            os.chmod(code_dir, 0o755)
            path = os.path.join(code_dir, "main.py")
            with open(path, "w") as f:
                f.write(req.code)
            argv = (setup.interpreter, path)
        env = sandbox_env(setup, req)
        program = seccomp.filter_program() if setup.backend.takes_seccomp else None
        seccomp_fd = _readable_fd(program) if program else None
        plan = Plan(argv=tuple(argv), workdir=req.workdir,
                    readonly_mounts=req.readonly_mounts + ((code_dir,) if code_dir else ()),
                    env=env, interpreter_roots=setup.interpreter_roots,
                    tmp_bytes=req.limits.workspace_bytes, seccomp_fd=seccomp_fd,
                    sources=sources)
        command = setup.backend.wrap(plan)
        host_env = {"PATH": "/usr/bin:/bin"} if setup.backend.sets_env_itself else env
        group = ExecGroup(setup.controllers, req.limits.memory_bytes, req.limits.max_processes)
        try:
            return _supervise(setup, on_host, command, host_env, group, cancel, seccomp_fd)
        finally:
            group.kill_all()
            group.remove()
    finally:
        if seccomp_fd is not None:
            os.close(seccomp_fd)
        if code_dir:
            shutil.rmtree(code_dir, ignore_errors=True)


def _readable_fd(data: bytes) -> int:
    """A pipe's read end already holding `data` (small: it must fit the pipe buffer)."""
    read, write = os.pipe()
    try:
        os.write(write, data)
    finally:
        os.close(write)
    return read


def _children(pid: int) -> list[int]:
    kids = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids += [int(k) for k in f.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return kids


def _program_processes(proc: subprocess.Popen, wrapped: bool) -> set[int]:
    """The program's processes, without the wrapper and its namespace init (which would tear
    the namespace down at once instead of letting the program handle SIGTERM)."""
    level = [proc.pid] if not wrapped else [k for c in _children(proc.pid) for k in _children(c)]
    found = set()
    while level:
        found.update(level)
        level = [k for pid in level for k in _children(pid)]
    return found


def _kill_tree(proc: subprocess.Popen, group: ExecGroup, sig: int, wrapped: bool) -> None:
    if sig != signal.SIGKILL:
        for pid in _program_processes(proc, wrapped):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    group.kill_all()


def _supervise(setup: Setup, req: ExecRequest, command: list[str], host_env: dict[str, str],
               group: ExecGroup, cancel: threading.Event | None,
               seccomp_fd: int | None) -> ExecResult:
    limits = req.limits
    start = time.monotonic()
    proc = subprocess.Popen(["/bin/sh", "-c", GATE, "sandbox-gate", *command],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, cwd=req.workdir, env=host_env,
                            pass_fds=() if seccomp_fd is None else (seccomp_fd,))
    pidfd = None
    try:
        try:
            group.attach(proc.pid)
            _apply_rlimits(proc.pid, limits, setup)
            proc.stdin.write(b"\n")
            proc.stdin.close()
        except BaseException:
            _kill_tree(proc, group, signal.SIGKILL, wrapped=False)
            raise
        pidfd = os.pidfd_open(proc.pid)
        stdout, stderr = HeadTail(limits.output_bytes), HeadTail(limits.output_bytes)
        outputs = {proc.stdout.fileno(): stdout, proc.stderr.fileno(): stderr}
        polling = not _workspace_has_quota(req.workdir, limits.workspace_bytes)
        status, usage, ended_by = _watch(proc, pidfd, outputs, group, req, polling, start, cancel,
                                         wrapped=setup.backend.level > 0)
        quota = f"polling every {WORKSPACE_POLL_S} s" if polling else "tmpfs quota"
    finally:
        if pidfd is not None:
            os.close(pidfd)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if not stream.closed:
                stream.close()
    wall = time.monotonic() - start
    return _result(setup, req, status, usage, ended_by, group, wall, stdout, stderr, quota)


def _watch(proc, pidfd, outputs, group, req, polling, start, cancel, wrapped):
    """Pump output until the main process ends or a limit or cancellation stops the tree."""
    limits = req.limits
    sel = selectors.DefaultSelector()
    for fd in outputs:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    sel.register(pidfd, selectors.EVENT_READ)
    deadline = start + limits.wall_s
    next_poll = start + WORKSPACE_POLL_S if polling else math.inf
    ended_by, kill_at, status = None, None, None
    try:
        while status is None:
            now = time.monotonic()
            wake = min(deadline, next_poll, kill_at or math.inf, now + 0.1)
            for key, _ in sel.select(max(0.0, wake - now)):
                if key.fd == pidfd:
                    _, status, usage = os.wait4(proc.pid, 0)
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    break
                _pump(key.fd, outputs[key.fd], sel)
            if status is not None:
                break
            now = time.monotonic()
            if ended_by is None:
                if now >= deadline:
                    ended_by = "wall_s"
                elif cancel is not None and cancel.is_set():
                    ended_by = "cancelled"
                elif polling and now >= next_poll:
                    next_poll = now + WORKSPACE_POLL_S
                    if disk_usage(req.workdir) > limits.workspace_bytes:
                        ended_by = "workspace_bytes"
                if ended_by is not None:
                    first = signal.SIGTERM if ended_by == "wall_s" else signal.SIGKILL
                    _kill_tree(proc, group, first, wrapped)
                    kill_at = now + (KILL_GRACE_S if ended_by == "wall_s" else 0.0)
            elif now >= kill_at:
                _kill_tree(proc, group, signal.SIGKILL, wrapped)
                kill_at = now + 0.5
        # The main process is gone: nothing in its tree may outlive it.
        _kill_tree(proc, group, signal.SIGKILL, wrapped)
        drain_end = time.monotonic() + 1.0
        while len(sel.get_map()) > 1 and time.monotonic() < drain_end:
            for key, _ in sel.select(0.05):
                if key.fd != pidfd:
                    _pump(key.fd, outputs[key.fd], sel)
    finally:
        sel.close()
    return status, usage, ended_by


def _pump(fd: int, sink: HeadTail, sel: selectors.BaseSelector) -> None:
    try:
        data = os.read(fd, 1 << 16)
    except BlockingIOError:
        return
    if data:
        sink.feed(data)
    else:
        sel.unregister(fd)


def _result(setup: Setup, req: ExecRequest, status: int, usage: resource.struct_rusage,
            ended_by: str | None, group: ExecGroup, wall: float, stdout: HeadTail,
            stderr: HeadTail, quota: str) -> ExecResult:
    """Name what ended the run; wrappers report a child's death by signal N as exit 128+N."""
    limits = req.limits
    code = os.waitstatus_to_exitcode(status)
    if setup.backend.level > 0 and code > 128:
        code = 128 - code
    cpu = group.cpu_seconds()
    cpu = usage.ru_utime + usage.ru_stime if cpu is None else cpu
    hits = [ended_by] if ended_by else []
    # An OOM kill in the group, or an allocation refused (RLIMIT_AS, or more than the host has).
    if group.hit("memory") or (code != 0 and "MemoryError" in stderr.text()[-4096:]):
        hits.append("memory_bytes")
    if code == -signal.SIGXCPU or (code == -signal.SIGKILL and cpu >= 0.9 * limits.cpu_s
                                   and not ended_by):
        hits.append("cpu_s")
    # Python ignores SIGXFSZ, so there the limit shows as EFBIG ("File too large").
    if code == -signal.SIGXFSZ or (code != 0 and "File too large" in stderr.text()[-4096:]):
        hits.append("file_size_bytes")
    # Without a pids cgroup, RLIMIT_NPROC shows only as a refused fork or thread.
    if group.hit("pids") or ("pids" not in setup.controllers and code != 0 and any(
            sign in stderr.text()[-4096:] for sign in PROCESS_LIMIT_SIGNS)):
        hits.append("max_processes")
    if "workspace_bytes" not in hits:
        if quota == "tmpfs quota":  # the kernel refused a write: the program saw ENOSPC
            over = code != 0 and _workspace_full(req.workdir)
        else:  # a fast writer can finish between two polls
            over = disk_usage(req.workdir) > limits.workspace_bytes
        if over:
            hits.append("workspace_bytes")
    if ended_by:
        killed_by = ended_by
    elif code != 0 and hits:
        killed_by = hits[0]
    elif code < 0:
        killed_by = f"signal:{_signal_name(-code)}"
    else:
        killed_by = None
    peak = group.peak_memory() or usage.ru_maxrss * 1024
    mechanisms = dict(enforcement(setup), workspace_bytes=quota)
    enforced = tuple(f"{name}={how}" for name, how in mechanisms.items() if how)
    return ExecResult(exit_code=code, stdout_tail=stdout.text(), stderr_tail=stderr.text(),
                      wall_s=round(wall, 4), cpu_s=round(cpu, 4), peak_rss=int(peak),
                      timed_out=ended_by == "wall_s", killed_by=killed_by,
                      isolation=setup.backend.level.name.lower(),
                      limits_hit=tuple(dict.fromkeys(hits)), enforced=enforced,
                      stdout_bytes=stdout.total, stderr_bytes=stderr.total)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)
