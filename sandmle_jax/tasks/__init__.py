"""Tasks: the directory format, metrics, submission checks, grading, medals and rewards.

No JAX here: graders run on CPU hosts beside the sandbox, far from accelerators.
"""

from sandmle_jax.tasks.grading import GradeReport, grade
from sandmle_jax.tasks.metrics import Metric, get_metric, metric_names
from sandmle_jax.tasks.rewards import reward, scheme_names
from sandmle_jax.tasks.submission import InvalidSubmission
from sandmle_jax.tasks.task import Task, TaskError, TaskSpec, Thresholds, load_task, save_task

__all__ = [
    "GradeReport", "InvalidSubmission", "Metric", "Task", "TaskError", "TaskSpec", "Thresholds",
    "get_metric", "grade", "load_task", "metric_names", "reward", "save_task", "scheme_names",
]
