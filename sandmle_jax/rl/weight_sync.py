"""Getting the learner's weights to the rollout engine, and out as an HF directory.

Embedded engine: an in-memory swap of a copy of the params (the learner donates its state on
the next step, so the engine must not hold the learner's own buffers). SGLang: the learner writes
an HF directory under the shared `rollout.weights_dir`, then the client has every server load it
between pause and continue (`/update_weights_from_disk`).
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from sandmle_jax import paths
from sandmle_jax.errors import ConfigError
from sandmle_jax.models import hf
from sandmle_jax.rollout import engine as engine_lib


def module_with(module: nnx.Module, params: Any) -> nnx.Module:
    """A copy of `module` holding `params` (a pure dict like `nnx_apply_fn`'s)."""
    graphdef, state = nnx.split(module)
    state = jax.tree.map(lambda x: x, state)
    nnx.replace_by_pure_dict(state, jax.tree.map(jnp.copy, params))
    return nnx.merge(graphdef, state)


async def push(engine: engine_lib.Engine, module: nnx.Module, params: Any, *, version: str,
               config, workdir: pathlib.Path, compute_dtype: str = "float32",
               notify: bool = True) -> str:
    """Makes `engine` serve `params` as weight version `version`.

    notify=False (SGLang, every process but the first of a multi-process job) only takes part in
    writing the directory, which is collective; the servers are told once.

    For SGLang the directory is written in the compute dtype (bf16 for the large recipes): the
    servers run in it anyway, and fp32 masters would double every sync (about 33 GB a step
    for Qwen3-8B instead of 16 GB).
    """
    if config.engine == "embedded":
        return await engine.update_weights(nnx.state(module_with(module, params)), version)
    root = pathlib.Path(config.weights_dir) if config.weights_dir else workdir / "weights"
    out = root / f"v{version}"
    hf.save_model(module_with(module, params), str(out), dtype=sync_dtype(compute_dtype))
    return await engine.update_weights(str(out), version) if notify else version


def sync_dtype(compute_dtype: str) -> Any:
    """The dtype a weight sync to SGLang is written in: the model's compute dtype."""
    return jnp.bfloat16 if compute_dtype == "bfloat16" else jnp.float32


def export(module: nnx.Module, params: Any, out_dir: pathlib.Path,
           base_model_dir: pathlib.Path) -> None:
    """The policy as an HF Qwen3 directory, with the base model's tokenizer files."""
    hf.save_model(module_with(module, params), str(out_dir), tokenizer_dir=str(base_model_dir))


def export_checkpoint(checkpoint_dir: str, out_dir: str, *, mesh=None, dtype=None,
                      max_shard_bytes: int | None = None) -> None:
    """A run's Orbax checkpoint (its newest step) -> an HF directory.

    The base model (structure and tokenizer) is the run's `model.hf_dir`, or the tiny model the
    run built in `<workdir>/base_model` (checkpoints live in `<workdir>/checkpoints/<phase>`).
    The checkpoint is opened read-only: the run may be saving into it.
    """
    from sandmle_jax.rl import checkpoint  # the learner's checkpoint format

    checkpoint_dir = paths.absolute(checkpoint_dir)
    if not checkpoint_dir.is_dir():
        raise ConfigError(f"{checkpoint_dir}: no such checkpoint directory")
    with checkpoint.Checkpointer(checkpoint_dir, read_only=True) as ckpt:
        steps = ckpt.steps()
        if not steps:
            raise ConfigError(f"{checkpoint_dir} holds no finished checkpoint step")
        restored = ckpt.restore(steps[-1], None)
    base = restored.config["model"]["hf_dir"] or str(checkpoint_dir.parents[1] / "base_model")
    module = hf.load_model(base, mesh=mesh)
    kwargs = {} if max_shard_bytes is None else {"max_shard_bytes": max_shard_bytes}
    hf.save_model(module_with(module, restored.state["params"]), str(out_dir), dtype=dtype,
                  tokenizer_dir=base, **kwargs)


def sft_export(workdir: str | os.PathLike) -> pathlib.Path:
    """A finished run's newest SFT checkpoint as an HF directory, `<workdir>/sft_export`
    (exported on first use): the SFT-only policy that benchmarks set against the GRPO one."""
    workdir = paths.absolute(workdir)
    out = workdir / "sft_export"
    if not (out / "config.json").is_file():
        export_checkpoint(str(workdir / "checkpoints" / "sft"), str(out))
    return out
