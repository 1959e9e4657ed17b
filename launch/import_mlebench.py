"""Import prepared MLE-bench competitions as tasks.

    python -m launch.import_mlebench --competitions=DIR --data_dir=DIR --out=DIR [--ids=a,b]

--competitions holds MLE-bench registry folders (`<id>/config.yaml`, `leaderboard.csv`, optional
`description.md`), or is one such folder; --data_dir holds `<id>/prepared/{public,private}` (one
directory may serve as both). Each competition becomes `--out/<id>/`, a task that
`launch.evaluate --tasks=<out>` and `launch.train --config.tasks.dir=<out>` read. One line per
competition: imported (metric, direction, thresholds, modality, task type) or refused (why).
Exit status 0 when every competition imported, 1 when some were refused, 2 for a bad flag or
when none could be imported.
"""

from absl import flags

from sandmle_jax import paths
from sandmle_jax.errors import ConfigError
from sandmle_jax.monitoring import console
from sandmle_jax.synth.seeds import MODALITIES, TASK_TYPES
from sandmle_jax.tasks import mlebench

_COMPETITIONS = flags.DEFINE_string("competitions", None, "MLE-bench registry folders.",
                                    required=True)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Prepared data: <id>/prepared/{public,private}.",
                                required=True)
_OUT = flags.DEFINE_string("out", None, "Folder the tasks are written into.", required=True)
_IDS = flags.DEFINE_list("ids", [], "Competition ids to import (default: all found).")
_MODALITY = flags.DEFINE_enum("modality", None, list(MODALITIES),
                              "Overrides the modality inferred from the data.")
_TASK_TYPE = flags.DEFINE_enum("task_type", None, list(TASK_TYPES),
                               "Overrides the task type inferred from the metric and answers.")


def main(argv):
    del argv
    console.quiet()
    competitions, data_dir = paths.absolute(_COMPETITIONS.value), paths.absolute(_DATA_DIR.value)
    for flag, path in (("--competitions", competitions), ("--data_dir", data_dir)):
        if not path.is_dir():
            raise ConfigError(f"{flag} {path}: no such directory")
    results = mlebench.import_all(competitions, data_dir, paths.absolute(_OUT.value),
                                  _IDS.value, modality=_MODALITY.value,
                                  task_type=_TASK_TYPE.value)
    return console.stage_outcomes(
        [r.line() for r in results], sum(r.task is not None for r in results),
        f"no competition imported from {competitions} ({len(results)} refused); each line "
        "above says why")


if __name__ == "__main__":
    console.run_launcher(main)
