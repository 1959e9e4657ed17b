"""Which failed baseline programs say the set-up is broken rather than the task."""

import pytest

from sandmle_jax.synth.ladder import infrastructure_error

TRACE = "Traceback (most recent call last):\n  File \"/tmp/x/rung.py\", line 7, in <module>\n"


@pytest.mark.parametrize("code, stderr, expected", [
    (1, TRACE + "FileNotFoundError: [Errno 2] No such file or directory: "
     "'runs/tiny/tasks/.scratch-ab1/t00003-tabular_binary_auc/draft/public/train.csv'\n",
     "FileNotFoundError: [Errno 2] No such file or directory: 'train.csv'"),
    (1, TRACE + "ModuleNotFoundError: No module named 'numpy'\n",
     "ModuleNotFoundError: No module named 'numpy'"),
    (1, TRACE + "PermissionError: [Errno 13] Permission denied: '/data/public/test.csv'\n",
     "PermissionError: [Errno 13] Permission denied: 'test.csv'"),
    (1, "bwrap: Can't mount proc on /newroot/proc: Operation not permitted\n",
     "bwrap: Can't mount proc on /newroot/proc: Operation not permitted"),
    (127, "", "exit code 127: command not found"),
    (1, TRACE + "ValueError: Input contains NaN\n", None),  # the program's own failure
    (1, TRACE + "sklearn.exceptions.NotFittedError: not fitted\n", None),
    (-9, "", None),
])
def test_infrastructure_errors(code, stderr, expected):
    assert infrastructure_error(code, stderr) == expected
