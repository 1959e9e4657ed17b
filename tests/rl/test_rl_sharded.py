"""Sharded (8 fake CPU devices, data x fsdp x tensor mesh) learner, log-probs in chunks,
equals the unsharded one with whole logits.

JAX fixes its device count at start-up, so the check runs this file as a script in a child
process with `--xla_force_host_platform_device_count=8` and the test reads its JSON verdict.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]


def compare_sharded_and_unsharded() -> dict:
    import jax
    from flax import nnx

    from sandmle_jax.models.qwen3 import Qwen3, Qwen3Config
    from sandmle_jax.parallel.mesh import MeshConfig, make_mesh
    from sandmle_jax.rl.batching import BatchingConfig, make_learner_batch
    from sandmle_jax.rl.learner import Learner, LossConfig, nnx_apply_fn, nnx_param_shardings
    from sandmle_jax.rl.optim import OptimizerConfig, make_optimizer

    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    from test_rl_learner import random_trajs  # noqa: E402 - the same random trajectories

    assert len(jax.devices()) == 8
    model = Qwen3(Qwen3Config.tiny(vocab_size=16), rngs=nnx.Rngs(0))
    apply_fn, params = nnx_apply_fn(model)
    # eps=1e-3 keeps Adam from amplifying reduction-order noise in near-zero gradients (with
    # eps=1e-8 an update is ~lr*sign(g) whatever |g| is), so params compare at fp32 precision.
    optimizer = make_optimizer(OptimizerConfig(learning_rate=1e-2, eps=1e-3))
    loss = LossConfig(tis_cap=2.0)
    batch = make_learner_batch(random_trajs(0), BatchingConfig(bucket_lengths=(16, 32, 64), rows=4),
                               group_size=4)
    mesh = make_mesh(MeshConfig(data=2, fsdp=2, tensor=2))
    shardings = nnx_param_shardings(model, mesh)

    plain = Learner(apply_fn, optimizer, loss)
    # The sharded learner also computes its log-probs in chunks of 6 positions x 4 rows.
    sharded = Learner(apply_fn, optimizer, loss, mesh=mesh, param_shardings=shardings,
                      logit_chunk_tokens=24)
    out = {}
    for name, learner in (("plain", plain), ("sharded", sharded)):
        state = learner.init_state(jax.tree.map(lambda x: x.copy(), params), seed=0)
        grads, _ = learner.compute_gradients(state.params, batch)
        out[name + "_grads"] = [np.asarray(x).tolist() for x in jax.tree.leaves(grads)]
        state, metrics = learner.train_step(state, batch)
        state, metrics = learner.train_step(state, batch)
        out[name + "_params"] = [np.asarray(x).tolist() for x in jax.tree.leaves(state.params)]
        out[name + "_loss"] = metrics["loss"]
        if name == "sharded":
            fresh = learner.init_state(params, seed=0)
            out["fresh_counters_on_mesh"] = all(
                isinstance(x.sharding, jax.sharding.NamedSharding) and x.sharding.mesh == mesh
                for x in (fresh.step, fresh.rng))
            out["shardings_kept"] = all(
                x.sharding.is_equivalent_to(s, x.ndim)
                for x, s in zip(jax.tree.leaves(state.params), jax.tree.leaves(shardings)))
            out["num_sharded_params"] = sum(any(a is not None for a in s.spec)
                                            for s in jax.tree.leaves(shardings))
            mu = [x for x in jax.tree.leaves(state.opt_state) if x.ndim >= 2]
            out["opt_state_sharded"] = any(
                any(a is not None for a in x.sharding.spec) for x in mu)
    return out


def test_sharded_step_equals_unsharded():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
               JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["shardings_kept"] and out["num_sharded_params"] > 0 and out["opt_state_sharded"]
    # A multi-process checkpoint before the first update needs them global (Orbax refuses
    # host-local arrays there): found by the README's two-process command.
    assert out["fresh_counters_on_mesh"]
    for a, b in zip(out["sharded_grads"], out["plain_grads"]):
        np.testing.assert_allclose(np.array(a), np.array(b), rtol=1e-4, atol=1e-6)
    for a, b in zip(out["sharded_params"], out["plain_params"]):
        np.testing.assert_allclose(np.array(a), np.array(b), rtol=1e-4, atol=1e-6)
    assert abs(out["sharded_loss"] - out["plain_loss"]) < 1e-5


if __name__ == "__main__":
    print(json.dumps(compare_sharded_and_unsharded()))
