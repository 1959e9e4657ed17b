"""Checkpoints: exact round trip, retention, and falling back past broken or partial saves."""

import logging
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sandmle_jax.rl.checkpoint import Checkpointer, abstract_like
from sandmle_jax.rl.learner import TrainState
from sandmle_jax.rl.optim import OptimizerConfig, make_optimizer


def train_state(seed: int = 0) -> TrainState:
    rng = np.random.default_rng(seed)
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("data",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    params = {"embed": jnp.asarray(rng.normal(size=(16, 8)), jnp.float32),
              "layer": {"kernel": jnp.asarray(rng.normal(size=(8, 8)), jnp.bfloat16),
                        "bias": jnp.asarray(rng.normal(size=(8,)), jnp.float32)}}
    params = jax.device_put(params, sharding)
    opt = make_optimizer(OptimizerConfig(learning_rate=1e-3))
    opt_state = opt.init(params)
    # Take one real update so the Adam moments and count are not trivial zeros.
    grads = jax.tree.map(lambda x: jnp.ones_like(x) * 0.5, params)
    _, opt_state = opt.update(grads, opt_state, params)
    return TrainState(params=params, opt_state=opt_state, step=jnp.int32(7 + seed),
                      rng=jax.random.PRNGKey(seed))


def assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(np.asarray(x.astype(jnp.float32)),
                                      np.asarray(y.astype(jnp.float32)))


def save_steps(ckpt, steps, metrics=None):
    for s in steps:
        ckpt.save(s, train_state(s), cursor={"task_index": s, "epoch": 1},
                  config={"lr": 1e-6, "steps": s}, metrics=None if metrics is None else metrics[s])
    ckpt.wait()


def test_round_trip_is_exact_and_keeps_shardings(tmp_path):
    state = train_state(0)
    with Checkpointer(tmp_path, keep_last=2) as ckpt:
        ckpt.save(3, state, cursor={"task_index": 41, "seen": [1, 2]}, config={"lr": 1e-6})
        ckpt.wait()
    with Checkpointer(tmp_path, keep_last=2) as ckpt:     # a fresh process would do the same
        restored = ckpt.restore_latest(abstract_like(state))
    assert restored.step == 3
    assert restored.cursor == {"task_index": 41, "seen": [1, 2]}
    assert restored.config == {"lr": 1e-6}
    assert isinstance(restored.state, TrainState)
    assert_trees_equal(restored.state, state)
    for got, want in zip(jax.tree.leaves(restored.state), jax.tree.leaves(state)):
        assert got.sharding == want.sharding


def test_keeps_the_last_n(tmp_path):
    with Checkpointer(tmp_path, keep_last=2) as ckpt:
        save_steps(ckpt, range(5))
        assert ckpt.steps() == [3, 4]
        assert ckpt.restore_latest(abstract_like(train_state())).step == 4


def test_keeps_the_best_as_well_and_across_restarts(tmp_path):
    reward = {0: 0.1, 1: 0.9, 2: 0.2, 3: 0.3, 4: 0.4}
    with Checkpointer(tmp_path, keep_last=2, best_metric="reward") as ckpt:
        save_steps(ckpt, range(5), {s: {"reward": r} for s, r in reward.items()})
        assert ckpt.steps() == [1, 3, 4]
        assert ckpt.best_step() == 1
        restored = ckpt.restore(1, abstract_like(train_state()))
        assert_trees_equal(restored.state, train_state(1))
    with Checkpointer(tmp_path, keep_last=2, best_metric="reward") as ckpt:
        save_steps(ckpt, range(5, 7), {5: {"reward": 0.5}, 6: {"reward": 0.6}})
        assert ckpt.steps() == [1, 5, 6] and ckpt.best_step() == 1
    with Checkpointer(tmp_path, keep_last=1, best_metric="loss", best_mode="min") as ckpt:
        save_steps(ckpt, range(7, 10), {7: {"loss": 3.0}, 8: {"loss": 1.0}, 9: {"loss": 2.0}})
        assert ckpt.best_step() == 8 and 8 in ckpt.steps() and 9 in ckpt.steps()


def test_best_metric_must_be_reported(tmp_path):
    with Checkpointer(tmp_path, best_metric="reward") as ckpt:
        with pytest.raises(ValueError, match="best_metric 'reward' missing"):
            ckpt.save(0, train_state(), cursor={}, config={}, metrics={"loss": 1.0})


def truncate_state_data(step_dir: pathlib.Path) -> None:
    files = [p for p in (step_dir / "state").rglob("*") if p.is_file() and p.parent.name == "d"]
    assert files
    for path in files:
        with open(path, "r+b") as f:
            f.truncate(path.stat().st_size // 2)


@pytest.mark.parametrize("damage", ["truncate_state", "delete_cursor"])
def test_corrupt_latest_falls_back_to_the_previous_step(tmp_path, caplog, damage):
    with Checkpointer(tmp_path, keep_last=3) as ckpt:
        save_steps(ckpt, range(3))
    if damage == "truncate_state":
        truncate_state_data(tmp_path / "2")
    else:
        os.remove(tmp_path / "2" / "cursor" / "metadata")
    with Checkpointer(tmp_path, keep_last=3) as ckpt, caplog.at_level(logging.WARNING):
        restored = ckpt.restore_latest(abstract_like(train_state()))
    assert restored.step == 1 and restored.cursor["task_index"] == 1
    assert_trees_equal(restored.state, train_state(1))
    assert any("step 2" in r.getMessage() and "does not restore" in r.getMessage()
               for r in caplog.records)


def test_all_checkpoints_broken_is_an_error_and_none_is_none(tmp_path):
    with Checkpointer(tmp_path / "empty") as ckpt:
        assert ckpt.restore_latest(abstract_like(train_state())) is None
    with Checkpointer(tmp_path / "run", keep_last=2) as ckpt:
        save_steps(ckpt, range(2))
    for step in (0, 1):
        truncate_state_data(tmp_path / "run" / str(step))
    with Checkpointer(tmp_path / "run") as ckpt:
        with pytest.raises(RuntimeError, match="no checkpoint .* restores"):
            ckpt.restore_latest(abstract_like(train_state()))


def test_interrupted_save_is_ignored(tmp_path):
    with Checkpointer(tmp_path, keep_last=3) as ckpt:
        save_steps(ckpt, range(2))
    # What a save killed mid-way leaves: Orbax's temporary directory, never renamed to "2".
    partial = tmp_path / "2.orbax-checkpoint-tmp-1234567"
    (partial / "state").mkdir(parents=True)
    (partial / "state" / "_METADATA").write_text("{trunc")
    with Checkpointer(tmp_path, keep_last=3) as ckpt:
        assert ckpt.steps() == [0, 1]
        restored = ckpt.restore_latest(abstract_like(train_state()))
        assert restored.step == 1
        # The step number is free again: saving it works and becomes the latest.
        save_steps(ckpt, [2])
        assert ckpt.restore_latest(abstract_like(train_state())).step == 2
    assert not partial.exists()


def test_read_only_never_touches_a_save_in_flight(tmp_path):
    """An export or evaluation reading a live run's checkpoints must not clean up the Orbax
    temporary directory its save is writing into, nor create anything."""
    with Checkpointer(tmp_path / "run", keep_last=3) as ckpt:
        save_steps(ckpt, range(2))
    in_flight = tmp_path / "run" / "2.orbax-checkpoint-tmp-1234567"
    (in_flight / "state").mkdir(parents=True)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with Checkpointer(tmp_path / "run", read_only=True) as ckpt:
        assert ckpt.steps() == [0, 1]
        assert ckpt.restore_latest(abstract_like(train_state())).step == 1
        with pytest.raises(RuntimeError, match="read-only"):
            ckpt.save(2, train_state(), cursor={}, config={})
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    with pytest.raises(FileNotFoundError, match="no such checkpoint directory"):
        Checkpointer(tmp_path / "nowhere", read_only=True)
    assert not (tmp_path / "nowhere").exists()
