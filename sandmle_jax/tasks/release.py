"""The SandMLE release's task layout, both ways: our tasks out, a release bundle in.

The release keeps one folder per task, `<id>/prepared/public/` with description.md, the data
(train.csv, test.csv, images|audio|docs), sample_submission.csv, evaluator.py and answer.csv
(see evaluators.py for the evaluator's contract), and lists the usable ids in
`ok_competitions_sanity.json`. Its answers sit in public/; ours never do, so an export writes
them to `prepared/private/` with the task's evaluator, and public/evaluator.py is a shim that
runs the private one from there (the release's tools find and run it as before). Our task.json
goes to `prepared/private/task.json`, which the release's tools ignore, so that reading our own
export back keeps what the layout cannot say (modality, task type, title, DNA).

An import reads such a bundle (answers in public/ or private/), runs its evaluator in the
sandbox to learn the direction and the thresholds, and names the registry metric whose scores
agree with the evaluator's on probe submissions (the sample, the answers themselves, the answers
shuffled, half of each) to 1e-6. Grading then stays with the registry and the evaluator is kept
as private/evaluator.py; a bundle whose evaluator matches no registry metric is refused, saying
so, rather than graded by code we would have to trust.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from sandbox_runner import Limits, Pool
from sandmle_jax import paths
from sandmle_jax.tasks import evaluators, grading
from sandmle_jax.tasks import metrics as metrics_lib
from sandmle_jax.tasks import profile, task_set
from sandmle_jax.tasks.mlebench import Imported, answers_for
from sandmle_jax.tasks.task import (ANSWERS, DESCRIPTION, SAMPLE_SUBMISSION, TASK_JSON, Task,
                                    TaskError, TaskSpec, load_task, read_csv_strict, save_task)

PREPARED = "prepared"
OK_LIST = "ok_competitions_sanity.json"
_FAMILY_CUTOFFS = range(1, 11)  # k tried for map@k and ndcg@k

SHIM = '''"""Runs ../private/evaluator.py from its own folder, beside answer.csv: the answers
stay out of public/ (written by sandmle_jax's launch.export_release)."""
import os
import pathlib
import runpy
import sys

private = pathlib.Path(__file__).resolve().parent.parent / "private"
args = sys.argv[1:]
for i, arg in enumerate(args):
    if arg == "--submission_path" and i + 1 < len(args):
        args[i + 1] = os.path.abspath(args[i + 1])
    elif arg.startswith("--submission_path="):
        args[i] = "--submission_path=" + os.path.abspath(arg.split("=", 1)[1])
os.chdir(private)
sys.argv = [str(private / "evaluator.py"), *args]
runpy.run_path(str(private / "evaluator.py"), run_name="__main__")
'''


def export_task(task: Task, out_root: pathlib.Path) -> pathlib.Path:
    """Writes `task` as `<out_root>/<id>/prepared/{public,private}`; EvaluatorError when no
    evaluator can be had (a task graded by its own code, without evaluator.py)."""
    kept = task.private_dir / evaluators.EVALUATOR
    source = kept.read_text() if kept.is_file() else evaluators.evaluator_source(task.spec)
    target = out_root / task.id / PREPARED
    if target.exists():
        shutil.rmtree(target)
    public, private = target / "public", target / "private"
    shutil.copytree(task.public_dir, public)
    private.mkdir(parents=True)
    (public / evaluators.EVALUATOR).write_text(SHIM)
    (private / evaluators.EVALUATOR).write_text(source)
    task.answers[task.submission_columns].to_csv(private / evaluators.ANSWER_FILE, index=False)
    spec = dataclasses.replace(task.spec, checksums={})
    (private / TASK_JSON).write_text(json.dumps(spec.to_dict(), indent=2, sort_keys=True))
    return target


def export_all(tasks_root: str | os.PathLike, out_root: str | os.PathLike) -> list[Imported]:
    """Every task under `tasks_root` into the release layout, plus the ok-list of those written."""
    tasks_root, out_root = paths.absolute(tasks_root), paths.absolute(out_root)
    results = []
    for folder in task_set.task_dirs(tasks_root):
        try:
            task = load_task(folder)
            export_task(task, out_root)
            results.append(Imported(task.id, task=task))
        except (TaskError, evaluators.EvaluatorError) as e:
            results.append(Imported(folder.name, refused=str(e)))
    ok = sorted(r.competition_id for r in results if r.task is not None)
    out_root.mkdir(parents=True, exist_ok=True)
    (out_root / OK_LIST).write_text(json.dumps(ok, indent=1) + "\n")
    return results


def bundle_ids(root: pathlib.Path) -> list[str]:
    """Task ids of a release bundle: folders with prepared/public/description.md, narrowed to
    the bundle's ok-list when it has one (as the release's own tools do)."""
    ids = sorted(p.name for p in root.iterdir()
                 if (p / PREPARED / "public" / DESCRIPTION).is_file())
    ok_list = root / OK_LIST
    if ok_list.is_file():
        ok = {str(i) for i in json.loads(ok_list.read_text())}
        ids = [i for i in ids if i in ok]
    return ids


def _release_file(prepared: pathlib.Path, name: str) -> pathlib.Path:
    """`name` in private/ (our exports) or else public/ (the release's own bundles)."""
    for where in ("private", "public"):
        path = prepared / where / name
        if path.is_file():
            return path
    raise TaskError(f"{prepared}: no {name} in public/ or private/")


def _probes(sample: pd.DataFrame, answers: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Submissions whose scores tell metrics apart: the sample, and where the answers hold the
    sample's columns, the answers, the answers shuffled and half of each."""
    probes = {"sample": sample}
    columns = list(sample.columns)
    if not set(columns) <= set(answers.columns):
        return probes
    truth = answers[columns].set_index(columns[0]).loc[sample[columns[0]]].reset_index()
    shuffled = truth.copy()
    order = np.random.default_rng(0).permutation(len(truth))
    shuffled[columns[1:]] = truth[columns[1:]].to_numpy()[order]
    half = truth.copy()
    half.iloc[1::2] = sample.iloc[1::2].to_numpy()
    return {**probes, "answers": truth, "shuffled": shuffled, "half": half}


def _candidates(lower_is_better: bool, n_targets: int) -> list[str]:
    """Registry metrics of that direction, those of the submission's shape first (column-wise
    forms equal the plain ones on one column; the plain name is the one to keep)."""
    names = []
    for name in metrics_lib.metric_names():
        if name.endswith("@k"):
            names += [name.replace("@k", f"@{k}") for k in _FAMILY_CUTOFFS]
        else:
            names.append(name)
    metrics = [metrics_lib.get_metric(n) for n in names]
    fitting = [m for m in metrics if m.lower_is_better == lower_is_better]
    return [m.name for m in sorted(fitting, key=lambda m: m.multi_column != (n_targets > 1))]


def _matching_metrics(stage: pathlib.Path, spec: TaskSpec, answers: pd.DataFrame,
                      sample: pd.DataFrame, scored: dict[str, float],
                      answers_path: pathlib.Path) -> list[tuple[str, pd.DataFrame]]:
    """(metric, answers in the sample's columns) for each registry metric that scores every
    probe as the evaluator did."""
    matches = []
    for name in _candidates(spec.lower_is_better, len(spec.target_columns)):
        try:
            fitted = answers_for(name, answers, list(sample.columns), answers_path)
        except TaskError:
            continue
        task = Task(root=stage, spec=dataclasses.replace(spec, metric=name),
                    answers=fitted.astype(str), sample_submission=sample)
        if all(_close(grading.grade(task, stage / f"{probe}.csv").score, value)
               for probe, value in scored.items()):
            matches.append((name, fitted))
    return matches


def _close(score: float | None, expected: float) -> bool:
    return score is not None and evaluators.agrees(score, expected)


def import_task(prepared: pathlib.Path, out_dir: pathlib.Path, pool: Pool,
                limits: Limits) -> Task:
    """One release task (`<id>/prepared`) as our task at `out_dir`, or TaskError saying why."""
    task_id = prepared.parent.name
    public = prepared / "public"
    answers_path = _release_file(prepared, evaluators.ANSWER_FILE)
    source = _release_file(prepared, evaluators.EVALUATOR).read_text()
    if source == SHIM:  # one of our exports read back: the real evaluator is private/
        source = (prepared / "private" / evaluators.EVALUATOR).read_text()
    sample = read_csv_strict(public / SAMPLE_SUBMISSION, "sample submission")
    answers = read_csv_strict(answers_path, "answers")
    if sample.shape[1] < 2:
        raise TaskError(f"{public / SAMPLE_SUBMISSION}: needs an id column and a target column")
    probes = _probes(sample, answers)
    verdicts = evaluators.run_probes(source, answers,
                                     {n: f.to_csv(index=False).encode() for n, f in probes.items()},
                                     pool, limits)
    scored = {n: v.score for n, v in verdicts.items() if v.score is not None}
    first = verdicts["sample"]
    if first.score is None or first.thresholds is None or first.is_lower_better is None:
        raise TaskError(f"{task_id}: its evaluator gave no score, direction and thresholds for "
                        f"the sample submission ({first.error or 'incomplete JSON'})")
    with tempfile.TemporaryDirectory(prefix="sandmle-release-") as tmp:
        stage = pathlib.Path(tmp)
        (stage / "public").mkdir()
        sample.to_csv(stage / "public" / SAMPLE_SUBMISSION, index=False)
        for name, frame in probes.items():
            frame.to_csv(stage / f"{name}.csv", index=False)
        columns = list(sample.columns)
        draft = TaskSpec(id=task_id, title=_title(public, task_id), modality="tabular",
                         task_type="binary", metric="", lower_is_better=first.is_lower_better,
                         id_column=columns[0], target_columns=tuple(columns[1:]),
                         thresholds=first.thresholds)
        matches = _matching_metrics(stage, draft, answers, sample, scored, answers_path)
    if not matches:
        shown = ", ".join(f"{n} {s:.6g}" for n, s in scored.items())
        raise TaskError(f"{task_id}: its evaluator's scores ({shown}) match no registry metric "
                        f"({'lower' if first.is_lower_better else 'higher'} is better); it "
                        "cannot be graded here")
    recorded = _recorded_spec(prepared)
    if recorded is not None:  # one of our exports: its metric must be among the matches
        kept = [m for m in matches if m[0] == recorded.metric]
        if not kept:
            raise TaskError(f"{task_id}: its task.json says {recorded.metric}, but its "
                            f"evaluator scores as {[n for n, _ in matches]}")
        matches = kept + [m for m in matches if m[0] != recorded.metric]
    metric, fitted = matches[0]
    if recorded is not None:
        modality, task_type = recorded.modality, recorded.task_type
    else:
        modality = profile.infer_modality(public, skip_columns=(columns[0],))
        task_type = profile.infer_task_type(metrics_lib.get_metric(metric),
                                            fitted[columns[1:]], modality)
    origin = {"backend": "release", "source": str(prepared),
              "also_matched": [n for n, _ in matches[1:]]}
    spec = dataclasses.replace(
        draft, metric=metric, modality=modality, task_type=task_type,
        generator=origin if recorded is None else {**recorded.generator, "release": origin},
        sizes={"test_rows": len(fitted)})
    if recorded is not None:
        spec = dataclasses.replace(spec, title=recorded.title, seed_id=recorded.seed_id,
                                   dna=recorded.dna, sizes=recorded.sizes)
    files: dict[str, Any] = {p.name: p for p in sorted(public.iterdir())
                             if p.name not in (evaluators.EVALUATOR, evaluators.ANSWER_FILE)}
    return save_task(out_dir, spec, public=files,
                     private={ANSWERS: fitted, evaluators.EVALUATOR: source})


def _recorded_spec(prepared: pathlib.Path) -> TaskSpec | None:
    """Our task.json beside the answers, where an export of ours wrote it."""
    path = prepared / "private" / TASK_JSON
    if not path.is_file():
        return None
    try:
        return TaskSpec.from_dict(json.loads(path.read_text()), where=str(path))
    except (ValueError, TaskError) as e:
        raise TaskError(f"{path}: unreadable ({e})") from None


def _title(public: pathlib.Path, task_id: str) -> str:
    """The description's first heading, else the id."""
    lines = (public / DESCRIPTION).read_text(errors="replace").splitlines()
    first = next((line for line in lines if line.strip()), "")
    heading = first.lstrip("#").strip() if first.startswith("#") else ""
    return heading or task_id


def import_all(bundle_root: str | os.PathLike, out_root: str | os.PathLike, pool: Pool,
               limits: Limits, ids: Sequence[str] = ()) -> list[Imported]:
    """Every task of a release bundle (or those named) into `out_root/<id>`; a task already
    there is kept."""
    bundle_root, out_root = paths.absolute(bundle_root), paths.absolute(out_root)
    wanted = list(ids) or bundle_ids(bundle_root)
    results = []
    for task_id in wanted:
        target = out_root / task_id
        try:
            if target.exists():
                results.append(Imported(task_id, task=load_task(target), earlier=True))
                continue
            prepared = bundle_root / task_id / PREPARED
            if not prepared.is_dir():
                raise TaskError(f"{prepared}: no such folder")
            results.append(Imported(task_id, task=import_task(prepared, target, pool, limits)))
        except TaskError as e:
            results.append(Imported(task_id, refused=str(e)))
    return results
