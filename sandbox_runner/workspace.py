"""Episode workspaces, and reading files out of them without trusting what the agent left.

A workspace is the one writable directory of an episode: it persists across steps (each step is
a fresh process) and is deleted at the end. Where this process may mount (root), the workspace is
its own tmpfs of `workspace_bytes`, so the kernel enforces the disk quota; elsewhere the
supervisor polls its size.
"""

import functools
import os
import pathlib
import re
import shutil
import stat
import subprocess
import tempfile
import weakref
from typing import Protocol

from sandbox_runner.contracts import ExecRequest, ExecResult, Limits


class Runner(Protocol):
    def run(self, req: ExecRequest) -> ExecResult: ...


class UnsafeWorkspaceFile(ValueError):
    """A workspace path the grader must not read: a symlink, a special file, outside, too big."""


@functools.cache
def can_mount_tmpfs() -> str | None:
    """None if this process can mount a size-limited tmpfs, else why not (probed, not guessed)."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    probe = tempfile.mkdtemp(prefix="sandbox_runner-mountprobe-")
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe],
                              capture_output=True, text=True)
        if done.returncode != 0:
            return f"mount -t tmpfs failed: {done.stderr.strip()}"
        subprocess.run(["umount", probe], check=True)
        return None
    except FileNotFoundError as e:
        return f"no {e.filename}"
    finally:
        os.rmdir(probe)


class Episode:
    """One agent episode: a workspace next to a read-only public/ directory.

    quota: "tmpfs" (kernel-enforced, needs root), "poll" (the supervisor measures the
    workspace every 0.1 s and kills a run that exceeds it) or "auto" (tmpfs where possible).
    """

    def __init__(self, public_dir: str | os.PathLike, runner: Runner, limits: Limits = Limits(),
                 root: str | None = None, quota: str = "auto"):
        self.public_dir = pathlib.Path(public_dir).resolve()
        if not self.public_dir.is_dir():
            raise ValueError(f"public_dir {public_dir} is not a directory; pass the task's public/")
        if quota not in ("auto", "tmpfs", "poll"):
            raise ValueError(f"quota must be 'auto', 'tmpfs' or 'poll', got {quota!r}")
        self.runner, self.limits = runner, limits
        root = os.path.abspath(root or tempfile.gettempdir())  # resolved here, in the caller's cwd
        if pathlib.Path(root).resolve().is_relative_to(self.public_dir):
            raise ValueError("the workspace root must not lie inside public_dir")
        self.workspace, self.mounted = new_workspace(root, limits.workspace_bytes, quota)
        self.quota = "tmpfs" if self.mounted else "poll"
        # An episode dropped without close() still unmounts and deletes its workspace.
        self._cleanup = weakref.finalize(self, remove_workspace, self.workspace, self.mounted)

    def request(self, code: str | None = None, argv: tuple[str, ...] = (),
                limits: Limits | None = None, env: dict[str, str] | None = None) -> ExecRequest:
        return ExecRequest(workdir=str(self.workspace), argv=tuple(argv), code=code,
                           readonly_mounts=(str(self.public_dir),), limits=limits or self.limits,
                           env=tuple((env or {}).items()))

    def run_code(self, code: str, limits: Limits | None = None) -> ExecResult:
        """One step: `code` written to a fresh file, run as a new process in the workspace."""
        return self.runner.run(self.request(code=code, limits=limits))

    def run(self, argv: tuple[str, ...], limits: Limits | None = None) -> ExecResult:
        return self.runner.run(self.request(argv=argv, limits=limits))

    def read_file(self, name: str, max_bytes: int = 256 << 20) -> bytes:
        return read_workspace_file(self.workspace, name, max_bytes)

    def close(self) -> None:
        self._cleanup()
        self.mounted = False

    def __enter__(self) -> "Episode":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def new_workspace(root: str, workspace_bytes: int, quota: str = "auto"
                  ) -> tuple[pathlib.Path, bool]:
    """A fresh empty workspace directory under `root` and whether it is its own tmpfs of
    `workspace_bytes` (quota "tmpfs", or "auto" where this process may mount)."""
    remove_stale_workspaces(root)
    workspace = pathlib.Path(tempfile.mkdtemp(prefix=f"sandbox_runner-ws-{os.getpid()}-",
                                              dir=root))
    os.chmod(workspace, 0o755)
    if quota == "poll" or (quota == "auto" and can_mount_tmpfs() is not None):
        return workspace, False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o",
                           f"size={workspace_bytes},mode=0755,nosuid,nodev",
                           "tmpfs", str(workspace)], capture_output=True, text=True)
    if done.returncode != 0:
        os.rmdir(workspace)
        raise RuntimeError(f"cannot mount the workspace tmpfs: {done.stderr.strip()}; "
                           f"use quota='poll' (needs no privileges)")
    return workspace, True


@functools.cache
def remove_stale_workspaces(root: str) -> list[str]:
    """Unmount and delete workspaces under `root` whose runner died without closing them
    (SIGKILL skips finalisers); run once per root and process. Live runners' are kept."""
    removed = []
    for path in pathlib.Path(root).glob("sandbox_runner-ws-*-*"):
        match = re.fullmatch(r"sandbox_runner-ws-(\d+)-\w+", path.name)
        if match is None or os.path.exists(f"/proc/{match.group(1)}"):
            continue
        remove_workspace(path, os.path.ismount(path))
        removed.append(str(path))
    return removed


def remove_workspace(workspace: pathlib.Path, mounted: bool) -> None:
    if mounted:
        subprocess.run(["umount", "--lazy", str(workspace)], check=True, capture_output=True)
    shutil.rmtree(workspace, ignore_errors=True)


def read_workspace_file(workspace: str | os.PathLike, name: str,
                        max_bytes: int = 256 << 20) -> bytes:
    """The bytes of workspace/name, for a trusted reader (the grader).

    Rejects absolute names, `..`, any symlink on the way, anything but a regular file, hard
    links (a planted link to data outside), and files over `max_bytes`. Each component is
    opened with O_NOFOLLOW relative to its parent, so a swap between check and read cannot
    redirect the read.
    """
    parts = pathlib.PurePosixPath(name).parts
    if not parts or pathlib.PurePosixPath(name).is_absolute() or ".." in parts:
        raise UnsafeWorkspaceFile(f"{name!r} must be a relative path inside the workspace")
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(workspace, flags | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            try:
                child = os.open(part, flags | os.O_DIRECTORY, dir_fd=fd)
            except OSError as e:
                raise UnsafeWorkspaceFile(
                    f"{name!r}: {part!r} is not a plain directory ({e.strerror})") from None
            os.close(fd)
            fd = child
        try:
            file_fd = os.open(parts[-1], flags | os.O_NONBLOCK, dir_fd=fd)
        except OSError as e:
            if isinstance(e, FileNotFoundError):
                raise
            raise UnsafeWorkspaceFile(f"{name!r} cannot be opened safely ({e.strerror}): "
                                      "a symlink or special file?") from None
    finally:
        os.close(fd)
    with os.fdopen(file_fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeWorkspaceFile(f"{name!r} is not a regular file")
        if st.st_nlink != 1:
            raise UnsafeWorkspaceFile(
                f"{name!r} has {st.st_nlink} hard links; refusing a planted link")
        if st.st_size > max_bytes:
            raise UnsafeWorkspaceFile(f"{name!r} is {st.st_size} bytes, over the {max_bytes} cap")
        return f.read(max_bytes + 1)[:max_bytes]
