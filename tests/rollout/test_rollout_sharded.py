"""The embedded engine over a model sharded on 8 fake CPU devices (fsdp=4, tensor=2) samples
what the single-device engine samples, and takes a same-sharded learner's params without a copy.

JAX fixes its device count when first imported, so the checks run in a fresh interpreter (this
file as a script with --xla_force_host_platform_device_count=8) that prints JSON results.
"""

import json
import os
import subprocess
import sys

import pytest


def _worker() -> dict:
    import asyncio
    import tempfile

    import jax
    import numpy as np
    from flax import nnx

    from sandmle_jax.models import hf
    from sandmle_jax.models.qwen3 import Qwen3, Qwen3Config
    from sandmle_jax.parallel import mesh as mesh_lib
    from sandmle_jax.rollout.embedded import EmbeddedEngine
    from sandmle_jax.rollout.engine import GenerateRequest, SamplingParams

    assert jax.device_count() == 8, jax.devices()
    model_dir = tempfile.mkdtemp()
    hf.save_model(Qwen3(Qwen3Config.tiny(initializer_range=0.4), rngs=nnx.Rngs(0)), model_dir)
    requests = [GenerateRequest(f"r{i}", tuple(range(3, 9 + i)), SamplingParams(
        temperature=0.0 if i % 2 else 1.0, max_new_tokens=10, seed=i)) for i in range(4)]
    single = EmbeddedEngine.from_dir(model_dir, num_slots=4, max_len=64)
    mesh = mesh_lib.make_mesh(mesh_lib.MeshConfig(data=1, fsdp=4, expert=1, tensor=2))
    sharded = EmbeddedEngine.from_dir(model_dir, num_slots=4, max_len=64, mesh=mesh)
    try:
        ref = asyncio.run(single.generate(requests))
        out = asyncio.run(sharded.generate(requests))
        learner = hf.load_model(model_dir, mesh=mesh)
        asyncio.run(sharded.update_weights(learner))
        after = asyncio.run(sharded.generate(requests))
    finally:
        single.close()
        sharded.close()
    params = jax.tree.leaves(sharded._state)
    return {
        "same_tokens": [a.output_ids == b.output_ids for a, b in zip(ref, out)],
        "logprob_err": max(float(np.max(np.abs(np.subtract(a.output_logprobs,
                                                           b.output_logprobs))))
                           for a, b in zip(ref, out)),
        "split_params": sum(not p.sharding.is_fully_replicated for p in params),
        "no_copy": all(a is b for a, b in zip(params, jax.tree.leaves(nnx.state(learner)))),
        "same_after_swap": [a.output_ids == b.output_ids for a, b in zip(ref, after)],
    }


@pytest.fixture(scope="module")
def results():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
               JAX_PLATFORMS="cpu")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, __file__], env=env, cwd=root, capture_output=True,
                          text=True, timeout=500)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_sharded_engine_samples_like_single_device(results):
    assert all(results["same_tokens"]) and results["logprob_err"] <= 1e-5
    assert results["split_params"] > 0  # the model really is split across the devices


def test_same_sharding_weight_swap_keeps_the_learner_arrays(results):
    assert results["no_copy"] and all(results["same_after_swap"])


if __name__ == "__main__":
    print(json.dumps(_worker()))
