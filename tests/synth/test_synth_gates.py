"""Every gate against a real procedural candidate and a deliberately broken copy of it.

One candidate is built once (its five baseline programs run in the sandbox); each test breaks
one thing and checks that exactly the gate responsible rejects it, with a reason that says why.
"""

import dataclasses
import pathlib

import numpy as np
import pytest

from sandbox_runner import Limits, Pool, Sandbox
from sandmle_jax.synth import baselines, gates, procedural, roles, seeds, synthesis
from sandmle_jax.synth import dna as dna_lib
from sandmle_jax.synth.candidate import Candidate, write_draft
from sandmle_jax.tasks import grading, load_task
from sandmle_jax.tasks.task import Thresholds

SEEDS = seeds.load_seeds()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("gates")
    with Pool(Sandbox(), workers=2) as pool:
        workshop = roles.Workshop(pool, Limits(wall_s=120, cpus=1), scratch)
        candidate, draft = roles.build_candidate(procedural.procedural_roles({}), "gate-task",
                                                 SEEDS["tabular_binary_auc"], 11, workshop)
    return candidate, draft, scratch


def _failed(candidate, draft):
    return {g.name: g.reason for g in gates.verify(candidate, draft) if not g.passed}


def test_the_built_candidate_passes_every_gate_and_grades_through_tasks(built, tmp_path):
    candidate, draft, _ = built
    assert _failed(candidate, draft) == {}
    # Thresholds are the measured ladder (non-constant rungs), worst to best.
    scores = sorted(candidate.ladder[r].score for r in baselines.RUNGS[1:])
    assert list(candidate.thresholds.to_dict().values()) == scores
    assert candidate.ladder["constant"].score == pytest.approx(0.5)  # a constant scores AUC 0.5
    task = candidate.save(tmp_path / candidate.task_id)
    assert load_task(task.root).spec.thresholds == candidate.thresholds
    candidate.data.gold.to_csv(tmp_path / "gold.csv", index=False)
    report = grading.grade(task, tmp_path / "gold.csv")
    assert report.gold_medal and report.score == pytest.approx(candidate.checks["gold"])
    assert "hidden" not in (task.public_dir / "description.md").read_text()
    assert not (task.public_dir / "answers.csv").exists()


def _with_ids(data, train_ids, test_ids):
    def renamed(frame, ids):
        return frame.assign(id=np.asarray(ids))
    return dataclasses.replace(
        data, train=renamed(data.train, train_ids), test=renamed(data.test, test_ids),
        answers=renamed(data.answers, test_ids), sample=renamed(data.sample, test_ids),
        gold=renamed(data.gold, test_ids))


def test_leaky_id_is_rejected_by_the_leak_scan(built):
    candidate, _, scratch = built
    data = candidate.data
    target = data.baseline.train_targets[0]
    # Ids handed out in order of the target: the id alone now separates the classes.
    y = np.concatenate([data.train[target], data.answers[target]])
    order = np.argsort(y + np.random.default_rng(0).random(len(y)) * 0.5, kind="stable")
    ids = np.empty(len(y), dtype=int)
    ids[order] = np.arange(1000, 1000 + len(y))
    leaky = _with_ids(data, ids[: len(data.train)], ids[len(data.train):])
    draft = write_draft("leaky", candidate.dna, leaky, scratch / "leaky", "procedural")
    failed = _failed(dataclasses.replace(candidate, data=leaky, replay_digest=leaky.digest()),
                     draft)
    assert list(failed) == ["no_leaky_column"]
    assert "id (" in failed["no_leaky_column"]


def test_copied_target_column_is_a_leak(built):
    candidate, _, scratch = built
    data = candidate.data
    target = data.baseline.train_targets[0]
    column = data.baseline.feature_columns[0]
    leaky = dataclasses.replace(
        data, train=data.train.assign(**{column: data.train[target] * 3.0}),
        test=data.test.assign(**{column: data.answers[target].to_numpy() * 3.0}))
    draft = write_draft("copied", candidate.dna, leaky, scratch / "copied", "procedural")
    failed = _failed(dataclasses.replace(candidate, data=leaky, replay_digest=leaky.digest()),
                     draft)
    assert list(failed) == ["no_leaky_column"] and column in failed["no_leaky_column"]


def test_non_monotone_thresholds_are_rejected(built):
    candidate, draft, _ = built
    t = candidate.thresholds
    broken = dataclasses.replace(candidate, thresholds=Thresholds(
        median=t.median, bronze=t.silver, silver=t.bronze, gold=t.gold))
    failed = _failed(broken, draft)
    assert "thresholds_monotone" in failed and "strictly" in failed["thresholds_monotone"]
    tied = dataclasses.replace(candidate, thresholds=Thresholds(
        median=t.median, bronze=t.median, silver=t.silver, gold=t.gold))
    assert "thresholds_monotone" in _failed(tied, draft)


def test_incomplete_ladder_is_rejected(built):
    candidate, draft, _ = built
    ladder = dict(candidate.ladder)
    ladder["linear"] = dataclasses.replace(ladder["linear"], score=None, error="exit code 1: boom")
    failed = _failed(dataclasses.replace(candidate, ladder=ladder, thresholds=None), draft)
    assert "boom" in failed["thresholds_monotone"]


@pytest.mark.parametrize("check,gate", [("sample", "sample_below_median"),
                                        ("constant", "constant_below_median"),
                                        ("shuffled", "shuffled_below_median")])
def test_reference_submissions_at_median_are_rejected(built, check, gate):
    candidate, draft, _ = built
    # A score equal to the median threshold reaches it (ties count), so it must be rejected.
    checks = dict(candidate.checks, **{check: candidate.thresholds.median})
    failed = _failed(dataclasses.replace(candidate, checks=checks), draft)
    assert list(failed) == [gate] and "not below the median" in failed[gate]


def test_gold_reference_short_of_gold_is_rejected(built):
    candidate, draft, _ = built
    checks = dict(candidate.checks, gold=candidate.thresholds.gold - 1e-3)
    failed = _failed(dataclasses.replace(candidate, checks=checks), draft)
    assert list(failed) == ["gold_reaches_gold"]


def test_rule_parameter_in_the_description_is_rejected(built):
    candidate, draft, _ = built
    weight = candidate.data.rule_parameters[0]
    leak = candidate.description + f"\nHint: the score rises by {weight:.3f} per unit.\n"
    failed = _failed(dataclasses.replace(candidate, description=leak), draft)
    assert list(failed) == ["description_clean"]
    assert "rule parameters" in failed["description_clean"]
    rounded = candidate.description + f"\nRoughly {round(abs(weight), 2)} times.\n"
    rounded_candidate = dataclasses.replace(candidate, description=rounded)
    assert "description_clean" in _failed(rounded_candidate, draft)


def test_test_id_with_its_answer_in_the_description_is_rejected(built):
    candidate, draft, _ = built
    row = candidate.data.answers.iloc[0]
    leak = candidate.description + f"\nFor example id {row['id']} has label {row.iloc[1]}.\n"
    failed = _failed(dataclasses.replace(candidate, description=leak), draft)
    assert list(failed) == ["description_clean"] and "pairs test id" in failed["description_clean"]


def test_answer_values_in_the_description_are_rejected():
    dna = dna_lib.mutate(dna_lib.extract_dna(SEEDS["tabular_regression_rmse"]),
                         np.random.default_rng(0), seed=0)
    data = synthesis.synthesize(dna)
    value = data.answers[data.target_columns[0]].iloc[3]
    candidate = Candidate("reg", dna, data, "t", None, {}, {}, f"Typical value: {value:.3f}\n",
                          data.digest(), "procedural")
    assert "answer values" in gates.description_clean(candidate, None)
    clean = dataclasses.replace(candidate, description="Predict the value; 120 rows, 0.5 split.\n")
    assert gates.description_clean(clean, None) is None


def test_duplicated_train_rows_in_test_are_rejected(built):
    candidate, draft, _ = built
    data = candidate.data
    columns = list(data.baseline.feature_columns)
    test = data.test.copy()
    test.loc[:4, columns] = data.train.loc[:4, columns].to_numpy()
    duplicated = dataclasses.replace(data, test=test)
    failed = _failed(dataclasses.replace(candidate, data=duplicated,
                                         replay_digest=duplicated.digest()), draft)
    assert "no_duplicate_rows" in failed and "5 test rows" in failed["no_duplicate_rows"]


def test_duplicated_images_are_found_by_content():
    dna = dna_lib.mutate(dna_lib.extract_dna(SEEDS["image_binary_auc"]),
                         np.random.default_rng(0), seed=1)
    data = synthesis.synthesize(dna)
    candidate = Candidate("img", dna, data, "t", None, {}, {}, "x", data.digest(), "procedural")
    assert gates.no_duplicate_rows(candidate, None) is None
    files = dict(data.files)
    files[data.test["image"].iloc[0]] = files[data.train["image"].iloc[0]]
    copied = dataclasses.replace(candidate, data=dataclasses.replace(data, files=files))
    assert "1 test rows" in gates.no_duplicate_rows(copied, None)


def test_sizes_out_of_bounds_are_rejected(built):
    candidate, draft, _ = built
    small = dataclasses.replace(candidate.data, train=candidate.data.train.iloc[:30])
    reason = gates.sizes_within_bounds(dataclasses.replace(candidate, data=small), draft)
    assert "30 train rows" in reason


def test_a_different_replay_is_rejected_as_nondeterministic(built):
    candidate, draft, _ = built
    failed = _failed(dataclasses.replace(candidate, replay_digest="0" * 64), draft)
    assert list(failed) == ["deterministic"]
    # A generator drawing from an unseeded source: the replay differs, and the gate says so.
    reseeded = dataclasses.replace(candidate.dna, seed=candidate.dna.seed + 1)
    other = synthesis.synthesize(reseeded).digest()
    failed = _failed(dataclasses.replace(candidate, replay_digest=other), draft)
    assert "seed every random draw" in failed["deterministic"]


def test_same_seed_same_task_checksums(built, tmp_path):
    """Two independent builds from the same seed publish byte-identical tasks."""
    candidate, _, scratch = built
    with Pool(Sandbox(), workers=2) as pool:
        workshop = roles.Workshop(pool, Limits(wall_s=120, cpus=1), scratch / "again")
        again, _ = roles.build_candidate(procedural.procedural_roles({}), "gate-task",
                                         SEEDS["tabular_binary_auc"], 11, workshop)
    first = candidate.save(tmp_path / "a" / "gate-task")
    second = again.save(tmp_path / "b" / "gate-task")
    assert first.spec.checksums == second.spec.checksums
    assert (pathlib.Path(first.root) / "task.json").read_bytes() == (
        pathlib.Path(second.root) / "task.json").read_bytes()
