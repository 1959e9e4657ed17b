"""Real seeds in: a seeds folder of MLE-bench competitions (real tables, benchmarks/real_seeds.py)
and task directories; broken seeds refused one by one; descendants keep their seed's DNA, per
field, read back from their saved files; the drift gate; modality-stratified round robin."""

import dataclasses
import importlib.util
import json
import pathlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import write_tabular_task

from benchmarks.real_competitions import write
from benchmarks.real_seeds import SEEDS
from sandmle_jax.synth import dna as dna_lib
from sandmle_jax.synth import gates, pipeline, procedural, seed_dirs, seed_dna, synthesis
from sandmle_jax.synth.candidate import Candidate, write_draft
from sandmle_jax.synth.seeds import load_seeds
from sandmle_jax.tasks import load_task

ROOT = pathlib.Path(__file__).resolve().parents[2]
BY_ID = {c.id: c for c in SEEDS}


def _seeds_dir(root: pathlib.Path, ids=("penguin-species", "boston-medv")) -> pathlib.Path:
    for comp_id in ids:
        write(BY_ID[comp_id], root, root)
    return root


def _config(seeds_dir, **changes):
    spec = importlib.util.spec_from_file_location("synth_config", ROOT / "configs" / "synth.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    config.seeds_dir = str(seeds_dir)
    config.update(changes)
    return config


def test_a_seeds_folder_mixes_competitions_and_tasks_and_refuses_broken_ones(tmp_path):
    seeds_dir = _seeds_dir(tmp_path / "seeds")
    write_tabular_task(seeds_dir / "toy-task")
    (seeds_dir / "empty-folder").mkdir()
    write(BY_ID["wage"], seeds_dir, seeds_dir)
    (seeds_dir / "wage" / "prepared" / "public" / "test.csv").unlink()
    seeds, refused = seed_dirs.load_seed_dir(seeds_dir, tmp_path / "run")
    assert [s.id for s in seeds] == ["boston-medv", "penguin-species", "toy-task"]
    assert sorted(refused) == ["empty-folder", "wage"]
    assert "neither task.json" in refused["empty-folder"]
    assert "test.csv" in refused["wage"]
    record = json.loads((tmp_path / "run" / "seeds" / "penguin-species.json").read_text())
    assert record["kept_by_descendants"]["n_categorical"] == 2
    assert record["seed"]["dna"]["task_type"] == "multiclass"
    again, _ = seed_dirs.load_seed_dir(seeds_dir, tmp_path / "run")  # imported copies reused
    assert [s.to_dict() for s in again] == [s.to_dict() for s in seeds]
    for one in ("boston-medv", "toy-task"):  # a seed's own folder is a seeds folder of one
        alone, none_refused = seed_dirs.load_seed_dir(seeds_dir / one, tmp_path / "one")
        assert [s.id for s in alone] == [one] and not none_refused


def test_descendants_keep_the_seed_dna_field_by_field_and_are_deterministic(tmp_path):
    seeds_dir = _seeds_dir(tmp_path / "seeds")
    stores = []
    for run in ("a", "b"):
        out = tmp_path / run
        report = pipeline.generate(_config(seeds_dir, max_candidates_factor=4.0), out,
                                   num_tasks=3, progress=False)
        assert report["kept"] == 3, report["rejections"]
        assert report["seeds"] == {"used": ["boston-medv", "penguin-species"], "refused": {}}
        stores.append(out)
    manifest = json.loads((stores[0] / "manifest.json").read_text())
    assert {t["seed_id"] for t in manifest["tasks"]} == {"boston-medv", "penguin-species"}
    for entry in manifest["tasks"]:
        task = load_task(stores[0] / entry["path"])
        record = json.loads((stores[0] / "seeds" / f"{entry['seed_id']}.json").read_text())
        assert task.spec.dna["seed_dna"] == record["seed"]["dna"]
        found = seed_dna.read_seed_dna(task)
        for field, value in record["kept_by_descendants"].items():
            assert getattr(found, field) == value, (entry["task_id"], field)
        assert 50 <= found.train_rows <= 200
        twin = load_task(stores[1] / entry["path"])
        assert twin.spec.checksums == task.spec.checksums  # same seed, same bytes


def test_a_drifted_descendant_is_rejected(tmp_path):
    seeds_dir = _seeds_dir(tmp_path / "seeds", ids=("penguin-species",))
    seeds, _ = seed_dirs.load_seed_dir(seeds_dir, tmp_path / "run")
    dna = procedural.Strategist().plan(seeds[0], task_seed=3)
    data = synthesis.synthesize(dna)
    draft = write_draft("t", dna, data, tmp_path / "draft", "procedural")
    candidate = Candidate(task_id="t", dna=dna, data=data, title="t", thresholds=None, ladder={},
                          checks={}, description="", replay_digest="", backend="procedural")
    assert gates.seed_dna_kept(candidate, draft) is None
    a_categorical = next(c for c in data.baseline.feature_columns
                         if not pd.api.types.is_numeric_dtype(data.train[c]))
    narrower = dataclasses.replace(data, train=data.train.drop(columns=a_categorical),
                                   test=data.test.drop(columns=a_categorical))
    drifted = write_draft("t", dna, narrower, tmp_path / "drifted", "procedural")
    reason = gates.seed_dna_kept(dataclasses.replace(candidate, data=narrower), drifted)
    assert reason == ("drifted from seed penguin-species: n_categorical: seed implies 2, task "
                      "has 1")


def test_seeded_mutations_follow_the_seed_shares_gaps_outliers_and_signal(tmp_path):
    seeds_dir = _seeds_dir(tmp_path / "seeds", ids=("pima-diabetes", "penguin-species"))
    seeds, _ = seed_dirs.load_seed_dir(seeds_dir, tmp_path / "run")
    pima, penguins = seeds[1], seeds[0]
    minority = pima.dna["class_shares"][-1]
    for task_seed in range(5):
        dna = dna_lib.mutate(dna_lib.extract_dna(pima), np.random.default_rng(task_seed), 0)
        assert dna.imbalance == pytest.approx((0.5 - minority) / 0.4, abs=0.051)
        gappy = dna_lib.mutate(dna_lib.extract_dna(penguins), np.random.default_rng(task_seed), 0)
        assert 0.7 * penguins.dna["missing_rate"] - 1e-3 <= gappy.missing_rate \
            <= 1.3 * penguins.dna["missing_rate"] + 1e-3
        for seed, grown in ((pima, dna), (penguins, gappy)):
            assert grown.outlier_rate <= 1.3 * seed.dna["outlier_rate"] + 1e-3
            calibrated = dna_lib.noise_for_signal(seed.dna["signal"], grown.task_type)
            assert 0.9 * calibrated - 1e-3 <= grown.noise <= 1.1 * calibrated + 1e-3
        assert gappy.nonlinearity <= 0.05 and gappy.interactions == 0  # a linear seed
        assert gappy.rule_inputs == dna_lib.ALL_INPUTS  # a dense seed: the rule reads them all
        irrelevant = 1 - penguins.dna["relevant_share"]
        assert gappy.n_distractors == round(penguins.input_shape["n_numeric"] * irrelevant)
        assert 150 <= dna.n_train <= 200 and 150 <= gappy.n_train <= 200  # seeds of 229+ rows


def test_noise_for_signal_inverts_the_calibration():
    assert dna_lib.noise_for_signal(0.698, "binary") == pytest.approx(0.3)
    assert dna_lib.noise_for_signal(0.914, "regression") == pytest.approx(0.3)
    assert dna_lib.noise_for_signal(0.5, "multiclass") == pytest.approx(0.6, abs=0.02)
    assert dna_lib.noise_for_signal(0.99, "binary") == 0.1  # easier than any: the floor
    assert dna_lib.noise_for_signal(0.0, "regression") == 2.5  # no signal: the ceiling


def test_shipped_seeds_round_robin_spans_every_modality_in_four_candidates():
    order = seed_dirs.stratified(sorted(load_seeds().values(), key=lambda s: s.id))
    assert len({s.modality for s in order[:4]}) == 4
    assert sorted(s.id for s in order) == sorted(load_seeds())
    generator_order = pipeline.run_seeds(_config(""), pathlib.Path("/nonexistent"))[0]
    assert [s.id for s in generator_order] == [s.id for s in order]


def test_launch_generate_with_a_relative_seeds_dir_reports_bad_seeds_on_one_line(tmp_path):
    seeds_dir = _seeds_dir(tmp_path / "seeds", ids=("boston-medv",))
    (seeds_dir / "broken").mkdir()
    (seeds_dir / "broken" / "config.yaml").write_text("id: broken\ngrader: {name: rmse}\n")
    done = subprocess.run(
        [sys.executable, "-m", "launch.generate", f"--config={ROOT / 'configs' / 'synth.py'}",
         "--out=gen", "--seeds_dir=seeds", "--num_tasks=1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if "seed broken refused" in line]
    assert len(lines) == 1 and "Traceback" not in done.stderr
    report = json.loads((tmp_path / "gen" / "report.json").read_text())
    assert report["seeds"]["used"] == ["boston-medv"] and "broken" in report["seeds"]["refused"]
    missing = subprocess.run(
        [sys.executable, "-m", "launch.generate", f"--config={ROOT / 'configs' / 'synth.py'}",
         "--out=gen2", "--seeds_dir=nowhere"], cwd=tmp_path, capture_output=True, text=True,
        timeout=120)
    assert missing.returncode == 2 and "nowhere: no such directory" in missing.stderr
    assert not (tmp_path / "gen2").exists()


def test_a_seed_that_breaks_the_reader_is_refused_and_the_others_load(tmp_path, monkeypatch):
    seeds_dir = _seeds_dir(tmp_path / "seeds")
    real = seed_dirs.seed_from_task

    def flaky(task, seed_id=None, **kwargs):
        if seed_id == "boston-medv":
            raise RuntimeError("the reader met something new")
        return real(task, seed_id=seed_id, **kwargs)

    monkeypatch.setattr(seed_dirs, "seed_from_task", flaky)
    seeds, refused = seed_dirs.load_seed_dir(seeds_dir, tmp_path / "run")
    assert [s.id for s in seeds] == ["penguin-species"]
    assert refused == {"boston-medv": "cannot read its DNA: RuntimeError: the reader met "
                                      "something new"}


def test_launch_generate_reads_competitions_whose_data_lies_elsewhere(tmp_path):
    """MLE-bench keeps registry folders in its package and prepared data in a cache."""
    write(BY_ID["pima-diabetes"], tmp_path / "registry", tmp_path / "cache")
    done = subprocess.run(
        [sys.executable, "-m", "launch.generate", f"--config={ROOT / 'configs' / 'synth.py'}",
         "--out=gen", "--seeds_dir=registry", "--seeds_data_dir=cache", "--num_tasks=1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads((tmp_path / "gen" / "report.json").read_text())
    assert report["seeds"] == {"used": ["pima-diabetes"], "refused": {}}
    without = subprocess.run(
        [sys.executable, "-m", "launch.generate", f"--config={ROOT / 'configs' / 'synth.py'}",
         "--out=gen2", "--seeds_dir=registry", "--num_tasks=1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert without.returncode == 2 and "no seed could be read" in without.stderr
    assert "pima-diabetes" in without.stderr and "Traceback" not in without.stderr
