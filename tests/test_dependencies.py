"""The main job's plain install (`pip install -e .`) must hold every package its code imports.

The tests run with the test extra, whose torch pulls in packages the plain install lacks: jinja2,
which transformers needs to render a chat template but does not require, was missing from the
README's main job for sessions and only a fresh clone found it. Here a fresh interpreter sees
only the distributions in the dependency closure of pyproject.toml's `dependencies` (extras left
out: a directory of links to their files, no site-packages), imports the main job's launcher and
the other launchers' libraries, and renders a chat prompt.
"""

import importlib.metadata
import os
import pathlib
import re
import subprocess
import sys
import tomllib

from conftest import qwen_tokenizer_dir
from packaging.requirements import Requirement

ROOT = pathlib.Path(__file__).resolve().parents[1]
_EXERCISE = """
import sys
import launch.train  # the main job (launchers define clashing flags: one per process)
import sandmle_jax.eval.cli, sandmle_jax.rl.weight_sync, sandmle_jax.rollout.server
import sandmle_jax.synth.pipeline, sandmle_jax.tasks.mlebench
from sandmle_jax.agent.chat import ChatFormat
from sandmle_jax.models import tokenizer
chat = ChatFormat.from_tokenizer(tokenizer.load_tokenizer(sys.argv[1]))
assert chat.prompt_ids("system", "user")
assert "torch" not in sys.modules
import catboost, lightgbm, xgboost  # what agent programs import in the sandbox
"""


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", requirement).lower()


def _closure(roots: list[str]) -> set[str]:
    """Distributions the roots need, transitively, without extras."""
    seen, todo = set(), [Requirement(r) for r in roots]
    while todo:
        requirement = todo.pop()
        name = _name(requirement.name)
        if name in seen or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        try:
            todo += [Requirement(r) for r in importlib.metadata.requires(requirement.name) or ()]
        except importlib.metadata.PackageNotFoundError:
            continue
    return seen


def _plain_site(root: pathlib.Path, needed: set[str]) -> pathlib.Path:
    """Links to the files of the needed distributions only (packages, .libs, .dist-info)."""
    site = root / "site"
    site.mkdir()
    for dist in importlib.metadata.distributions():
        if _name(dist.metadata["Name"]) not in needed:
            continue
        for top in {pathlib.PurePath(f).parts[0] for f in dist.files or ()} - {"..", "."}:
            source = pathlib.Path(dist.locate_file(top))
            if source.exists() and not (site / top).exists():
                (site / top).symlink_to(source)
    return site


def test_the_plain_install_holds_what_the_main_job_imports(tmp_path):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    site = _plain_site(tmp_path, _closure(project["dependencies"]))
    assert not (site / "torch").exists() and (site / "transformers").exists()
    env = dict(os.environ, PYTHONPATH=f"{site}{os.pathsep}{ROOT}")
    done = subprocess.run([sys.executable, "-S", "-c", _EXERCISE, str(qwen_tokenizer_dir())],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
