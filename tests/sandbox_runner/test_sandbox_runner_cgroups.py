"""Per-execution cgroups: limits land in the kernel's files, and stale groups get cleaned."""

import os
import subprocess

import pytest

from sandbox_runner import cgroups


@pytest.fixture(scope="module")
def controllers():
    usable, problems = cgroups.detect()
    if not usable:
        pytest.skip(f"no writable cgroup controller here: {problems}")
    return usable


def test_group_writes_limits_and_removes_itself(controllers):
    group = cgroups.ExecGroup(controllers, memory_bytes=256 << 20, max_processes=32)
    dirs = dict(group._dirs)
    try:
        if "pids" in dirs:
            controller, path = dirs["pids"]
            assert (path / controller.file("limit")).read_text().strip() == "32"
        if "memory" in dirs:
            controller, path = dirs["memory"]
            assert int((path / controller.file("limit")).read_text()) == 256 << 20
    finally:
        group.remove()
    assert not any(path.exists() for _, path in dirs.values())


def test_attach_moves_a_process_and_kill_all_empties_the_group(controllers):
    group = cgroups.ExecGroup(controllers, memory_bytes=256 << 20, max_processes=32)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        group.attach(sleeper.pid)
        assert group.members() == {sleeper.pid}
        group.kill_all()
        assert sleeper.wait(timeout=5) == -9 and group.members() == set()
    finally:
        sleeper.kill()
        group.remove()


def test_groups_of_dead_runners_are_removed_and_live_ones_kept(controllers):
    dead = subprocess.Popen(["true"])
    dead.wait()
    controller = next(iter(controllers.values()))
    stale = controller.base / f"sandbox_runner-{dead.pid}-0"
    live = controller.base / f"sandbox_runner-{os.getpid()}-999999"
    stale.mkdir()
    live.mkdir()
    orphan = subprocess.Popen(["sleep", "60"])
    try:
        (stale / "cgroup.procs").write_text(str(orphan.pid))
        removed = cgroups.remove_stale({controller.name: controller})
        assert removed == [str(stale)] and not stale.exists() and live.exists()
        assert orphan.wait(timeout=5) == -9  # what ran in a dead runner's group is killed
    finally:
        orphan.kill()
        live.rmdir()
        if stale.exists():
            stale.rmdir()
