"""Import a SandMLE release bundle (the authors' synthetic tasks, or an export of ours) as tasks.

    python -m launch.import_release --bundle=DIR --out=DIR [--ids=a,b]

--bundle holds `<id>/prepared/public/` folders (description.md, data, sample_submission.csv,
evaluator.py, answer.csv in public/ or private/) and, optionally, ok_competitions_sanity.json,
which narrows the ids as the release's tools do. Each task's evaluator runs in the sandbox: its
output gives the direction and the medal thresholds, and the registry metric that scores probe
submissions as it does (to 1e-6) grades the imported task; the evaluator is kept as
private/evaluator.py. One line per task: imported (metric, direction, thresholds, modality, task
type) or refused (why). Exit status 0 when every task imported, 1 when some were refused, 2 for
a bad flag or when none could be imported.
"""

from absl import flags

from sandbox_runner import Limits, Pool
from sandmle_jax import paths
from sandmle_jax.agent import sandbox_setup
from sandmle_jax.errors import ConfigError
from sandmle_jax.monitoring import console
from sandmle_jax.tasks import release

_BUNDLE = flags.DEFINE_string("bundle", None, "The release bundle's root folder.", required=True)
_OUT = flags.DEFINE_string("out", None, "Folder the tasks are written into.", required=True)
_IDS = flags.DEFINE_list("ids", [], "Task ids to import (default: the bundle's, ok-listed).")
_MIN_ISOLATION = flags.DEFINE_string("min_isolation", "rlimits",
                                     "Weakest sandbox the evaluators may run in.")
_WALL_S = flags.DEFINE_float("wall_s", 120.0, "Seconds one task's evaluator runs may take.")
MiB = 1 << 20


def main(argv):
    del argv
    console.quiet()
    bundle = paths.absolute(_BUNDLE.value)
    if not bundle.is_dir():
        raise ConfigError(f"--bundle {bundle}: no such directory")
    ids = _IDS.value or release.bundle_ids(bundle)
    if not ids:
        raise ConfigError(f"--bundle {bundle}: no <id>/prepared/public/description.md there")
    sandbox = sandbox_setup.sandbox_for({"min_isolation": _MIN_ISOLATION.value,
                                         "interpreter": ""})
    limits = Limits(wall_s=_WALL_S.value, memory_bytes=4096 * MiB, cpus=1)
    with Pool(sandbox, workers=1) as pool:
        sandbox_setup.check_sandbox(pool)
        results = release.import_all(bundle, paths.absolute(_OUT.value), pool, limits, ids)
    return console.stage_outcomes(
        [r.line() for r in results], sum(r.task is not None for r in results),
        f"no task imported from {bundle} ({len(results)} refused); each line above says why")


if __name__ == "__main__":
    console.run_launcher(main)
