"""Per-execution control groups: the only way to cap processes and memory of a whole tree.

Supports cgroup v1 (one hierarchy per controller) and v2 (one unified hierarchy). Groups are
created as children of the cgroup this process already lives in, so host limits still apply
above them, and are removed after every execution.
"""

import dataclasses
import itertools
import os
import pathlib
import re
import signal
import time

CONTROLLERS = ("pids", "memory", "cpuacct")  # cpuacct (v1 only) measures CPU of the tree

# File names per (version, controller, purpose).
_FILES = {
    ("v1", "pids", "limit"): "pids.max",
    ("v1", "pids", "events"): "pids.events",
    ("v1", "memory", "limit"): "memory.limit_in_bytes",
    ("v1", "memory", "swap"): "memory.memsw.limit_in_bytes",
    ("v1", "memory", "peak"): "memory.max_usage_in_bytes",
    ("v1", "memory", "events"): "memory.oom_control",
    ("v1", "cpuacct", "limit"): "cpuacct.usage",  # no limit: its presence marks the controller
    ("v2", "pids", "limit"): "pids.max",
    ("v2", "pids", "events"): "pids.events",
    ("v2", "memory", "limit"): "memory.max",
    ("v2", "memory", "swap"): "memory.swap.max",
    ("v2", "memory", "peak"): "memory.peak",
    ("v2", "memory", "events"): "memory.events",
}
_COUNTER = {"pids": "max", "memory": "oom_kill"}
_GROUP_NAME = re.compile(r"sandbox_runner-(\d+)-\d+")
_serial = itertools.count()


@dataclasses.dataclass(frozen=True)
class Controller:
    """A writable place to create child groups for one controller."""

    name: str
    version: str  # "v1" or "v2"
    base: pathlib.Path  # our own cgroup directory in that hierarchy

    def file(self, purpose: str) -> str:
        return _FILES[(self.version, self.name, purpose)]


def _own_paths() -> dict[str, str]:
    """controller name (or "" for v2) -> this process's cgroup path, from /proc/self/cgroup."""
    paths = {}
    for line in pathlib.Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        for name in names.split(",") if names else [""]:
            paths[name] = path
    return paths


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fstype, options) of every cgroup mount."""
    found = []
    for line in pathlib.Path("/proc/self/mounts").read_text().splitlines():
        _, point, fstype, options = line.split()[:4]
        if fstype in ("cgroup", "cgroup2"):
            found.append((point, fstype, set(options.split(","))))
    return found


def _usable(controller: Controller) -> str | None:
    """None if a child group with this controller can be made here, else the reason why not."""
    probe = controller.base / f"sandbox_runner-probe-{os.getpid()}-{next(_serial)}"
    try:
        probe.mkdir()
    except OSError as e:
        return f"cannot create a group under {controller.base}: {e.strerror}"
    try:
        if not (probe / controller.file("limit")).exists():
            return f"{controller.name} controller not enabled for children of {controller.base}"
        return None
    finally:
        probe.rmdir()


def _v2_enable(base: pathlib.Path, name: str) -> None:
    """Delegate a controller to our children (v2); fails when we share our group with others."""
    control = base / "cgroup.subtree_control"
    if name not in control.read_text().split():
        control.write_text(f"+{name}")


def detect() -> tuple[dict[str, Controller], dict[str, str]]:
    """Usable controllers by name, and for the unusable ones the reason."""
    own = _own_paths()
    usable, reasons = {}, {}
    mounts = _mounts()
    for name in CONTROLLERS:
        candidates = []
        for point, fstype, options in mounts:
            if fstype == "cgroup" and name in options and name in own:
                candidates.append(Controller(name, "v1", pathlib.Path(point + own[name])))
            elif fstype == "cgroup2" and "" in own:
                base = pathlib.Path(point + own[""])
                if name in (pathlib.Path(point) / "cgroup.controllers").read_text().split():
                    candidates.append(Controller(name, "v2", base))
        if not candidates:
            reasons[name] = "no cgroup hierarchy offers this controller"
            continue
        why = []
        for candidate in candidates:
            if candidate.version == "v2":
                try:
                    _v2_enable(candidate.base, name)
                except OSError as e:
                    why.append(f"v2: cannot delegate {name} below {candidate.base}: {e.strerror}")
                    continue
            reason = _usable(candidate)
            if reason is None:
                usable[name] = candidate
                break
            why.append(f"{candidate.version}: {reason}")
        else:
            reasons[name] = "; ".join(why)
    return usable, reasons


def remove_stale(controllers: dict[str, Controller]) -> list[str]:
    """Delete groups left by runners that died mid-execution (SIGKILL skips all cleanup),
    killing what still runs in them. A group whose runner pid is alive is never touched."""
    removed = []
    for controller in controllers.values():
        for path in controller.base.glob("sandbox_runner-*-*"):
            match = _GROUP_NAME.fullmatch(path.name)
            if match is None or os.path.exists(f"/proc/{match.group(1)}"):
                continue
            group = ExecGroup.adopt({controller.name: (controller, path)})
            group.kill_all()
            group.remove()
            removed.append(str(path))
    return removed


class ExecGroup:
    """The cgroup(s) of one execution: limits, membership, accounting, kill, removal."""

    def __init__(self, controllers: dict[str, Controller], memory_bytes: int, max_processes: int):
        self._dirs: dict[str, tuple[Controller, pathlib.Path]] = {}
        tag = f"sandbox_runner-{os.getpid()}-{next(_serial)}"
        try:
            for name, controller in controllers.items():
                path = controller.base / tag
                if path not in {p for _, p in self._dirs.values()}:  # v2: one dir, many controllers
                    path.mkdir()
                self._dirs[name] = (controller, path)
            if "pids" in self._dirs:
                self._write("pids", "limit", str(max_processes))
            if "memory" in self._dirs:
                self._write("memory", "limit", str(memory_bytes))
                controller, path = self._dirs["memory"]
                if (path / controller.file("swap")).exists():
                    # v1 caps memory+swap together; v2 caps swap alone.
                    swap = memory_bytes if controller.version == "v1" else 0
                    self._write("memory", "swap", str(swap))
        except BaseException:
            self.remove()
            raise

    @classmethod
    def adopt(cls, dirs: dict[str, tuple[Controller, pathlib.Path]]) -> "ExecGroup":
        """An ExecGroup for directories that already exist (to clean them up)."""
        group = cls.__new__(cls)
        group._dirs = dict(dirs)
        return group

    def _write(self, name: str, purpose: str, value: str) -> None:
        controller, path = self._dirs[name]
        (path / controller.file(purpose)).write_text(value)

    def attach(self, pid: int) -> None:
        """Move `pid` into every group; raises if any move fails (the caller must not run it)."""
        for path in {p for _, p in self._dirs.values()}:
            (path / "cgroup.procs").write_text(str(pid))
            if str(pid) not in (path / "cgroup.procs").read_text().split():
                raise OSError(f"pid {pid} did not land in {path}")

    def members(self) -> set[int]:
        pids = set()
        for _, path in self._dirs.values():
            try:
                pids.update(int(p) for p in (path / "cgroup.procs").read_text().split())
            except FileNotFoundError:
                pass
        return pids

    def hit(self, name: str) -> bool:
        """Whether the controller's limit was reached (pids: a fork refused; memory: OOM kill)."""
        if name not in self._dirs:
            return False
        controller, path = self._dirs[name]
        for line in (path / controller.file("events")).read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == _COUNTER[name]:
                return int(value) > 0
        return False

    def peak_memory(self) -> int | None:
        if "memory" not in self._dirs:
            return None
        controller, path = self._dirs["memory"]
        peak = path / controller.file("peak")
        return int(peak.read_text()) if peak.exists() else None

    def cpu_seconds(self) -> float | None:
        """CPU time of every process that ever ran in the group."""
        if "cpuacct" in self._dirs:
            return int((self._dirs["cpuacct"][1] / "cpuacct.usage").read_text()) / 1e9
        for controller, path in self._dirs.values():
            if controller.version == "v2":
                for line in (path / "cpu.stat").read_text().splitlines():
                    if line.startswith("usage_usec "):
                        return int(line.split()[1]) / 1e6
        return None

    def kill_all(self, deadline_s: float = 5.0) -> None:
        """SIGKILL every member until the groups are empty (a forking tree is bounded by pids)."""
        end = time.monotonic() + deadline_s
        while (pids := self.members()) and time.monotonic() < end:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.001)

    def signal_all(self, sig: int) -> None:
        for pid in self.members():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def remove(self) -> None:
        """Delete the groups; members must be gone (rmdir of a busy group fails with EBUSY)."""
        for path in {p for _, p in self._dirs.values()}:
            for _ in range(200):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)
        self._dirs.clear()
