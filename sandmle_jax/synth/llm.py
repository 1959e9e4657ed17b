"""The `llm` backend: each role is a prompted LLM behind an OpenAI-compatible chat endpoint.

The paper's path. Strategist: for a shipped seed, replies with the mutation knobs as JSON (the
schema fields stay the seed's); for a real seed, reads its description.md, a sample of its rows
and its DNA, and proposes the new task in free form (story, feature semantics, mutations) within
what the DNA keeps, plus knobs that express it. Developer: replies with a data script, run in
the sandbox with an execute-debug loop (a failure, or outputs that do not form a valid task, go
back as the next user turn); the script runs twice for the determinism gate, then the preset
baseline ladder runs as in `procedural`. MLOps: confirms the metric and writes a script
producing the constant and shuffled submissions, also run in the sandbox with the same loop;
then writes the task's evaluator.py (the release's contract), cross-checked against the registry
on valid and malformed submissions (`evaluator_check`), each disagreement fed back; one that
never agrees leaves the candidate to the `evaluator_agrees` gate. Grading is always
`tasks.grading`. Writer: replies with description.md. The same gates apply. Each system prompt
starts with `ROLE: <name>` (the evaluator's conversation: `mlops_evaluator`), which is how a
scripted endpoint (CI) tells the conversations apart.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pathlib
import shutil
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import pandas as pd

from sandbox_runner import Episode, read_workspace_file
from sandmle_jax.rollout.openai_chat import ChatClient
from sandmle_jax.synth import dna as dna_lib
from sandmle_jax.synth import data_check, domains, evaluator_check, seed_dna
from sandmle_jax.synth.baselines import OUTPUT_KINDS, SUBMISSION_FORMATS, BaselineSpec
from sandmle_jax.synth.candidate import write_draft
from sandmle_jax.synth.chat import fenced
from sandmle_jax.synth.procedural import checked_thresholds, develop_from_data, grading_checks
from sandmle_jax.synth.roles import Development, Inspection, Roles, Workshop
from sandmle_jax.synth.inputs import EDGES_FILE
from sandmle_jax.synth.seeds import MODALITIES, Seed
from sandmle_jax.synth.synthesis import ID_COLUMN, TaskData
from sandmle_jax.tasks import metrics as metrics_lib
from sandmle_jax.tasks.task import TaskError

BACKEND = "llm"
T = TypeVar("T")
DATA_FILES = ("train.csv", "test.csv", "answers.csv", "sample_submission.csv",
              "gold_submission.csv", "task_info.json")


class RoleFailure(ValueError):
    """One attempt's output is unusable; the message goes back to the model as feedback."""


class RoleError(RuntimeError):
    """A role gave no usable output within its attempts."""


def _converse(chat: ChatClient, role: str, system: str, user: str, attempt: Callable[[str], T],
              max_attempts: int) -> T:
    """The execute-debug loop: ask, try the reply, feed the failure back, up to max_attempts."""
    messages = [{"role": "system", "content": f"ROLE: {role}\n{system}"},
                {"role": "user", "content": user}]
    failures = []
    for _ in range(max_attempts):
        reply = chat.complete(messages)
        try:
            return attempt(reply)
        except RoleFailure as e:
            failures.append(str(e))
            messages += [{"role": "assistant", "content": reply},
                         {"role": "user", "content": f"That failed:\n{e}\nReply with a corrected, "
                                                     "complete answer in the same format."}]
    raise RoleError(f"{role}: no usable output in {max_attempts} attempts; last failure: "
                    f"{failures[-1] if failures else 'none'}")


def _json_reply(reply: str) -> dict[str, Any]:
    try:
        value = json.loads(fenced(reply, "json"))
    except json.JSONDecodeError as e:
        raise RoleFailure(f"the reply is not valid JSON ({e}); reply with one ```json block")
    if not isinstance(value, dict):
        raise RoleFailure("the JSON must be an object")
    return value


_STRATEGIST = """You are the Data Strategist of a team that builds small machine-learning tasks.
Given a seed task's schema, invent a new task: choose a domain and mutation knobs.
Reply with one ```json block holding exactly these keys: domain (one of {domains}) and {knobs}.
Ranges (inclusive): {ranges}. n_train is the number of training rows."""


_STRATEGIST_REAL = """You are the Data Strategist of a team that builds small machine-learning
tasks. You are shown a real task: its description, a sample of its rows, and its DNA (the
structure read off its files). Propose a new micro task (50-200 training rows) that keeps the
structure listed under "keep" (a gate re-reads it from the generated files) and is otherwise
new: a new setting, new meanings for the columns, and mutations of your choosing (class
imbalance, label noise, missing values, distractor columns, non-linear effects, outliers...).
Reply with one ```json block holding exactly these keys:
  "domain": the closest of {domains} (its vocabulary names the columns),
  "story": one or two sentences: what a row is and what is predicted,
  "features": one object per input column, {{"name": ..., "type": {types}, "meaning": ...}},
     with as many columns of each type as "keep" asks for,
  "mutations": a list of short phrases, the ways the new task departs from the real one,
  "knobs": an object with any of {knobs} set to express those mutations, within {ranges}."""
_FEATURE_TYPES = ("numeric", "categorical", "text", "image")
_SAMPLE_ROWS = 5
_DESCRIPTION_CHARS = 3000


def _seed_material(seed: Seed) -> str:
    """What the Strategist reads of a real seed: its description, a few rows, its DNA and what
    a descendant must keep."""
    public = pathlib.Path(seed.source) / "public"
    description = (public / "description.md").read_text(errors="replace")[:_DESCRIPTION_CHARS]
    rows = pd.read_csv(public / "train.csv", nrows=_SAMPLE_ROWS).to_csv(index=False)
    keep = seed_dna.micro_expectation(seed_dna.SeedDNA.from_dict(seed.dna))
    return (f"Description of the real task:\n{description}\n\nFirst {_SAMPLE_ROWS} rows of its "
            f"train.csv:\n{rows}\nIts DNA:\n{json.dumps(seed.dna, indent=2)}\n\n"
            f"keep:\n{json.dumps(keep, indent=2)}")


def _check_features(features: Any, keep: Mapping[str, Any]) -> None:
    if not isinstance(features, list) or not all(
            isinstance(f, dict) and {"name", "type", "meaning"} <= set(f) for f in features):
        raise RoleFailure('"features" must be a list of {"name", "type", "meaning"} objects')
    counts = {t: sum(f["type"] == t for f in features) for t in _FEATURE_TYPES}
    wanted = {t: keep[f"n_{t}"] for t in _FEATURE_TYPES if f"n_{t}" in keep}
    wrong = {t: (counts[t], n) for t, n in wanted.items() if counts[t] != n}
    if wrong:
        raise RoleFailure("feature counts do not keep the seed's: " + ", ".join(
            f"{t}: {have} proposed, {n} kept" for t, (have, n) in wrong.items()))


class Strategist:
    def __init__(self, chat: ChatClient, max_attempts: int):
        self.chat, self.max_attempts = chat, max_attempts

    def plan(self, seed: Seed, task_seed: int) -> dna_lib.TaskDNA:
        if seed.dna:
            return self._plan_from_real(seed, task_seed)
        base = dna_lib.extract_dna(seed)
        system = _STRATEGIST.format(domains=domains.domain_names(),
                                    knobs=", ".join(dna_lib.RANGES),
                                    ranges=json.dumps(dna_lib.RANGES))

        def attempt(reply: str) -> dna_lib.TaskDNA:
            knobs = _json_reply(reply)
            allowed = {"domain", *dna_lib.RANGES}
            extra = sorted(set(knobs) - allowed)
            if extra:
                raise RoleFailure(f"unknown keys {extra}; allowed: {sorted(allowed)}")
            n_train = int(knobs.get("n_train", base.n_train))
            try:
                return dna_lib.TaskDNA.from_dict({**base.to_dict(), **knobs, "seed": task_seed,
                                                  "n_test": dna_lib.test_size(n_train)})
            except dna_lib.DNAError as e:
                raise RoleFailure(str(e))

        user = f"Seed schema:\n{json.dumps(seed.to_dict(), indent=2)}\nTask seed: {task_seed}"
        return _converse(self.chat, "data_strategist", system, user, attempt, self.max_attempts)

    def _plan_from_real(self, seed: Seed, task_seed: int) -> dna_lib.TaskDNA:
        """A free-form plan within the real seed's DNA; the knobs only steer the numbers."""
        base = dna_lib.extract_dna(seed)
        keep = seed_dna.micro_expectation(seed_dna.SeedDNA.from_dict(seed.dna))
        system = _STRATEGIST_REAL.format(domains=domains.domain_names(),
                                         types="|".join(_FEATURE_TYPES),
                                         knobs=", ".join(dna_lib.RANGES),
                                         ranges=json.dumps(dna_lib.RANGES))

        def attempt(reply: str) -> dna_lib.TaskDNA:
            plan = _json_reply(reply)
            expected = {"domain", "story", "features", "mutations", "knobs"}
            if set(plan) != expected:
                raise RoleFailure(f"keys must be exactly {sorted(expected)}, got {sorted(plan)}")
            if not isinstance(plan["story"], str) or not plan["story"].strip():
                raise RoleFailure('"story" must be a non-empty string')
            if not isinstance(plan["mutations"], list) or not all(
                    isinstance(m, str) for m in plan["mutations"]):
                raise RoleFailure('"mutations" must be a list of strings')
            _check_features(plan["features"], keep)
            knobs = plan["knobs"]
            if not isinstance(knobs, dict) or set(knobs) - set(dna_lib.RANGES):
                raise RoleFailure(f'"knobs" must be an object with keys among '
                                  f"{sorted(dna_lib.RANGES)}")
            n_train = int(knobs.get("n_train", base.n_train))
            brief = {k: plan[k] for k in ("story", "features", "mutations")}
            try:
                return dna_lib.TaskDNA.from_dict({**base.to_dict(), **knobs, "seed": task_seed,
                                                  "domain": plan["domain"], "brief": brief,
                                                  "n_test": dna_lib.test_size(n_train)})
            except dna_lib.DNAError as e:
                raise RoleFailure(str(e))

        user = f"{_seed_material(seed)}\nTask seed: {task_seed}"
        return _converse(self.chat, "data_strategist", system, user, attempt, self.max_attempts)


_DEVELOPER = """You are the ML Developer. Write one self-contained Python script (numpy, pandas;
PIL for images, the wave module for audio) that synthesises a task's micro dataset from a
hidden rule `label = f(features) + noise`, seeded with the given seed so that every run writes
the same bytes.
It must write into the current directory:
- train.csv: column `id`, the input columns, the target column(s); exactly n_train rows;
- test.csv: `id` and the input columns; exactly n_test rows;
- answers.csv: `id` and the submission target columns for the test rows (hidden from agents);
- sample_submission.csv: the test ids with a constant prediction;
- gold_submission.csv: the test ids with the noise-free rule's predictions;
- task_info.json: {{"feature_kind": {kinds}, "feature_columns":
  [...], "train_targets": [...], "submission_columns": [...], "output": one of {outputs},
  "classes": [...] (class_probabilities only), "k": 0 (ranked lists: list length),
  "non_negative": false, "rule_parameters": [every number of the hidden rule]}};
- per-row files under images/ (PNG) or audio/ (WAV), named in a feature column, if the task
  has them; for a graph, edges.csv (`source`, `target`: ids of train or test rows).
sample_submission.csv, gold_submission.csv and answers.csv follow the submission format of the
task's output:
{formats}
Reply with the script in one ```python block."""


def submission_formats() -> str:
    """Every output kind's submission format, each with an example header and row."""
    return "\n".join(f"- {kind}: {what}, e.g.\n    " + example.replace("\n", "\n    ")
                     for kind, (what, example) in SUBMISSION_FORMATS.items())


def _read_frame(workspace: pathlib.Path, name: str) -> pd.DataFrame:
    """A CSV the script wrote, read without following planted links."""
    return pd.read_csv(io.BytesIO(read_workspace_file(workspace, name)))


def _read_outputs(
        workspace: pathlib.Path) -> tuple[dict[str, pd.DataFrame], dict, dict[str, bytes]]:
    missing = [f for f in DATA_FILES if not (workspace / f).is_file()]
    if missing:
        raise RoleFailure(f"the script ran but did not write {missing}")
    try:
        frames = {f: _read_frame(workspace, f) for f in DATA_FILES if f.endswith(".csv")}
        info = json.loads(read_workspace_file(workspace, "task_info.json"))
    except ValueError as e:
        raise RoleFailure(f"an output file does not parse: {e}")
    files = {}
    for folder in ("images", "audio"):
        if (workspace / folder).is_dir():
            for name in sorted(os.listdir(workspace / folder)):
                files[f"{folder}/{name}"] = read_workspace_file(workspace, f"{folder}/{name}")
    if (workspace / EDGES_FILE).is_file():
        files[EDGES_FILE] = read_workspace_file(workspace, EDGES_FILE)
    return frames, info, files


def _task_data(frames: Mapping[str, pd.DataFrame], info: Mapping[str, Any],
               files: Mapping[str, bytes]) -> TaskData:
    try:
        spec = BaselineSpec(id_column=ID_COLUMN, feature_kind=info["feature_kind"],
                            feature_columns=info["feature_columns"],
                            train_targets=info["train_targets"],
                            submission_columns=info["submission_columns"], output=info["output"],
                            classes=info.get("classes", ()), k=int(info.get("k", 0)),
                            non_negative=bool(info.get("non_negative", False)))
        parameters = tuple(float(p) for p in info.get("rule_parameters", ()))
    except (KeyError, TypeError, ValueError) as e:
        raise RoleFailure(f"task_info.json is incomplete or wrong: {e!r}")
    for name, frame in frames.items():
        if ID_COLUMN not in frame.columns:
            raise RoleFailure(f"{name} has no `{ID_COLUMN}` column "
                              f"(columns: {list(frame.columns)})")
    return TaskData(train=frames["train.csv"], test=frames["test.csv"],
                    answers=frames["answers.csv"], sample=frames["sample_submission.csv"],
                    gold=frames["gold_submission.csv"], files=dict(files), baseline=spec,
                    rule={"written_by": "llm developer"}, rule_parameters=parameters)


class Developer:
    def __init__(self, chat: ChatClient, max_attempts: int):
        self.chat, self.max_attempts = chat, max_attempts

    def _run(self, code: str, workshop: Workshop, empty: pathlib.Path) -> TaskData:
        with Episode(empty, workshop.pool, workshop.limits) as episode:
            done = workshop.pool.run(episode.request(code=code))
            if done.exit_code != 0:
                raise RoleFailure(f"the script exited with {done.exit_code}"
                                  f"{' (timed out)' if done.timed_out else ''}:\n"
                                  f"{done.stderr_tail[-1500:]}")
            return _task_data(*_read_outputs(episode.workspace))

    def develop(self, task_id: str, dna: dna_lib.TaskDNA, workshop: Workshop) -> Development:
        root = workshop.scratch / task_id
        empty = root / "empty"
        empty.mkdir(parents=True, exist_ok=True)

        def attempt(reply: str) -> tuple[str, TaskData]:
            code = fenced(reply, "python")
            data = self._run(code, workshop, empty)
            shutil.rmtree(root / "probe", ignore_errors=True)
            try:
                write_draft(task_id, dna, data, root / "probe", BACKEND)
            except (TaskError, ValueError) as e:
                raise RoleFailure(f"the outputs do not form a valid task: {e}")
            problems = data_check.mismatches(dna, data)
            if problems:
                raise RoleFailure("the data do not match the task DNA: " + "; ".join(problems))
            return code, data

        vocabulary = dataclasses.asdict(domains.get_domain(dna.domain))
        user = (f"Task DNA:\n{json.dumps(dna.to_dict(), indent=2)}\n"
                f"Domain vocabulary:\n{json.dumps(vocabulary)}")
        if dna.seed_dna:  # a real seed's descendant: the gate re-reads these from the files
            keep = seed_dna.micro_expectation(seed_dna.SeedDNA.from_dict(dna.seed_dna))
            user += ("\nFollow the brief in the DNA, and keep this structure of the real seed "
                     f"(re-read from your files; n_* count input columns by type):\n"
                     f"{json.dumps(keep, indent=2)}")
        system = _DEVELOPER.format(outputs=list(OUTPUT_KINDS), formats=submission_formats(),
                                   kinds="|".join(f'"{m}"' for m in MODALITIES))
        code, data = _converse(self.chat, "ml_developer", system, user, attempt, self.max_attempts)
        replay = self._run(code, workshop, empty).digest()
        return develop_from_data(task_id, dna, data, replay, workshop, BACKEND)


_MLOPS = """You are the MLOps Engineer. Confirm the evaluation metric (a name from {metrics}) that
fits the task DNA, and write a Python script (numpy, pandas) that reads train.csv,
sample_submission.csv and gold_submission.csv from the directory in the PUBLIC_DIR environment
variable and writes, into the current directory:
- constant_submission.csv: the training prior (or mean) as a constant prediction;
- shuffled_submission.csv: gold_submission.csv with its prediction rows permuted (seed 0) and
  the ids kept in place.
Reply with one ```json block {{"metric": "..."}} and one ```python block."""


_EVALUATOR = """You are the MLOps Engineer. Write the task's evaluator.py: a stand-alone Python
script (numpy, pandas, scipy, scikit-learn only) that the team runs as
    python evaluator.py --submission_path PATH
from a folder that holds answer.csv, the hidden answers (columns {answer_columns}).
- A submission that cannot be scored is invalid: missing or extra columns, missing, unknown or
  repeated ids, an empty cell, a value that is not a number where numbers are due, a value out of
  the metric's range. Print the reason to stderr and exit with status 1.
- Otherwise align its rows to the answers by `{id_column}` and compute {metric}: {definition}
- Print exactly one JSON object on stdout: {{"score": <float>, "is_lower_better": {lower},
  "gold_threshold": {gold}, "silver_threshold": {silver}, "bronze_threshold": {bronze},
  "median_threshold": {median}}}.
It is run on valid and malformed submissions and must agree with the team's reference scores to
1e-6. Reply with the script in one ```python block."""


def metric_definition(name: str) -> str:
    """What the Engineer is told about a metric: the registry's own convention notes."""
    metric = metrics_lib.get_metric(name)
    return (f"{'lower' if metric.lower_is_better else 'higher'} is better; submission cells: "
            f"{metric.kind.value}. {metric.convention}").strip()


class MLOps:
    def __init__(self, chat: ChatClient, max_attempts: int):
        self.chat, self.max_attempts = chat, max_attempts

    def check(self, dna: dna_lib.TaskDNA, development: Development,
              workshop: Workshop) -> Inspection:
        data = development.data
        frames = {"sample": data.sample, "gold": data.gold,
                  **self._reference_submissions(dna, development, workshop)}
        checks = grading_checks(development, frames,
                                workshop.scratch / development.draft.id / "checks")
        try:
            evaluator = self._evaluator(dna, development, frames, workshop)
        except RoleError as e:
            return Inspection(checks=checks, evaluator=None, evaluator_problems=(str(e),))
        return Inspection(checks=checks, evaluator=evaluator)

    def _reference_submissions(self, dna: dna_lib.TaskDNA, development: Development,
                               workshop: Workshop) -> dict[str, pd.DataFrame]:
        """The constant and shuffled submissions, from the Engineer's script."""
        data = development.data
        inputs = workshop.scratch / development.draft.id / "mlops-inputs"
        inputs.mkdir(parents=True, exist_ok=True)
        data.train.to_csv(inputs / "train.csv", index=False)
        data.sample.to_csv(inputs / "sample_submission.csv", index=False)
        data.gold.to_csv(inputs / "gold_submission.csv", index=False)

        def attempt(reply: str) -> dict[str, pd.DataFrame]:
            metric = _json_reply(reply).get("metric")
            if metric != dna.metric:
                raise RoleFailure(f"metric {metric!r} does not match the DNA's metric "
                                  f"{dna.metric!r}")
            with Episode(inputs, workshop.pool, workshop.limits) as episode:
                done = workshop.pool.run(episode.request(code=fenced(reply, "python"),
                                                         env={"PUBLIC_DIR": str(inputs)}))
                if done.exit_code != 0:
                    raise RoleFailure(f"the script exited with {done.exit_code}:\n"
                                      f"{done.stderr_tail[-1500:]}")
                frames = {}
                for name in ("constant", "shuffled"):
                    try:
                        frames[name] = _read_frame(episode.workspace, f"{name}_submission.csv")
                    except (OSError, ValueError) as e:
                        raise RoleFailure(f"{name}_submission.csv is missing or unreadable: {e}")
            return frames

        user = (f"Task DNA:\n{json.dumps(dna.to_dict(), indent=2)}\nSubmission columns: "
                f"{[data.id_column, *data.target_columns]}")
        return _converse(self.chat, "mlops_engineer",
                         _MLOPS.format(metrics=metrics_lib.metric_names()), user, attempt,
                         self.max_attempts)

    def _evaluator(self, dna: dna_lib.TaskDNA, development: Development,
                   frames: Mapping[str, pd.DataFrame], workshop: Workshop) -> str:
        """evaluator.py, through the execute-debug loop until it agrees with the registry."""
        draft = development.draft
        thresholds = checked_thresholds(development)

        def attempt(reply: str) -> str:
            source = fenced(reply, "python")
            problems = evaluator_check.disagreements(source, draft, thresholds, frames, workshop)
            if problems:
                raise RoleFailure("the evaluator disagrees with the reference grader:\n- "
                                  + "\n- ".join(problems))
            return source

        system = _EVALUATOR.format(
            answer_columns=list(draft.answers.columns), id_column=draft.spec.id_column,
            metric=dna.metric, definition=metric_definition(dna.metric),
            lower=str(dna.lower_is_better).lower(), **thresholds.to_dict())
        user = (f"Task DNA:\n{json.dumps(dna.to_dict(), indent=2)}\n"
                f"First rows of answer.csv:\n{draft.answers.head(3).to_csv(index=False)}\n"
                f"First rows of sample_submission.csv:\n"
                f"{draft.sample_submission.head(3).to_csv(index=False)}")
        return _converse(self.chat, "mlops_evaluator", system, user, attempt, self.max_attempts)


_WRITER = """You are the Technical Writer. Write the task's description.md in Markdown: a first
line `# <title>`, what a row is, the files, the input columns, the target, the metric and its
direction, and the submission format (state `submission_format` and show
`submission_example`, a constant guess from sample_submission.csv). Never reveal how the target
was generated, any rule parameter or any answer. Reply with the Markdown only."""


class Writer:
    def __init__(self, chat: ChatClient, max_attempts: int):
        self.chat, self.max_attempts = chat, max_attempts

    def write(self, dna: dna_lib.TaskDNA, data: TaskData) -> tuple[str, str]:
        def attempt(reply: str) -> tuple[str, str]:
            text = fenced(reply, "markdown").strip() + "\n"
            first = text.splitlines()[0]
            if not first.startswith("# "):
                raise RoleFailure("the description must start with a `# <title>` line")
            return first[2:].strip(), text

        what, _ = SUBMISSION_FORMATS[data.baseline.output]
        user = json.dumps({"dna": dna.to_dict(), "train_columns": list(data.train.columns),
                           "submission_columns": [data.id_column, *data.target_columns],
                           "submission_format": what,
                           # the sample's first row: a constant guess, never an answer
                           "submission_example": data.sample.head(1).to_csv(index=False),
                           "train_rows": len(data.train), "test_rows": len(data.test)}, indent=2)
        return _converse(self.chat, "technical_writer", _WRITER, user, attempt, self.max_attempts)


def llm_roles(options: Mapping[str, Any]) -> Roles:
    chat = ChatClient.from_options(options)
    attempts = int(options["max_attempts"])
    return Roles(backend=BACKEND, strategist=Strategist(chat, attempts),
                 developer=Developer(chat, attempts), mlops=MLOps(chat, attempts),
                 writer=Writer(chat, attempts))
