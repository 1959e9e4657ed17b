"""Grade one submission: `python -m launch.grade --task=DIR --submission=FILE`.

Prints the GradeReport as JSON. Exit status: 0 for any graded submission, valid or not; 2 when
the task directory is broken (or a flag is); 3 when grading itself failed (`grader_error`: a
task or code bug).
"""

import json

from absl import flags

from sandmle_jax import paths
from sandmle_jax.monitoring import console
from sandmle_jax.tasks import grading, task

_TASK = flags.DEFINE_string("task", None, "Task directory (holds task.json).", required=True)
_SUBMISSION = flags.DEFINE_string("submission", None, "Submission CSV to grade.", required=True)


def main(argv):
    del argv
    console.quiet()
    loaded = task.load_task(_TASK.value)  # a broken task: TaskError, one line, exit 2
    report = grading.grade(loaded, paths.absolute(_SUBMISSION.value))
    print(json.dumps(report.to_dict(), indent=2))
    return 3 if report.grader_error else 0


if __name__ == "__main__":
    console.run_launcher(main)
