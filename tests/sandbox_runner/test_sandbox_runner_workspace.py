"""Episode workspaces (persistence, quota, cleanup) and the grader's safe file reader."""

import os
import subprocess
import time

import pytest

from sandbox_runner.contracts import Limits
from sandbox_runner.sandbox import Sandbox
from sandbox_runner.workspace import (Episode, UnsafeWorkspaceFile, can_mount_tmpfs,
                                      read_workspace_file, remove_stale_workspaces)

LIMITS = Limits(wall_s=20, memory_bytes=512 << 20, max_processes=64, workspace_bytes=64 << 20)


@pytest.fixture(scope="module")
def sandbox():
    return Sandbox()


@pytest.fixture
def public(tmp_path):
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "train.csv").write_text("id,y\n1,2\n")
    (tmp_path / "runs").mkdir()
    return tmp_path / "public"


def test_steps_share_files_but_not_process_state(sandbox, public):
    with Episode(public, sandbox, LIMITS, root=str(public.parent / "runs")) as ep:
        ep.run_code(f"import shutil\nshutil.copy('{public}/train.csv', 'copy.csv')\nX = 5")
        result = ep.run_code("print(open('copy.csv').read().strip(), 'X' in dir())")
        assert result.stdout_tail == "id,y\n1,2 False\n"
        assert ep.read_file("copy.csv") == b"id,y\n1,2\n"
        workspace = ep.workspace
    assert not workspace.exists()


@pytest.mark.parametrize("quota", ["poll", "tmpfs"])
def test_workspace_quota_stops_writes(sandbox, public, quota):
    if quota == "tmpfs" and can_mount_tmpfs() is not None:
        pytest.skip(f"tmpfs quota unavailable here: {can_mount_tmpfs()}")
    with Episode(public, sandbox, LIMITS, root=str(public.parent / "runs"), quota=quota) as ep:
        assert ep.quota == quota
        code = ("block = b'x' * (1 << 20)\nfor i in range(40):\n"
                "    with open(f'f{i}', 'wb') as f:\n"
                "        for _ in range(4): f.write(block)\nprint('DONE')\n")
        result = ep.run_code(code)
        assert "workspace_bytes" in result.limits_hit
        if quota == "tmpfs":  # polling may see the excess only after a fast writer is done
            assert result.killed_by == "workspace_bytes" and "DONE" not in result.stdout_tail
        mechanism = "tmpfs quota" if quota == "tmpfs" else "polling every 0.1 s"
        assert f"workspace_bytes={mechanism}" in result.enforced


def test_bad_public_dir_and_quota_are_named(sandbox, tmp_path):
    with pytest.raises(ValueError, match="not a directory"):
        Episode(tmp_path / "missing", sandbox)
    (tmp_path / "p").mkdir()
    with pytest.raises(ValueError, match="quota must be"):
        Episode(tmp_path / "p", sandbox, quota="zfs")


def test_safe_reader_accepts_plain_files_in_subdirectories(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "submission.csv").write_bytes(b"id,y\n")
    assert read_workspace_file(tmp_path, "sub/submission.csv") == b"id,y\n"


@pytest.mark.parametrize("name", ["/etc/passwd", "../outside.csv", "sub/../../outside.csv", ""])
def test_safe_reader_rejects_paths_leaving_the_workspace(tmp_path, name):
    (tmp_path / "ws").mkdir()
    (tmp_path / "outside.csv").write_text("secret")
    with pytest.raises(UnsafeWorkspaceFile, match="relative path inside"):
        read_workspace_file(tmp_path / "ws", name)


def test_safe_reader_rejects_symlinks_hard_links_fifos_and_big_files(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (tmp_path / "secret.csv").write_text("secret")
    (ws / "link.csv").symlink_to(tmp_path / "secret.csv")
    (ws / "dir").symlink_to(tmp_path)
    os.link(tmp_path / "secret.csv", ws / "hard.csv")
    os.mkfifo(ws / "fifo.csv")
    (ws / "big.csv").write_bytes(b"x" * 2000)
    for name, reason in [("link.csv", "safely"), ("dir/secret.csv", "plain directory"),
                         ("hard.csv", "hard links"), ("fifo.csv", "regular file"),
                         ("big.csv", "over the 1000")]:
        with pytest.raises(UnsafeWorkspaceFile, match=reason):
            read_workspace_file(ws, name, max_bytes=1000)
    with pytest.raises(FileNotFoundError):
        read_workspace_file(ws, "missing.csv")


@pytest.mark.parametrize("quota", ["poll", "tmpfs"])
def test_supervising_a_run_costs_the_host_almost_no_cpu(sandbox, public, quota):
    """The supervisor sleeps in select(); a busy loop would steal a core from the program."""
    if quota == "tmpfs" and can_mount_tmpfs() is not None:
        pytest.skip(f"tmpfs quota unavailable here: {can_mount_tmpfs()}")
    with Episode(public, sandbox, LIMITS, root=str(public.parent / "runs"), quota=quota) as ep:
        before = time.thread_time()
        result = ep.run_code("import time; time.sleep(1.5)")
        spent = time.thread_time() - before
    assert result.exit_code == 0 and spent < 0.15, f"supervisor used {spent:.2f} s of CPU"


def test_workspaces_of_dead_runners_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f"sandbox_runner-ws-{dead.pid}-abc123"
    live = tmp_path / f"sandbox_runner-ws-{os.getpid()}-def456"
    for path in (stale, live):
        path.mkdir()
        (path / "model.pkl").write_text("x")
    mounted = can_mount_tmpfs() is None
    if mounted:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(stale)], check=True)
    assert remove_stale_workspaces(str(tmp_path)) == [str(stale)]
    assert not stale.exists() and (live / "model.pkl").exists()
