"""The sandbox agent programs run in: built from a recipe's `sandbox` section, and proved to work
before any episode.

The proof is one program that must start under the sandbox's interpreter, import the libraries
every prompt promises, read a file from a read-only mount (as tasks' data is read) and write into
its workspace. A set-up that fails it would fail every episode of the run, one by one, for
minutes; here it fails in seconds with the program's own error. The same program says which of
the optional libraries (gradient boosting) import there, so prompts list only those.
"""

from __future__ import annotations

import contextlib
import importlib.util
import pathlib
import sys
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any

from sandbox_runner import Episode, Isolation, Limits, Pool, Sandbox

from sandmle_jax import paths
from sandmle_jax.agent import prompts
from sandmle_jax.errors import ConfigError, SetupError

BACKENDS = ("local", "ray")  # sandbox.backend: this host's pool, or actors on a Ray cluster
PROBE = "probe.csv"
_FOUND = "importable:"
_PROGRAM = '''import importlib, os
import numpy, pandas, scipy, sklearn
with open(os.path.join(os.environ["PUBLIC_DIR"], "{probe}")) as f:
    rows = f.read().split()
with open("written.txt", "w") as f:
    f.write(str(len(rows)))
found = []
for name in {optional!r}:
    try:
        importlib.import_module(name)
    except Exception:
        continue
    found.append(name)
print("{found}", " ".join(found))
print("sandbox ok")
'''


def min_isolation(value: str) -> Isolation:
    """A recipe's `sandbox.min_isolation`, or ConfigError naming the key."""
    try:
        return Isolation.parse(value)
    except ValueError as e:
        raise ConfigError(f"sandbox.min_isolation: {e}") from None


def interpreter(configured: str) -> str:
    """The Python that runs agent code: `sandbox.interpreter` made absolute, or by default this
    environment's."""
    return str(paths.absolute(configured)) if configured else sys.executable


def sandbox_for(section: Mapping[str, Any]) -> Sandbox:
    """The sandbox a recipe's `sandbox` section asks for (`min_isolation`, `interpreter`)."""
    return Sandbox(min_isolation=min_isolation(section["min_isolation"]),
                   interpreter=interpreter(section["interpreter"]))


def check_section(section: Mapping[str, Any]) -> None:
    """ConfigError naming the key when a recipe's `sandbox` section cannot work."""
    min_isolation(section["min_isolation"])
    if section["workers"] < 1:
        raise ConfigError(f"sandbox.workers must be >= 1, got {section['workers']!r}")
    if section["backend"] not in BACKENDS:
        raise ConfigError(f"sandbox.backend {section['backend']!r} unknown; use one of "
                          f"{BACKENDS}")
    if section["backend"] == "ray":
        if importlib.util.find_spec("ray") is None:
            raise ConfigError("sandbox.backend='ray' needs Ray: pip install -e '.[ray]'")
        if section["ray_actors"] < 0:
            raise ConfigError(f"sandbox.ray_actors must be >= 0 (0: one per node), got "
                              f"{section['ray_actors']!r}")


@contextlib.contextmanager
def runner_for(section: Mapping[str, Any]) -> Iterator[Any]:
    """The runner of a recipe's `sandbox` section, closed on the way out: a `Pool` on this host
    (backend "local") or a `RayPool` of sandbox actors on the cluster at `ray_address` (backend
    "ray"), `workers` executions at once. SetupError when the cluster cannot be used."""
    if section["backend"] == "local":
        with Pool(sandbox_for(section), workers=section["workers"]) as pool:
            yield pool
        return
    from sandbox_runner import ray_pool  # Ray is an optional extra

    try:
        pool = ray_pool.RayPool(section["ray_address"], workers=section["workers"],
                                actors=section["ray_actors"],
                                interpreter=interpreter(section["interpreter"]))
    except ray_pool.ClusterUnavailable as e:
        raise SetupError(f"sandbox.backend='ray': {e}") from None
    with pool:
        yield pool


def check_sandbox(runner, limits: Limits = Limits(wall_s=120),
                  optional: tuple[str, ...] = prompts.OPTIONAL_LIBRARIES) -> tuple[str, ...]:
    """Runs the probe program through `runner` (a Sandbox or Pool); SetupError saying why not.
    Returns the libraries agent programs can import there (the required ones, then those of
    `optional` that import), as prompts list them."""
    with tempfile.TemporaryDirectory(prefix="sandmle-sandbox-check-") as public:
        (pathlib.Path(public) / PROBE).write_text("a\n1\n2\n")
        with Episode(public, runner, limits) as episode:
            try:
                code = _PROGRAM.format(probe=PROBE, optional=tuple(optional), found=_FOUND)
                result = runner.run(episode.request(code=code,
                                                    env={"PUBLIC_DIR": str(episode.public_dir)}))
            except Exception as e:  # the sandbox itself refused to run it
                raise SetupError(f"the sandbox cannot run agent programs: "
                                 f"{type(e).__name__}: {e}") from None
            wrote = (episode.workspace / "written.txt").is_file()
    if result.exit_code != 0 or "sandbox ok" not in result.stdout_tail or not wrote:
        lines = [line for line in result.stderr_tail.strip().splitlines() if line.strip()]
        why = lines[-1].strip() if lines else f"exit code {result.exit_code}, no error output"
        if result.timed_out:
            why = f"timed out after {result.wall_s:.0f} s"
        raise SetupError(f"the sandbox cannot run agent programs ({result.isolation} isolation): "
                         f"{why}; run `python -m sandbox_runner.doctor` to see what this host "
                         "provides")
    found = next((line.split()[1:] for line in result.stdout_tail.splitlines()
                  if line.startswith(_FOUND)), [])
    return prompts.REQUIRED_LIBRARIES + tuple(name for name in optional if name in found)

