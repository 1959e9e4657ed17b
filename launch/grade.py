"""Grade one submission: `python -m launch.grade --task=DIR --submission=FILE`.

Prints the GradeReport as JSON. Exit status: 0 for any graded submission, valid or not; 2 when
the task directory is broken; 3 when grading itself failed (`grader_error`: a task or code bug).
"""

import json
import sys

from absl import app, flags

from sandmle_jax.tasks import grading, task

_TASK = flags.DEFINE_string("task", None, "Task directory (holds task.json).", required=True)
_SUBMISSION = flags.DEFINE_string("submission", None, "Submission CSV to grade.", required=True)


def main(argv):
    del argv
    try:
        loaded = task.load_task(_TASK.value)
    except task.TaskError as e:
        print(f"broken task: {e}", file=sys.stderr)
        return 2
    report = grading.grade(loaded, _SUBMISSION.value)
    print(json.dumps(report.to_dict(), indent=2))
    return 3 if report.grader_error else 0


if __name__ == "__main__":
    app.run(main)
