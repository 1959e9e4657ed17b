"""Bytes and seconds of one weight sync to an SGLang-protocol server, fp32 vs bf16 files.

    PYTHONPATH=. python benchmarks/weight_sync.py [--preset=tiny_cpu|qwen3_0_6b] [--repeats=3]

What the trainer does after each GRPO step with `rollout.engine=sglang`: `weight_sync.push`
writes the learner's params as an HF directory, then the client has the server pause, load it
(`/update_weights_from_disk`) and continue. The server here is ours (`launch.serve`'s
SGLangServer over the embedded engine, in this process, over loopback HTTP); SGLang itself
needs CUDA. Prints bytes written, write seconds and pause-load-continue seconds per dtype, the
ratios bf16/fp32, and the bytes a sync of the large presets would write, from their shapes.
"""

import argparse
import asyncio
import importlib.util
import pathlib
import statistics
import tempfile
import time

import jax
import ml_collections
import numpy as np
from flax import nnx

from sandmle_jax.models import hf
from sandmle_jax.models.qwen3 import Qwen3, Qwen3Config
from sandmle_jax.rl import weight_sync
from sandmle_jax.rollout.embedded import EmbeddedEngine
from sandmle_jax.rollout.server import SGLangServer, serve_in_thread
from sandmle_jax.rollout.sglang_client import SGLangEngine
import run_facts

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _config(preset: str) -> Qwen3Config:
    """tiny_cpu: the main job's model (configs/tiny_cpu.py, `model.tiny`); else a preset."""
    if preset == "tiny_cpu":
        spec = importlib.util.spec_from_file_location("tiny", ROOT / "configs" / "tiny_cpu.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        t = module.get_config().model.tiny
        return Qwen3Config.tiny(vocab_size=t.vocab_size, hidden_size=t.hidden_size,
                                intermediate_size=t.intermediate_size,
                                num_hidden_layers=t.num_layers, num_attention_heads=t.num_heads,
                                num_key_value_heads=t.num_kv_heads, head_dim=t.head_dim)
    return getattr(Qwen3Config, preset)()


def _parameters(config: Qwen3Config) -> int:
    abstract = nnx.eval_shape(lambda: Qwen3(config, rngs=nnx.Rngs(0)))
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(abstract, nnx.Param)))


async def _one_sync(client, module, params, version, root, dtype) -> tuple[int, float, float]:
    config = ml_collections.ConfigDict(dict(engine="sglang", weights_dir=str(root)))
    start = time.perf_counter()
    await weight_sync.push(_WriteOnly(), module, params, version=version, config=config,
                           workdir=root, compute_dtype=dtype)
    written = time.perf_counter() - start
    out = root / f"v{version}"
    size = sum(p.stat().st_size for p in out.glob("*.safetensors"))
    start = time.perf_counter()
    await client.update_weights(str(out), version)
    return size, written, time.perf_counter() - start


class _WriteOnly:
    """push() minus the load: the load is timed on its own, through the real client."""

    async def update_weights(self, weights, version=None):
        return version


def main():
    print(run_facts.header())
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="tiny_cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = _config(args.preset)
    module = Qwen3(config, rngs=nnx.Rngs(0))
    params = nnx.to_pure_dict(nnx.state(module, nnx.Param))
    with tempfile.TemporaryDirectory(prefix="weight-sync-") as tmp:
        root = pathlib.Path(tmp)
        hf.save_model(module, str(root / "base"))
        engine = EmbeddedEngine.from_dir(str(root / "base"), num_slots=2, max_len=64)
        results = {}
        try:
            with serve_in_thread(SGLangServer(engine, str(root / "base"))) as url:
                async def run():
                    async with SGLangEngine([url], control_timeout_s=3600) as client:
                        for dtype in ("float32", "bfloat16"):
                            results[dtype] = [await _one_sync(client, module, params,
                                                              f"{dtype}{i}", root, dtype)
                                              for i in range(args.repeats)]
                asyncio.run(run())
        finally:
            engine.close()
    print(f"preset {args.preset}: {_parameters(config):,} parameters; median of "
          f"{args.repeats} syncs each")
    summary = {}
    for dtype, rows in results.items():
        size = rows[0][0]
        write = statistics.median(r[1] for r in rows)
        load = statistics.median(r[2] for r in rows)
        summary[dtype] = (size, write, load)
        print(f"  {dtype:9s} {size / 1e6:10.2f} MB  write {write:7.3f} s  "
              f"pause+load+continue {load:7.3f} s")
    (b_size, b_write, b_load), (f_size, f_write, f_load) = summary["bfloat16"], summary["float32"]
    print(f"  bf16/fp32: bytes {b_size / f_size:.3f}, write {b_write / f_write:.2f}, "
          f"load {b_load / f_load:.2f}")
    for preset in ("qwen3_0_6b", "qwen3_8b", "qwen3_14b"):
        n = _parameters(getattr(Qwen3Config, preset)())
        print(f"  {preset}: {n:,} parameters: fp32 {n * 4 / 1e9:.2f} GB, "
              f"bf16 {n * 2 / 1e9:.2f} GB per sync")


if __name__ == "__main__":
    main()
