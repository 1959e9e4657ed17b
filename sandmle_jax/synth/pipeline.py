"""The generation pipeline: seeds -> candidates -> gates -> a task store with a manifest.

Candidate `i` is fully determined by (config.seed, i): its seed is the i-th of the selected seeds
round-robin (so modalities interleave), its RNG seed is derived from both, so runs in any order
or on any number of workers give the same tasks, and the kept set is the first `num_tasks`
accepted candidates by index. Finished candidates leave a record in `records/`; a rerun skips
them (resumable). Candidates build in `workers` threads that share one sandbox pool; a
candidate that crashes is recorded as rejected and the run goes on.

Fail fast: a candidate whose baseline programs could not start or read their inputs, or whose
build raised one of the set-up's errors (`_SETUP_ERRORS`: the sandbox, the disk, the LLM
endpoint), failed on the set-up rather than on a gate or its own output. Such a record is not
final (a rerun builds the candidate again), and when the first `fail_fast_candidates`
candidates of a run all fail with the same such error, the run stops with it (`SetupError`)
instead of burning through every candidate.

Output: tasks/<task_id>/ (the task store), records/<task_id>.json, manifest.json (kept tasks,
train/validation split), report.json (yield per gate, diversity counts, timing), logs/.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import hashlib
import json
import os
import pathlib
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from sandbox_runner import Limits, Pool, Sandbox, SandboxUnavailable, backends
from sandbox_runner.pool import PoolClosed
from sandmle_jax import paths
from sandmle_jax.agent.sandbox_setup import check_sandbox, interpreter
from sandmle_jax.errors import ConfigError, SetupError
from sandmle_jax.monitoring import console
from sandmle_jax.monitoring.metrics_writer import MetricsWriter
from sandmle_jax.rollout.openai_chat import REASONING, ChatError
from sandmle_jax.synth import gates as gates_lib
from sandmle_jax.synth import metric_variants, seed_dirs
from sandmle_jax.synth.candidate import Candidate, record
from sandmle_jax.synth.ladder import shorten_paths
from sandmle_jax.synth.backends import backend_names, make_roles
from sandmle_jax.synth.roles import Roles, Workshop, build_candidate
from sandmle_jax.synth.seeds import Seed, load_seeds
from sandmle_jax.tasks import grading
from sandmle_jax.tasks.task import Task, TaskError, load_task

MiB = 1 << 20
# Raised while building a candidate, these blame the set-up, not the candidate.
_SETUP_ERRORS = (OSError, SetupError, SandboxUnavailable, PoolClosed, ChatError)


def select_seeds(ids: str | Sequence[str], default_all: bool = True) -> list[Seed]:
    """The named shipped seeds (a list or a comma-separated string); none named: all of them,
    or none without `default_all` (a run with its own seeds folder)."""
    if isinstance(ids, str):
        ids = [i.strip() for i in ids.split(",") if i.strip()]
    seeds = load_seeds()
    unknown = sorted(set(ids) - set(seeds))
    if unknown:
        raise ConfigError(f"seeds: unknown seed ids {unknown}; shipped seeds: {sorted(seeds)}")
    return [seeds[i] for i in (ids or (sorted(seeds) if default_all else ()))]


def run_seeds(config: Mapping[str, Any], out: pathlib.Path) -> tuple[list[Seed], dict[str, str]]:
    """The run's seeds in candidate order (stratified by modality) and the refused ones.

    With `seeds_dir`, its seeds, plus the shipped seeds `seeds` names; without, the shipped
    seeds `seeds` names (all by default)."""
    refused: dict[str, str] = {}
    if not config["seeds_dir"]:
        return seed_dirs.stratified(select_seeds(config["seeds"])), refused
    own, refused = seed_dirs.load_seed_dir(config["seeds_dir"], out,
                                           config["seeds_data_dir"] or None)
    seeds = own + select_seeds(config["seeds"], default_all=False)
    if not seeds:
        why = ("no seed could be read: " + "; ".join(f"{k}: {v}" for k, v in refused.items())
               if refused else "no seed folders in it")
        raise ConfigError(f"seeds_dir {config['seeds_dir']}: {why}")
    return seed_dirs.stratified(seeds), refused


def task_seed(run_seed: int, index: int) -> int:
    return int(np.random.SeedSequence([run_seed, index]).generate_state(1)[0])


def _write_json(path: pathlib.Path, obj: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True))
    os.replace(tmp, path)


class Generator:
    """One generation run into `out_dir`; `run(num_tasks)` returns the yield report."""

    def __init__(self, config: Mapping[str, Any], out_dir: str | os.PathLike,
                 roles: Roles | None = None):
        validate_config(config)
        self.config = config
        self.out = paths.absolute(out_dir)
        self.tasks_dir, self.records_dir = self.out / "tasks", self.out / "records"
        self.seeds, self.refused_seeds = run_seeds(config, self.out)
        for name, why in self.refused_seeds.items():
            console.stage(f"seed {name} refused: {why}")
        self.roles = roles or make_roles(config["backend"], config["llm"])
        box = config["sandbox"]
        self.limits = Limits(wall_s=float(box["wall_s"]), memory_bytes=int(box["memory_mb"]) * MiB,
                             cpus=1)
        self.sandbox = Sandbox(backend=box["backend"], interpreter=interpreter(box["interpreter"]))
        self.workers = int(box["workers"])
        self.fail_fast = int(config["fail_fast_candidates"])

    def plan(self, index: int) -> tuple[str, Seed, int]:
        seed = self.seeds[index % len(self.seeds)]
        rng_seed = task_seed(int(self.config["seed"]), index)
        if self.config["vary_metric"]:
            seed = metric_variants.vary_metric(seed, rng_seed)
        return f"t{index:05d}-{seed.id}", seed, rng_seed

    def _finished(self, task_id: str) -> dict[str, Any] | None:
        """A finished candidate's record, if it and (when accepted) its task are intact."""
        path = self.records_dir / f"{task_id}.json"
        if not path.is_file():
            return None
        rec = json.loads(path.read_text())
        if rec.get("infrastructure"):  # failed on the set-up, not on a gate: build it again
            return None
        if rec["accepted"]:
            try:
                load_task(self.tasks_dir / task_id)
            except TaskError:
                return None
        return rec

    def build(self, index: int, workshop: Workshop) -> dict[str, Any]:
        """Builds, verifies and (if accepted) saves candidate `index`; returns its record."""
        task_id, seed, rng_seed = self.plan(index)
        start = time.monotonic()
        shutil.rmtree(self.tasks_dir / task_id, ignore_errors=True)  # a half-finished earlier try
        try:
            candidate, draft = build_candidate(self.roles, task_id, seed, rng_seed, workshop)
            results = [g.to_dict() for g in gates_lib.verify(candidate, draft)]
            rec = record(candidate, results)
            rec["infrastructure"] = next((r.infrastructure for r in candidate.ladder.values()
                                          if r.infrastructure), None)
            if rec["accepted"]:
                rec["gates"].append(self._publish(candidate, draft))
                rec["accepted"] = rec["gates"][-1]["passed"]
        except Exception as e:  # one bad candidate never ends the run
            error = f"{type(e).__name__}: {e}"
            rec = {"task_id": task_id, "seed_id": seed.id, "modality": seed.modality,
                   "task_type": seed.task_type, "metric": seed.metric, "domain": None,
                   "backend": self.roles.backend, "accepted": False, "ladder": {},
                   "infrastructure": (shorten_paths(error) if isinstance(e, _SETUP_ERRORS)
                                      else None),
                   "gates": [{"name": "built", "passed": False, "reason": error}]}
        finally:
            shutil.rmtree(workshop.scratch / task_id, ignore_errors=True)
        rec["seconds"] = round(time.monotonic() - start, 2)
        _write_json(self.records_dir / f"{task_id}.json", rec)
        return rec

    def _publish(self, candidate: Candidate, draft: Task) -> dict[str, Any]:
        """Saves the task, reloads it and grades the gold reference through `tasks`."""
        target = self.tasks_dir / candidate.task_id
        try:
            task = candidate.save(target)
            gold = draft.root.parent / "final_gold.csv"
            candidate.data.gold.to_csv(gold, index=False)
            report = grading.grade(task, gold)
            if not report.gold_medal:
                raise TaskError(f"gold reference graded {report.score} on the saved task "
                                f"({report.error or report.grader_error or 'no gold medal'})")
        except (TaskError, OSError) as e:
            shutil.rmtree(target, ignore_errors=True)
            return {"name": "saved_and_graded", "passed": False, "reason": str(e)}
        return {"name": "saved_and_graded", "passed": True, "reason": ""}

    def run(self, num_tasks: int, progress: bool = True) -> dict[str, Any]:
        self.tasks_dir.mkdir(parents=True, exist_ok=True)
        self.records_dir.mkdir(parents=True, exist_ok=True)
        max_candidates = int(num_tasks * float(self.config["max_candidates_factor"]))
        records: dict[int, dict[str, Any]] = {}
        built_now: list[dict[str, Any]] = []  # this run's records, in the order they finished
        start = time.monotonic()
        writer = MetricsWriter(self.out / "logs")
        scratch = pathlib.Path(tempfile.mkdtemp(prefix=".scratch-", dir=self.out))
        bar = tqdm(total=num_tasks, desc="verified tasks", disable=not progress)
        with Pool(self.sandbox, workers=self.workers, queue_size=8 * self.workers) as pool, \
                concurrent.futures.ThreadPoolExecutor(self.workers) as executor, \
                _closing(bar, writer, scratch):
            check_sandbox(pool)
            workshop = Workshop(pool=pool, limits=self.limits, scratch=scratch)
            in_flight: dict[concurrent.futures.Future, int] = {}
            index = built = 0

            def accepted() -> int:
                return sum(r["accepted"] for r in records.values())

            while True:
                while (index < max_candidates and len(in_flight) < self.workers
                       and accepted() + len(in_flight) < num_tasks):
                    done = self._finished(self.plan(index)[0])
                    if done is not None:
                        records[index] = done
                        bar.update(int(done["accepted"]))
                    else:
                        in_flight[executor.submit(self.build, index, workshop)] = index
                        built += 1
                    index += 1
                if not in_flight:
                    break
                finished, _ = concurrent.futures.wait(
                    in_flight, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in finished:
                    rec = records[in_flight.pop(future)] = future.result()
                    built_now.append(rec)
                    bar.update(int(rec["accepted"]))
                    minutes = (time.monotonic() - start) / 60
                    writer.write(len(records), {"accepted": accepted(),
                                                "rejected": len(records) - accepted(),
                                                "tasks_per_minute": accepted() / max(minutes, 1e-9),
                                                "candidate_seconds": rec["seconds"]})
                    if len(built_now) == self.fail_fast:
                        self._stop_if_broken(built_now, executor)
            if 0 < len(built_now) < self.fail_fast:  # a small run never reached the check
                self._stop_if_broken(built_now, executor)
        return self._report(records, num_tasks, time.monotonic() - start, built)

    def _stop_if_broken(self, built_now: list[dict[str, Any]],
                        executor: concurrent.futures.ThreadPoolExecutor) -> None:
        """Raises SetupError when every candidate built so far failed with one set-up error."""
        errors = {rec.get("infrastructure") for rec in built_now}
        if len(errors) != 1 or None in errors:
            return
        executor.shutdown(wait=False, cancel_futures=True)
        raise SetupError(
            f"generation stopped: the first {len(built_now)} candidates all failed before any "
            f"gate could judge them, with {errors.pop()} (the sandbox, its interpreter or "
            f"libraries, or the paths are broken; records in {self.records_dir})")

    def _report(self, records: dict[int, dict[str, Any]], num_tasks: int, wall_s: float,
                built: int) -> dict[str, Any]:
        ordered = [records[i] for i in sorted(records)]
        kept = [r for r in ordered if r["accepted"]][:num_tasks]
        split = assign_split([r["task_id"] for r in kept],
                             float(self.config["validation_fraction"]))
        manifest = {
            "backend": self.roles.backend, "seed": int(self.config["seed"]),
            "num_tasks": len(kept),
            "tasks": [{k: r[k] for k in ("task_id", "seed_id", "modality", "task_type",
                                         "domain", "metric")} | {"split": split[r["task_id"]],
                                                                 "path": f"tasks/{r['task_id']}"}
                      for r in kept],
            "train": [t for t, s in split.items() if s == "train"],
            "validation": [t for t, s in split.items() if s == "validation"],
        }
        _write_json(self.out / "manifest.json", manifest)
        gate_counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        for r in ordered:
            for g in r["gates"]:
                gate_counts[g["name"]]["passed" if g["passed"] else "failed"] += 1
        diversity = {key: dict(sorted(collections.Counter(r[key] for r in kept).items()))
                     for key in ("modality", "task_type", "domain", "metric")}
        report = {
            "requested": num_tasks, "kept": len(kept), "candidates": len(ordered),
            "accepted": sum(r["accepted"] for r in ordered),
            "yield": round(sum(r["accepted"] for r in ordered) / max(len(ordered), 1), 4),
            "gates": {k: dict(v) for k, v in gate_counts.items()},
            "diversity": diversity,
            "wall_s": round(wall_s, 1),
            "tasks_per_minute": round(len(kept) / max(wall_s / 60, 1e-9), 2),
            "built_this_run": built,
            "seeds": {"used": [s.id for s in self.seeds], "refused": self.refused_seeds},
            "rejections": {r["task_id"]: [g["name"] + ": " + g["reason"][:300]
                                          for g in r["gates"] if not g["passed"]]
                           for r in ordered if not r["accepted"]},
        }
        _write_json(self.out / "report.json", report)
        return report


@contextlib.contextmanager
def _closing(bar, writer: MetricsWriter, scratch: pathlib.Path):
    """The progress bar, the metrics writer and the scratch directory end with the run, however
    it ends."""
    try:
        yield
    finally:
        bar.close()
        writer.close()
        shutil.rmtree(scratch, ignore_errors=True)


def validate_config(config: Mapping[str, Any]) -> None:
    """Refuses values the run could only fail on later; ConfigError names the key."""
    if config["backend"] not in backend_names():
        raise ConfigError(f"backend {config['backend']!r} unknown; backends: {backend_names()}")
    if config["llm"]["reasoning"] not in REASONING:
        raise ConfigError(f"llm.reasoning {config['llm']['reasoning']!r} unknown; one of "
                          f"{list(REASONING)}")
    select_seeds(config["seeds"])
    for key in ("seeds_dir", "seeds_data_dir"):
        if config[key] and not paths.absolute(config[key]).is_dir():
            raise ConfigError(f"{key} {paths.absolute(config[key])}: no such directory")
    box = config["sandbox"]
    if box["backend"] != "auto" and box["backend"] not in backends.REGISTRY:
        raise ConfigError(f"sandbox.backend {box['backend']!r} unknown; use 'auto' or one of "
                          f"{sorted(backends.REGISTRY)}")
    for key, value, low in (("num_tasks", config["num_tasks"], 1),
                            ("max_candidates_factor", config["max_candidates_factor"], 1),
                            ("sandbox.workers", box["workers"], 1),
                            ("sandbox.wall_s", box["wall_s"], 1),
                            ("sandbox.memory_mb", box["memory_mb"], 64),
                            ("fail_fast_candidates", config["fail_fast_candidates"], 0)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < low:
            raise ConfigError(f"{key} must be a number >= {low}, got {value!r}")
    if not 0 <= float(config["validation_fraction"]) < 1:
        raise ConfigError(f"validation_fraction must be in [0, 1), got "
                          f"{config['validation_fraction']!r}")


def most_common_rejection(report: Mapping[str, Any]) -> str | None:
    """The gate that rejected most candidates first, with one of its reasons (a report.json).

    A candidate's first failed gate is the cause; later ones often only follow from it."""
    first = [reasons[0] for reasons in report.get("rejections", {}).values() if reasons]
    if not first:
        return None
    gates = collections.Counter(reason.split(":", 1)[0] for reason in first)
    gate, count = gates.most_common(1)[0]
    example = next(r for r in first if r.split(":", 1)[0] == gate)
    return f"{count} of {report['candidates']} candidates: {shorten_paths(example)[:240]}"


def assign_split(task_ids: Sequence[str], validation_fraction: float) -> dict[str, str]:
    """Deterministic by id (a hash), at least one validation task when there are two or more."""
    def unit(task_id: str) -> float:
        return int(hashlib.sha256(task_id.encode()).hexdigest()[:8], 16) / 2 ** 32

    split = {t: "validation" if unit(t) < validation_fraction else "train" for t in task_ids}
    if len(task_ids) >= 2 and validation_fraction > 0 and "validation" not in split.values():
        split[min(task_ids, key=unit)] = "validation"
    return split


def generate(config: Mapping[str, Any], out_dir: str | os.PathLike, num_tasks: int | None = None,
             progress: bool = True) -> dict[str, Any]:
    """`launch.generate`'s one library call."""
    count = num_tasks if num_tasks is not None else config["num_tasks"]
    if not isinstance(count, int) or count < 1:
        raise ConfigError(f"num_tasks must be a whole number >= 1, got {count!r}")
    return Generator(config, out_dir).run(count, progress=progress)
