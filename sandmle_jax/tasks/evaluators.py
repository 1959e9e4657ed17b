"""Task evaluators in the SandMLE release's contract: writing ours, running any in the sandbox.

The contract (the release's `SynScoreTool`): `python evaluator.py --submission_path PATH`, run
with the evaluator's folder as cwd and `answer.csv` beside it, prints JSON with `score`
(null when the submission is invalid), `is_lower_better` and `gold/silver/bronze/median_threshold`;
a non-zero exit means the submission could not be evaluated (stderr says why). Grading stays with
`tasks.grading`; an evaluator is the task's checked, portable twin. Evaluators are code we did
not write (an LLM's, a release's), so they only ever run inside the sandbox.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import tempfile
from collections.abc import Mapping
from typing import Any

import pandas as pd

from sandbox_runner import Episode, Limits, Pool, read_workspace_file
from sandmle_jax.tasks import metrics as metrics_lib
from sandmle_jax.tasks.task import LEVELS, TaskSpec, Thresholds

EVALUATOR = "evaluator.py"
ANSWER_FILE = "answer.csv"
TOLERANCE = 1e-6  # how far an evaluator's number may stand from ours (relative above 1)
_TEMPLATE = pathlib.Path(__file__).with_name("evaluator_script.py")
_TASK_LINE = "TASK = None  # the task's settings: metric, k, columns, direction, thresholds"
_RESULTS = "probe_results.json"
_TAIL = 1500

# Runs the evaluator once per probe in one process (imports paid once), as the contract's
# command line would: argv, cwd, exit status, stdout and stderr kept apart per probe.
_PROBE_RUNNER = '''
import contextlib, io, json, runpy, sys, traceback
results = {}
for name in NAMES:
    out, err, code = io.StringIO(), io.StringIO(), 0
    sys.argv = ["evaluator.py", "--submission_path", "probes/" + name + ".csv"]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path("evaluator.py", run_name="__main__")
    except SystemExit as e:
        if isinstance(e.code, int) or e.code is None:
            code = e.code or 0
        else:
            code = 1
            err.write(str(e.code))
    except BaseException:
        code = 1
        err.write(traceback.format_exc())
    results[name] = {"exit_code": code, "stdout": out.getvalue()[-TAIL:],
                     "stderr": err.getvalue()[-TAIL:]}
with open("probe_results.json", "w") as f:
    json.dump(results, f)
'''


class EvaluatorError(ValueError):
    """No evaluator can be written for this task (a custom grader, an unknown metric)."""


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What an evaluator said about one submission; `error` says why there is no score."""

    score: float | None
    is_lower_better: bool | None = None
    thresholds: Thresholds | None = None
    error: str | None = None


def agrees(value: float, reference: float) -> bool:
    """Whether an evaluator's `value` is the registry's `reference` within TOLERANCE."""
    return abs(value - reference) <= TOLERANCE * max(1.0, abs(reference))


def evaluator_source(spec: TaskSpec) -> str:
    """Our evaluator.py for a task graded by a registry metric, its settings written in."""
    if spec.grader is not None:
        raise EvaluatorError(f"{spec.id}: graded by its own code ({spec.grader}), which a "
                             "stand-alone evaluator cannot reproduce")
    try:
        metric = metrics_lib.get_metric(spec.metric)
    except KeyError as e:
        raise EvaluatorError(f"{spec.id}: {e.args[0]}") from None
    settings = {"metric": spec.metric, "k": metric.k, "id_column": spec.id_column,
                "target_columns": list(spec.target_columns),
                "lower_is_better": spec.lower_is_better,
                "thresholds": spec.thresholds.to_dict()}
    source = _TEMPLATE.read_text()
    if source.count(_TASK_LINE) != 1:
        raise AssertionError(f"{_TEMPLATE} lost its TASK line")
    return source.replace(_TASK_LINE, f"TASK = {settings!r}")


def parse_output(exit_code: int, stdout: str, stderr: str) -> Verdict:
    """One run's verdict under the contract."""
    if exit_code != 0:
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        return Verdict(None, error=f"exit {exit_code}: {lines[-1] if lines else 'no message'}")
    text = stdout.strip()
    try:
        data = json.loads(text.splitlines()[-1] if text else "")
    except json.JSONDecodeError:
        return Verdict(None, error=f"printed no JSON object (stdout: {text[-200:]!r})")
    if not isinstance(data, dict):
        return Verdict(None, error=f"printed {type(data).__name__}, not a JSON object")
    lower = data.get("is_lower_better")
    lower = lower if isinstance(lower, bool) else None
    try:
        thresholds = Thresholds(**{level: float(data[f"{level}_threshold"]) for level in LEVELS})
    except (KeyError, TypeError, ValueError):
        thresholds = None
    score = data.get("score")
    if score is None:
        return Verdict(None, lower, thresholds, error="score is null (submission refused)")
    try:
        score = float(score)
    except (TypeError, ValueError):
        return Verdict(None, lower, thresholds, error=f"score {score!r} is not a number")
    if not math.isfinite(score):
        return Verdict(None, lower, thresholds, error=f"score is {score}")
    return Verdict(score, lower, thresholds)


def run_probes(source: str, answers: pd.DataFrame, probes: Mapping[str, bytes], pool: Pool,
               limits: Limits) -> dict[str, Verdict]:
    """Runs `source` as evaluator.py (answers as answer.csv) on each named submission file, in
    one sandboxed process; a run that dies leaves every probe with that error."""
    if not all(name.isidentifier() for name in probes):
        raise ValueError(f"probe names must be identifiers: {sorted(probes)}")
    code = f"NAMES = {sorted(probes)!r}\nTAIL = {_TAIL}\n{_PROBE_RUNNER}"
    with tempfile.TemporaryDirectory(prefix="sandmle-evaluator-") as empty, \
            Episode(empty, pool, limits) as episode:
        workspace = episode.workspace
        (workspace / EVALUATOR).write_text(source)
        answers.to_csv(workspace / ANSWER_FILE, index=False)
        (workspace / "probes").mkdir()
        for name, data in probes.items():
            (workspace / "probes" / f"{name}.csv").write_bytes(data)
        done = pool.run(episode.request(code=code))
        try:
            raw: dict[str, Any] = json.loads(read_workspace_file(workspace, _RESULTS))
        except (OSError, ValueError):
            why = (f"the evaluator's process ended with {done.exit_code}"
                   f"{' (timed out)' if done.timed_out else ''}: {done.stderr_tail[-300:]}")
            return {name: Verdict(None, error=why) for name in probes}
    return {name: parse_output(int(raw[name]["exit_code"]), raw[name]["stdout"],
                               raw[name]["stderr"])
            for name in probes}
