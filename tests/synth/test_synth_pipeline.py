"""The generation pipeline end to end: launcher, manifest, split, report, resume, determinism.

The default test builds a handful of tasks; the `slow` one is the issue's acceptance run
(50 verified tasks over >= 4 modalities with the default config).
"""

import dataclasses
import importlib.util
import json
import pathlib
import subprocess
import sys
import time

import pytest

from sandmle_jax.errors import ConfigError, SetupError
from sandmle_jax.synth import pipeline, procedural
from sandmle_jax.synth.baselines import RUNGS
from sandmle_jax.synth.roles import Roles
from sandmle_jax.tasks import grading, load_task

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMOKE_SEEDS = "tabular_regression_rmse,text_binary_auc,timeseries_forecast_rmse"


def _config(**changes):
    spec = importlib.util.spec_from_file_location("synth_config", ROOT / "configs" / "synth.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    config.update(changes)
    return config


def _launch(out, *flags):
    return subprocess.run([sys.executable, "-m", "launch.generate", "--config=configs/synth.py",
                           f"--out={out}", *flags], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def _check_store(out: pathlib.Path, expected: int):
    manifest = json.loads((out / "manifest.json").read_text())
    report = json.loads((out / "report.json").read_text())
    assert manifest["num_tasks"] == expected == len(manifest["tasks"])
    assert sorted(manifest["train"] + manifest["validation"]) == sorted(
        t["task_id"] for t in manifest["tasks"])
    for entry in manifest["tasks"]:
        task = load_task(out / entry["path"])  # checksums verified
        gold = out / "gold_check.csv"
        baselines = json.loads((task.private_dir / "baselines.json").read_text())
        assert tuple(sorted(baselines["ladder"])) == tuple(sorted(RUNGS))
        task.sample_submission.to_csv(gold, index=False)
        assert grading.grade(task, gold).valid_submission  # the sample grades, below median
        assert not grading.grade(task, gold).above_median
    assert report["kept"] == expected
    assert sum(report["diversity"]["modality"].values()) == expected
    assert set(report["gates"]) >= {"thresholds_monotone", "no_leaky_column", "deterministic"}
    return manifest, report


def test_launch_generate_resume_and_determinism(tmp_path):
    first = tmp_path / "first"
    done = _launch(first, "--num_tasks=3", f"--config.seeds={SMOKE_SEEDS}")
    assert done.returncode == 0, done.stderr[-3000:]
    manifest, report = _check_store(first, 3)
    assert json.loads(done.stdout[done.stdout.index("{"):])["kept"] == 3
    assert (first / "logs" / "metrics.jsonl").is_file()

    # Resume: everything is finished, nothing is rebuilt.
    start = time.monotonic()
    again = pipeline.generate(_config(seeds=SMOKE_SEEDS), first, num_tasks=3,
                              progress=False)
    assert again["built_this_run"] == 0 and again["kept"] == 3
    assert time.monotonic() - start < 60

    # Deterministic: a fresh directory gets byte-identical tasks.
    second = tmp_path / "second"
    pipeline.generate(_config(seeds=SMOKE_SEEDS), second, num_tasks=3,
                      progress=False)
    assert json.loads((second / "manifest.json").read_text())["tasks"] == manifest["tasks"]
    for entry in manifest["tasks"]:
        a = json.loads((first / entry["path"] / "task.json").read_text())
        b = json.loads((second / entry["path"] / "task.json").read_text())
        assert a["checksums"] == b["checksums"] and a == b


def test_relative_out_from_another_working_directory(tmp_path):
    """The baseline programs run in their own workspaces: a relative --out must still reach
    them (it used to fail every rung with FileNotFoundError and keep no task)."""
    done = subprocess.run(
        [sys.executable, "-m", "launch.generate", f"--config={ROOT / 'configs' / 'synth.py'}",
         "--out=store", "--num_tasks=2", "--config.seeds=tabular_binary_auc"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    _check_store(tmp_path / "store", 2)


class _PublicDirOutOfReach:
    """A pool whose programs are told a public/ directory they cannot read: a set-up broken the
    way a relative task path once broke it."""

    def __init__(self, pool):
        self.pool = pool

    def submit(self, request, **kwargs):
        env = dict(request.env) | {"PUBLIC_DIR": "/nonexistent/public"}
        return self.pool.submit(dataclasses.replace(request, env=tuple(env.items())), **kwargs)


class _DeveloperOutOfReach(procedural.Developer):
    def develop(self, task_id, dna, workshop):
        broken = dataclasses.replace(workshop, pool=_PublicDirOutOfReach(workshop.pool))
        return super().develop(task_id, dna, broken)


def test_the_same_set_up_error_in_the_first_candidates_stops_the_run(tmp_path):
    roles = Roles(backend="procedural", strategist=procedural.Strategist(),
                  developer=_DeveloperOutOfReach(), mlops=procedural.MLOps(),
                  writer=procedural.Writer())
    config = _config(seeds="tabular_binary_auc")
    start = time.monotonic()
    with pytest.raises(SetupError) as raised:
        pipeline.Generator(config, tmp_path / "store", roles=roles).run(10, progress=False)
    assert time.monotonic() - start < 60
    message = str(raised.value)
    assert "the first 4 candidates all failed" in message
    assert "FileNotFoundError: [Errno 2] No such file or directory: 'train.csv'" in message
    records = sorted((tmp_path / "store" / "records").glob("*.json"))
    assert len(records) >= 4
    # Those failures were the set-up's, not the candidates': once it is mended they are built.
    again = pipeline.Generator(config, tmp_path / "store").run(2, progress=False)
    assert again["kept"] == 2 and again["built_this_run"] >= 2


def test_split_is_deterministic_and_never_empty():
    ids = [f"t{i:05d}" for i in range(50)]
    split = pipeline.assign_split(ids, 0.07)
    assert split == pipeline.assign_split(list(reversed(ids)), 0.07)
    assert 1 <= list(split.values()).count("validation") <= 10
    assert pipeline.assign_split(ids[:3], 0.0) == {i: "train" for i in ids[:3]}


def test_unknown_seed_ids_are_named():
    with pytest.raises(ConfigError, match="unknown seed ids \\['nope'\\]"):
        pipeline.select_seeds(["nope"])


@pytest.mark.slow
def test_fifty_verified_tasks_over_seven_modalities(tmp_path):
    start = time.monotonic()
    done = _launch(tmp_path / "store", "--num_tasks=50")
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stderr[-3000:]
    _, report = _check_store(tmp_path / "store", 50)
    assert len(report["diversity"]["modality"]) == 7
    print(f"50 tasks in {elapsed:.0f} s; report: {json.dumps(report['gates'])}")


@pytest.mark.parametrize("flags, says", [
    (["--out=x", "--num_tasks=2"], "--config must have a value"),
    (["--config=CONFIG", "--out=x", "--num_tasks=0"], "num_tasks"),
    (["--config=CONFIG", "--out=x", "--config.seeds=nope"], "unknown seed ids"),
    (["--config=CONFIG", "--out=x", "--config.sandbox.backend=vm"],
     "sandbox.backend 'vm' unknown"),
])
def test_launch_generate_refuses_bad_flags_in_one_line(tmp_path, flags, says):
    flags = [f.replace("CONFIG", str(ROOT / "configs" / "synth.py")) for f in flags]
    done = subprocess.run([sys.executable, "-m", "launch.generate", *flags], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert says in done.stderr
    assert not (tmp_path / "x").exists()  # refused before anything was written
