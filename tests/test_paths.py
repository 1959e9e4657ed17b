"""User paths become absolute where they enter: against the current directory, `~` expanded,
`..` folded, symlinks left alone."""

import os
import pathlib

import pytest

from sandmle_jax import paths
from sandmle_jax.errors import ConfigError


def test_relative_paths_resolve_against_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert paths.absolute("runs/tiny") == tmp_path / "runs" / "tiny"
    assert paths.absolute("runs/../other/./x") == tmp_path / "other" / "x"
    assert paths.absolute(pathlib.Path("/already/absolute")) == pathlib.Path("/already/absolute")


def test_home_is_expanded_and_links_are_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert paths.absolute("~/runs") == tmp_path / "home" / "runs"
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    assert paths.absolute(tmp_path / "link") == tmp_path / "link"


def test_optional_and_empty_paths():
    assert paths.absolute_or_empty("") == "" and paths.absolute_or_empty(None) == ""
    with pytest.raises(ConfigError, match="empty path"):
        paths.absolute("")
