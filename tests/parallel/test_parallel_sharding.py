"""Forward and gradients on 8 fake CPU devices equal the single-device results.

JAX fixes its device count when first imported and other test modules import it earlier in the
same pytest process, so the checks run in a fresh interpreter (this file run as a script with
--xla_force_host_platform_device_count=8) that prints JSON results for the asserts below.
"""

import json
import os
import subprocess
import sys

import pytest

from objective import masked_nll

MESHES = {"fsdp4_tensor2": dict(data=1, fsdp=4, expert=1, tensor=2),
          "data2_fsdp2_expert2": dict(data=2, fsdp=2, expert=2, tensor=1)}
# dense_130: 130 tokens, so the einsum attention runs in its causal query blocks.
MODELS = ("dense", "dense_130", "moe")


def _worker() -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from sandmle_jax.models import hf
    from sandmle_jax.models.qwen3 import Qwen3, Qwen3Config
    from sandmle_jax.parallel import mesh as mesh_lib
    from sandmle_jax.parallel import rules

    assert jax.device_count() == 8, jax.devices()
    rng = np.random.RandomState(0)

    def batch(tokens):
        ids = jnp.asarray(rng.randint(2, 256, (8, tokens)), jnp.int32)
        return ids, jnp.asarray(np.arange(tokens)[None] < rng.randint(2, tokens + 1, (8, 1)),
                                jnp.int32)

    dense = Qwen3Config.tiny(tie_word_embeddings=False)
    cases = {"dense": (dense, *batch(6)), "dense_130": (dense, *batch(130)),
             "moe": (Qwen3Config.tiny_moe(), *batch(6))}
    grad_fn = nnx.jit(nnx.value_and_grad(masked_nll))
    forward = nnx.jit(lambda m, i, a: m(i, attention_mask=a))
    results = {}
    for model_name in MODELS:
        config, ids, mask = cases[model_name]
        model = Qwen3(config, rngs=nnx.Rngs(0))
        ref_logits = np.asarray(forward(model, ids, mask))
        ref_loss, ref_grads = grad_fn(model, ids, mask)
        ref_grads = nnx.to_flat_state(ref_grads)
        save_dir = os.path.join(os.environ["TEST_TMP"], model_name)
        hf.save_model(model, save_dir)
        for mesh_name, axes in MESHES.items():
            mesh = mesh_lib.make_mesh(mesh_lib.MeshConfig(**axes))
            loaded = hf.load_model(save_dir, mesh=mesh)  # straight into shards
            batch_sharding = rules.named_sharding(("activation_batch", "activation_length"),
                                                  ids.shape, mesh)
            ids_s = jax.device_put(ids, batch_sharding)
            mask_s = jax.device_put(mask, batch_sharding)
            with rules.use_mesh_rules(mesh):
                logits = np.asarray(forward(loaded, ids_s, mask_s))
                loss, grads = grad_fn(loaded, ids_s, mask_s)
            grads = nnx.to_flat_state(grads)
            grad_err = max(float(np.max(np.abs(np.asarray(g[...]) - np.asarray(r[...]))))
                           for (_, g), (_, r) in zip(grads, ref_grads))
            layer = loaded.layers[0]
            params = {"q_proj": layer.self_attn.q_proj[...],
                      "embed_tokens": loaded.embed_tokens[...], "lm_head": loaded.lm_head[...]}
            if model_name == "moe":
                params["experts_gate_proj"] = layer.mlp.experts_gate_proj[...]
            # The physical layout: each device's block of the array.
            shard_shapes = {k: list(v.sharding.shard_shape(v.shape)) for k, v in params.items()}
            results[f"{model_name}/{mesh_name}"] = {
                    "logits_err": float(np.max(np.abs(logits - ref_logits))),
                    "loss": float(loss), "ref_loss": float(ref_loss), "grad_err": grad_err,
                    "grad_scale": max(float(np.max(np.abs(np.asarray(r[...]))))
                                      for _, r in ref_grads),
                    "sharded_devices": len(layer.self_attn.q_proj[...].sharding.device_set),
                    "shard_shapes": shard_shapes}
    for mesh_name, axes in MESHES.items():
        results[f"experts/{mesh_name}"] = _experts_per_device(mesh_lib.make_mesh(
                mesh_lib.MeshConfig(**axes)))
    return results


def _experts_per_device(mesh) -> dict:
    """One expert layer's forward and backward on 4,096 tokens (top-2 of 8) under the mesh: the
    error against one device and the (blocks, rows, width) of each device's expert matmuls."""
    import re

    import jax
    import jax.numpy as jnp

    from sandmle_jax.models import moe_experts
    from sandmle_jax.parallel import rules

    tokens, d, f, num_experts, top_k = 4096, 64, 32, 8, 2
    keys = jax.random.split(jax.random.key(0), 5)
    flat = jax.random.normal(keys[0], (tokens, d))
    experts = tuple(0.1 * jax.random.normal(key, shape) for key, shape in zip(
            keys[1:4], [(num_experts, d, f), (num_experts, d, f), (num_experts, f, d)]))
    top_probs, top_experts = jax.lax.top_k(
            jax.nn.softmax(jax.random.normal(keys[4], (tokens, num_experts))), top_k)
    weights = jnp.cos(jnp.arange(tokens * d, dtype=jnp.float32)).reshape(tokens, d)

    def loss(flat, experts, top_experts, top_probs):
        y = moe_experts.apply_experts(flat, experts, top_experts, top_probs, None)
        return jnp.sum(y * weights)

    step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 3)))
    reference = step(flat, experts, top_experts, top_probs)
    by_token = lambda x: jax.device_put(x, rules.named_sharding(
            ("activation_batch", None), x.shape, mesh))
    experts = tuple(jax.device_put(w, rules.named_sharding(names, w.shape, mesh)) for w, names in
                    zip(experts, [("exp", "embed", "moe_mlp"), ("exp", "embed", "moe_mlp"),
                                  ("exp", "moe_mlp", "embed")]))
    args = (by_token(flat), experts, by_token(top_experts), by_token(top_probs))
    with rules.use_mesh_rules(mesh):
        hlo = step.lower(*args).compile().as_text()
        sharded = step(*args)
    error = max(float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))
                for a, b in zip(jax.tree.leaves(sharded), jax.tree.leaves(reference)))
    matmuls = {tuple(map(int, shape.split(","))) for shape in re.findall(
            r"= f32\[(\d+,\d+,\d+)\]\{[\d,]+\} (?:dot|fusion)\(", hlo)}
    return {"relative_error": error, "pairs": tokens * top_k, "experts": num_experts,
            "expert_width": f, "block_matmuls": sorted(matmuls)}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
               JAX_PLATFORMS="cpu", TEST_TMP=str(tmp_path_factory.mktemp("sharding")))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, __file__], env=env, cwd=root, capture_output=True,
                          text=True, timeout=500)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("mesh_name", sorted(MESHES))
@pytest.mark.parametrize("model_name", MODELS)
def test_sharded_forward_and_grads_equal_single_device(results, model_name, mesh_name):
    r = results[f"{model_name}/{mesh_name}"]
    assert r["sharded_devices"] == 8
    assert r["logits_err"] < 1e-5
    assert abs(r["loss"] - r["ref_loss"]) < 1e-5 * abs(r["ref_loss"])
    assert r["grad_err"] < 1e-5 * r["grad_scale"]


@pytest.mark.parametrize("mesh_name", sorted(MESHES))
def test_each_device_computes_only_its_own_tokens_experts(results, mesh_name):
    """The experts run per batch shard (moe_experts.apply_experts' shard_map): a device's block
    matmuls hold its shard's pairs, not all of them, and the tensor axis splits their width."""
    r = results[f"experts/{mesh_name}"]
    assert r["relative_error"] < 1e-5
    mesh = MESHES[mesh_name]
    batch_shards = mesh["data"] * mesh["fsdp"] * mesh["expert"]
    # Token-side matmuls (blocks, rows, hidden or width) of this device: every routed pair of
    # the shard plus at most a block of padding per expert.
    rows = {blocks * rows for blocks, rows, _ in r["block_matmuls"]}
    largest = max(rows)
    assert largest < r["pairs"], r["block_matmuls"]  # not the global set of pairs
    assert largest >= r["pairs"] // batch_shards
    widths = {width for *_, width in r["block_matmuls"]}
    assert r["expert_width"] // mesh["tensor"] in widths
    assert (r["expert_width"] in widths) == (mesh["tensor"] == 1)


def test_parameters_follow_the_rules_table(results):
    """Golden shard shapes under DEFAULT_RULES: embed->fsdp, heads/vocab->tensor, experts->expert.

    Shapes: q_proj (D=64, N=4, H=16), embed_tokens (V=256, D), lm_head (D, V), experts (E=4, D, 32).
    """
    assert results["dense/fsdp4_tensor2"]["shard_shapes"] == {
            "q_proj": [16, 2, 16], "embed_tokens": [128, 16], "lm_head": [16, 128]}
    assert results["moe/data2_fsdp2_expert2"]["shard_shapes"] == {
            "q_proj": [32, 4, 16], "embed_tokens": [256, 32], "lm_head": [32, 256],
            "experts_gate_proj": [2, 32, 32]}


if __name__ == "__main__":
    print(json.dumps(_worker()))
