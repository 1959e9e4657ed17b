"""sandbox_runner: isolated, bounded, multiprocess execution of agent-written programs.

Usage: `Sandbox()` picks the strongest backend at start-up; `Episode(public_dir, runner)` gives a
workspace that persists across steps (each step a fresh process); `Pool` runs N at once on this
host, `sandbox_runner.ray_pool.RayPool` on sandbox actors of a Ray cluster (the optional `ray`
extra); `python -m sandbox_runner.{doctor,run,serve}` and `sandbox_runner.client.Client` for the
rest. Imports nothing from sandmle_jax and never JAX.

What it protects (bwrap backend, each property has an adversarial test in tests/sandbox_runner):
  - Hidden data: the program sees only /usr (+/bin,/lib symlinks), an allowlist of /etc files,
    the interpreter's prefixes, its read-only mounts (the task's public/) and its workspace. A
    sibling private/, the host home, other workspaces and other processes are invisible.
  - Read-only inputs: public/ and the system are mounted read-only; only the workspace and a
    private size-capped /tmp are writable.
  - Network: a fresh network namespace with loopback only; no route out.
  - Other processes: a fresh pid namespace; the host's processes (its parent, the pool, other
    agents) cannot be seen, signalled or ptraced; all capabilities are dropped, nested user
    namespaces are disabled, the environment is cleared.
  - Lifetime: when the main process ends, hits the wall clock (SIGTERM, 1 s, SIGKILL) or is
    cancelled, the whole tree dies, daemonised (setsid + double fork) children included.
  - Resources: processes/threads and memory of the whole tree (cgroups where writable), CPU
    seconds, file size and open files per process (rlimits, which it cannot raise), workspace
    disk (tmpfs quota where this process may mount, else polling), captured output (head + tail).
  - The grader: `read_workspace_file` refuses symlinks, hard links, special files and paths
    leaving the workspace, so a planted link cannot make the trusted grader read private data.

What it does not protect:
  - Kernel exploits: namespaces share the host kernel; there is no seccomp filter and no VM.
  - Under the `unshare` backend the host filesystem is visible (read/write as the mapped user);
    under `rlimits` there is no isolation at all (a loud warning at start-up; every result says
    `isolation`); demand a floor with `Sandbox(min_isolation="bwrap")`.
  - Limits the host cannot enforce: without a pids cgroup, root is not bound by RLIMIT_NPROC
    (max_processes is then unenforced, and reported so); without a memory cgroup, memory is
    RLIMIT_AS per process; CPU seconds are per process, not per tree; the workspace polling
    quota can be overshot by what is written within 0.1 s.
  - Side channels and timing; CPU sharing is not fair beyond the thread-count variables.
  - As root, the program's user inside is host uid 0 without capabilities: files it can see are
    protected by read-only mounts, not by ownership.
  - Devices: no /sys and a minimal /dev, so no GPU inside the sandbox (micro tasks are CPU-only).
  - A tmpfs workspace lives in RAM (up to workspace_bytes per open episode). A runner killed
    with SIGKILL leaves its workspaces and cgroups behind until the next runner starts (it
    removes those whose owner pid is gone).
  - The HTTP service runs whatever its clients send: keep it on loopback or behind --token, and
    use --root to confine the directories clients may name.
Run `python -m sandbox_runner.doctor` to see what this host provides.
"""

from sandbox_runner.contracts import ExecRequest, ExecResult, Isolation, Limits
from sandbox_runner.pool import Pool, PoolFull
from sandbox_runner.sandbox import Sandbox, SandboxUnavailable
from sandbox_runner.workspace import Episode, UnsafeWorkspaceFile, read_workspace_file

__all__ = ["Episode", "ExecRequest", "ExecResult", "Isolation", "Limits", "Pool", "PoolFull",
           "Sandbox", "SandboxUnavailable", "UnsafeWorkspaceFile", "read_workspace_file"]
