"""The execution contract: what a caller asks for and what it gets back (DESIGN.md, Execution).

Frozen dataclasses, JSON-friendly through `to_dict` / `from_dict`, because the same objects
travel over the HTTP service and into trajectory logs.
"""

import dataclasses
import enum
import os
from typing import Any


class Isolation(enum.IntEnum):
    """How strongly a backend separates agent code from the host; higher is stronger."""

    RLIMITS = 0  # resource limits and process-group cleanup only: no confinement at all
    NAMESPACES = 1  # new user/pid/net/ipc/uts/mount namespaces, but the host filesystem is visible
    BWRAP = 2  # namespaces plus a minimal read-only filesystem view (bubblewrap)

    @classmethod
    def parse(cls, value: "str | int | Isolation") -> "Isolation":
        if isinstance(value, str):
            try:
                return cls[value.upper()]
            except KeyError:
                raise ValueError(f"unknown isolation level {value!r}: use one of "
                                 f"{[m.name.lower() for m in cls]}") from None
        return cls(value)


MiB = 1 << 20


@dataclasses.dataclass(frozen=True)
class Limits:
    """Per-execution resource limits; every field bounds one way a program can hurt the host."""

    wall_s: float = 300.0  # the paper's per-execution limit; the whole process tree dies after it
    cpu_s: float = 600.0  # CPU seconds per process (RLIMIT_CPU)
    memory_bytes: int = 4096 * MiB  # the whole tree (memory cgroup) or per process (RLIMIT_AS)
    max_processes: int = 256  # processes + threads of the tree (pids cgroup, else RLIMIT_NPROC)
    file_size_bytes: int = 1024 * MiB  # largest single file written (RLIMIT_FSIZE)
    open_files: int = 1024  # RLIMIT_NOFILE
    workspace_bytes: int = 2048 * MiB  # disk the workspace may hold (tmpfs quota or polling)
    output_bytes: int = 64 * 1024  # stdout and stderr each keep this many bytes (head + tail)
    cpus: int = 1  # thread count given to OMP/MKL/OPENBLAS/... inside the sandbox

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Limits.{field.name} must be a positive number, got {value!r}")
        if self.output_bytes < 64:
            raise ValueError(f"Limits.output_bytes must be >= 64 to keep a head and a tail, "
                             f"got {self.output_bytes}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Limits":
        return cls(**_known_fields(cls, data))


@dataclasses.dataclass(frozen=True)
class ExecRequest:
    """One execution: either `argv` (a command) or `code` (Python source run as a fresh file).

    `workdir` is the writable workspace (the process's cwd); `readonly_mounts` are host
    directories the program may read (the task's public/ dir); nothing else of the host's
    data is visible under the bwrap backend. `env` adds variables to a cleared environment.
    Paths must be absolute: the program runs in another working directory (and, behind the
    HTTP service, in another process), where a relative path names another place.
    """

    workdir: str
    argv: tuple[str, ...] = ()
    code: str | None = None
    readonly_mounts: tuple[str, ...] = ()
    limits: Limits = Limits()
    env: tuple[tuple[str, str], ...] = ()

    def __post_init__(self):
        if bool(self.argv) == (self.code is not None):
            raise ValueError("ExecRequest needs exactly one of argv=(...) or code='...'")
        object.__setattr__(self, "argv", tuple(self.argv))
        object.__setattr__(self, "readonly_mounts", tuple(self.readonly_mounts))
        for what, path in (("workdir", self.workdir),
                           *(("readonly_mounts", p) for p in self.readonly_mounts)):
            if not os.path.isabs(path):
                raise ValueError(f"ExecRequest.{what} {path!r} is relative; pass an absolute path "
                                 f"(e.g. os.path.abspath({path!r})): the program runs in another "
                                 "working directory")
        env = self.env.items() if isinstance(self.env, dict) else self.env
        object.__setattr__(self, "env", tuple((str(k), str(v)) for k, v in env))
        if isinstance(self.limits, dict):
            object.__setattr__(self, "limits", Limits.from_dict(self.limits))

    def to_dict(self) -> dict[str, Any]:
        return {"workdir": self.workdir, "argv": list(self.argv), "code": self.code,
                "readonly_mounts": list(self.readonly_mounts), "limits": self.limits.to_dict(),
                "env": dict(self.env)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ExecRequest":
        fields = _known_fields(cls, data)
        fields["limits"] = Limits.from_dict(fields.get("limits", {}))
        fields["argv"] = tuple(fields.get("argv") or ())
        fields["readonly_mounts"] = tuple(fields.get("readonly_mounts") or ())
        fields["env"] = tuple(dict(fields.get("env") or {}).items())
        return cls(**fields)


@dataclasses.dataclass(frozen=True)
class ExecResult:
    """What happened. `killed_by` names the limit or signal that ended the run, None if it ended
    by itself; `limits_hit` lists every limit the run ran into (a fork bomb that hits
    max_processes and then times out reports both). `exit_code` < 0 means killed by that signal.
    `isolation` is the level (bwrap, namespaces or rlimits, as `Isolation`); `enforced` lists
    each limit with the mechanism that really enforced it in this run.
    """

    exit_code: int
    stdout_tail: str
    stderr_tail: str
    wall_s: float
    cpu_s: float
    peak_rss: int
    timed_out: bool
    killed_by: str | None
    isolation: str
    limits_hit: tuple[str, ...] = ()
    enforced: tuple[str, ...] = ()
    stdout_bytes: int = 0
    stderr_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["limits_hit"] = list(self.limits_hit)
        data["enforced"] = list(self.enforced)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ExecResult":
        fields = _known_fields(cls, data)
        fields["limits_hit"] = tuple(fields.get("limits_hit") or ())
        fields["enforced"] = tuple(fields.get("enforced") or ())
        return cls(**fields)


def _known_fields(cls, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{cls.__name__} got unknown fields {sorted(unknown)}; "
                         f"known: {sorted(names)}")
    return dict(data)
