"""User-given paths made absolute at the boundary.

A relative path means "relative to where the user typed the command". Deeper down, programs run
in other working directories (sandboxes, servers, subprocesses), where the same string names
another place or nothing, so every entry point resolves what it is given once, here.
"""

import os
import pathlib

from sandmle_jax.errors import ConfigError


def absolute(path: str | os.PathLike) -> pathlib.Path:
    """`path` with `~` expanded, made absolute against the current directory and normalised
    (`..` removed); symlinks are kept as they are."""
    text = os.fspath(path)
    if not text:
        raise ConfigError("an empty path names no file or directory")
    return pathlib.Path(os.path.abspath(os.path.expanduser(text)))


def absolute_or_empty(path: str | os.PathLike | None) -> str:
    """For optional config paths, where "" (or None) means "not set"."""
    return str(absolute(path)) if path else ""
