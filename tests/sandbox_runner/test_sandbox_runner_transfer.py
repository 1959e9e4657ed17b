"""A workspace as bytes and back: what an agent left arrives as it was, and nothing a hostile
archive holds lands outside its directory."""

import io
import os
import tarfile

import pytest

from sandbox_runner import transfer


def _tree(root):
    """Every entry under root: kind, and content or link target (nothing followed)."""
    found = {}
    for parent, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(parent, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                found[rel] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                found[rel] = ("dir", oct(os.stat(path).st_mode & 0o777))
            elif not os.path.isfile(path):
                found[rel] = ("special",)
            else:
                with open(path, "rb") as f:
                    found[rel] = ("file", f.read(), os.stat(path).st_nlink,
                                  oct(os.stat(path).st_mode & 0o777))
    return found


def test_a_workspace_round_trips_with_links_modes_and_hard_links(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "models" / "deep").mkdir(parents=True)
    (src / "submission.csv").write_text("id,y\n1,0.5\n")
    (src / "models" / "deep" / "m.bin").write_bytes(bytes(range(256)) * 100)
    (src / "run.sh").write_text("echo hi\n")
    os.chmod(src / "run.sh", 0o755)
    os.symlink("/somewhere/public", src / "data")  # the episode's absolute data link
    os.symlink("models/deep/m.bin", src / "latest")
    os.symlink("/etc/shadow", src / "planted")  # kept as written, never followed
    os.link(src / "submission.csv", src / "twin.csv")
    os.mkfifo(src / "fifo")
    dst.mkdir()
    transfer.unpack(transfer.pack(src, max_bytes=1 << 20), dst)
    expected = _tree(src)
    del expected["fifo"]  # fifos, sockets and devices do not travel
    assert _tree(dst) == expected
    assert expected["twin.csv"][2] == 2  # still a hard link: the grader still refuses it


def test_packing_refuses_more_bytes_or_entries_than_allowed(tmp_path):
    (tmp_path / "big").write_bytes(b"x" * 2000)
    with pytest.raises(transfer.TransferError, match="more than 1000 bytes"):
        transfer.pack(tmp_path, max_bytes=1000)
    for i in range(5):
        (tmp_path / f"f{i}").touch()
    with pytest.raises(transfer.TransferError, match="more than 3 entries"):
        transfer.pack(tmp_path, max_bytes=1 << 20, max_entries=3)


def _archive(*members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _member(name, kind=tarfile.REGTYPE, data=b"", linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


@pytest.mark.parametrize("members", [
    [_member("../escaped", data=b"x")],
    [_member("/abs/escaped", data=b"x")],
    [_member("out", tarfile.SYMTYPE, linkname="/tmp"), _member("out/escaped", data=b"x")],
    [_member("dev", tarfile.CHRTYPE)],
    [_member("hard", tarfile.LNKTYPE, linkname="../../etc/passwd")],
    [_member("hard", tarfile.LNKTYPE, linkname="/etc/passwd")],
], ids=["dotdot", "absolute", "through-a-symlink", "device", "hard-link-up", "hard-link-abs"])
def test_unpacking_refuses_members_that_leave_the_directory(tmp_path, members):
    dst = tmp_path / "dst"
    dst.mkdir()
    with pytest.raises(transfer.TransferError):
        transfer.unpack(_archive(*members), dst)
    assert not (tmp_path / "escaped").exists() and not os.path.exists("/tmp/escaped")


def test_replace_contents_keeps_the_directory_itself(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "new.txt").write_text("new")
    (dst / "old" / "deeper").mkdir(parents=True)
    (dst / "old.txt").write_text("old")
    os.symlink("/nowhere", dst / "dangling")
    inode = os.stat(dst).st_ino
    transfer.replace_contents(dst, transfer.pack(src, max_bytes=1 << 20))
    assert sorted(os.listdir(dst)) == ["new.txt"] and os.stat(dst).st_ino == inode
