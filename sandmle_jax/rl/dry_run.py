"""A full-scale recipe checked without weights: mesh, every parameter and optimizer shape, the
shardings, the step's micro-batch shapes and the memory they need per device.

Uses abstract arrays only (`nnx.eval_shape`, `jax.eval_shape`), so Qwen3-30B-A3B's recipe is
checked on a laptop: a bad mesh, an axis that does not divide a dimension, or a bucket that
cannot hold the context fails here instead of hours into a job.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sandmle_jax.models import head_logprobs
from sandmle_jax.models.config import Qwen3Config
from sandmle_jax.models.qwen3 import Qwen3
from sandmle_jax.parallel import mesh as mesh_lib
from sandmle_jax.parallel import rules as rules_lib
from sandmle_jax.rl import batching, optim, trainer


def _bytes_per_device(abstract: Any, shardings: Any) -> int:
    total = 0
    for leaf, sharding in zip(jax.tree.leaves(abstract), jax.tree.leaves(shardings)):
        shard = sharding.shard_shape(leaf.shape)
        total += math.prod(shard) * np.dtype(leaf.dtype).itemsize
    return total


def dry_run(config) -> dict[str, Any]:
    """Builds the mesh and every shape of `config`'s training step; returns what it found."""
    trainer.validate_config(config)
    preset = config.model.preset
    if not preset or not hasattr(Qwen3Config, preset):
        raise ValueError(f"model.preset must name a Qwen3Config preset for a dry run, got "
                         f"{preset!r}")
    model_config = getattr(Qwen3Config, preset)()
    axes = {k: v for k, v in config.mesh.to_dict().items() if k != "enabled"}
    mesh = mesh_lib.make_mesh(mesh_lib.MeshConfig.from_dict(axes))
    abstract_model = nnx.eval_shape(lambda: Qwen3(model_config, rngs=nnx.Rngs(0),
                                                  param_dtype=jnp.float32))
    params = nnx.state(abstract_model, nnx.Param)
    param_shardings = rules_lib.state_shardings(params, mesh)
    pure_params = nnx.to_pure_dict(params)
    pure_shardings = nnx.to_pure_dict(param_shardings)
    optimizer = optim.make_optimizer(optim.OptimizerConfig.from_dict(
        config.grpo.optimizer.to_dict()))
    opt_state = jax.eval_shape(optimizer.init, pure_params)
    num_params = sum(math.prod(x.shape) for x in jax.tree.leaves(pure_params))
    param_bytes = _bytes_per_device(pure_params, pure_shardings)
    # AdamW moments are shaped (and sharded) like the params.
    opt_bytes = 2 * param_bytes
    b = batching.BatchingConfig(**config.batching.to_dict())
    data_parallel = mesh.shape["data"] * mesh.shape["fsdp"]
    if b.rows % data_parallel:
        raise ValueError(f"batching.rows ({b.rows}) must divide by the data-parallel size "
                         f"(data x fsdp = {data_parallel})")
    micro_shapes = [(b.rows, length) for length in b.bucket_lengths]
    chunk = config.model.logit_chunk_tokens or None
    logit_rows = max(r * head_logprobs.chunk_positions(r, t, chunk) for r, t in micro_shapes)
    logits_bytes = -(-logit_rows // data_parallel) * model_config.vocab_size * 4
    return {
        "preset": preset, "mesh": dict(mesh.shape), "devices": mesh.size,
        "parameters": num_params,
        "parameter_bytes_per_device": param_bytes,
        "optimizer_bytes_per_device": opt_bytes,
        "optimizer_leaves": len(jax.tree.leaves(opt_state)),
        "micro_batch_shapes": micro_shapes,
        "largest_logits_bytes_per_device": logits_bytes,
    }
