"""Write tasks in the SandMLE release's layout, for the authors' tools (and anyone's).

    python -m launch.export_release --tasks=DIR --out=DIR

--tasks is a folder of tasks (what launch.generate writes under tasks/, or launch.import_*) or
one task. Each becomes `--out/<id>/prepared/public/` (description.md, data, sample submission,
evaluator.py) and `prepared/private/` (the evaluator and answer.csv: answers never sit in
public/, unlike the release's own bundles); `--out/ok_competitions_sanity.json` lists the ids
written. A task without evaluator.py gets one written from its registry metric; a task graded by
its own code cannot be exported and is named with the reason. Exit status 0 when every task was
written, 1 when some were refused, 2 for a bad flag or when none could be written.
"""

from absl import flags

from sandmle_jax import paths
from sandmle_jax.errors import ConfigError
from sandmle_jax.monitoring import console
from sandmle_jax.tasks import release, task_set

_TASKS = flags.DEFINE_string("tasks", None, "A folder of tasks, or one task.", required=True)
_OUT = flags.DEFINE_string("out", None, "Folder the release layout is written into.",
                           required=True)


def main(argv):
    del argv
    console.quiet()
    tasks = paths.absolute(_TASKS.value)
    if not tasks.is_dir() or not task_set.task_dirs(tasks):
        raise ConfigError(f"--tasks {tasks}: no task folders (task.json) there")
    results = release.export_all(tasks, paths.absolute(_OUT.value))
    return console.stage_outcomes(
        [f"exported {r.competition_id}" if r.task is not None
         else f"refused {r.competition_id}: {r.refused}" for r in results],
        sum(r.task is not None for r in results),
        f"no task exported from {tasks}; each line above says why")


if __name__ == "__main__":
    console.run_launcher(main)
