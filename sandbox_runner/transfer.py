"""A directory as bytes and back: how a workspace or a task's public/ travels to another node.

The bytes are an uncompressed tar holding only directories, regular files, symlinks (their
targets kept as written, never followed) and hard links between its own files, so a workspace
arrives as the program left it (`read_workspace_file` still refuses the links). Agent programs
write these directories, so both ends distrust them: packing skips fifos, sockets and devices
and refuses more than `max_bytes` of file data or `max_entries` entries; unpacking refuses
any other member and any path that leaves the destination, through a symlink included (the
standard library's `tar` filter, Python >= 3.11.4).
"""

import io
import os
import pathlib
import shutil
import stat
import tarfile

MAX_ENTRIES = 100_000
_KEPT = {tarfile.DIRTYPE, tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE}


class TransferError(ValueError):
    """A directory that cannot travel: too big, too many entries, or a refused member."""


def pack(directory: str | os.PathLike, max_bytes: int, max_entries: int = MAX_ENTRIES) -> bytes:
    """The tar bytes of `directory`'s contents (names relative to it)."""
    root = pathlib.Path(directory)
    buffer, total, entries = io.BytesIO(), 0, 0
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        stack = [root]
        while stack:
            with os.scandir(stack.pop()) as found:
                for entry in sorted(found, key=lambda e: e.name):
                    st = entry.stat(follow_symlinks=False)
                    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)
                            or stat.S_ISLNK(st.st_mode)):
                        continue  # fifos, sockets, devices: nothing a grader or program needs
                    entries += 1
                    if entries > max_entries:
                        raise TransferError(f"{root} holds more than {max_entries} entries")
                    info = tar.gettarinfo(entry.path, os.path.relpath(entry.path, root))
                    if info.isreg():
                        total += info.size
                        if total > max_bytes:
                            raise TransferError(f"{root} holds more than {max_bytes} bytes")
                        with open(entry.path, "rb") as f:
                            tar.addfile(info, f)
                    else:
                        tar.addfile(info)
                    if info.isdir():
                        stack.append(pathlib.Path(entry.path))
    return buffer.getvalue()


def unpack(data: bytes, directory: str | os.PathLike) -> None:
    """Extracts `pack`'s bytes into the existing `directory`."""
    if not hasattr(tarfile, "tar_filter"):
        raise RuntimeError("unpacking a workspace safely needs Python >= 3.11.4 (tarfile filters)")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        members = tar.getmembers()
        for member in members:
            if member.type not in _KEPT:
                raise TransferError(f"refusing {member.name!r}: not a file, directory or link")
            if _leaves(member.name) or (member.islnk() and _leaves(member.linkname)):
                raise TransferError(f"refusing {member.name!r}: it leaves the directory")
        try:
            tar.extractall(directory, members=members, filter="tar")
        except tarfile.FilterError as e:
            raise TransferError(f"refusing a member: {e}") from None


def _leaves(name: str) -> bool:
    normal = os.path.normpath(name)
    return os.path.isabs(normal) or normal == ".." or normal.startswith("../")


def replace_contents(directory: str | os.PathLike, data: bytes) -> None:
    """Makes `directory` (kept itself: it may be a mount point) hold exactly `pack`'s bytes."""
    for entry in os.scandir(directory):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)
    unpack(data, directory)
