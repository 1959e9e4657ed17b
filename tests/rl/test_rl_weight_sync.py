"""Weight syncs to SGLang are written in the compute dtype: half the bytes in bf16, the same
weights as the learner's rounded once."""

import asyncio
import pathlib

import jax.numpy as jnp
import ml_collections
import numpy as np
import safetensors.numpy
from flax import nnx

from sandmle_jax.models import hf
from sandmle_jax.models.qwen3 import Qwen3, Qwen3Config
from sandmle_jax.rl import weight_sync


class _Recorder:
    """Stands in for the SGLang client: records the directory it is told to load."""

    def __init__(self):
        self.loaded = []

    async def update_weights(self, weights, version=None):
        self.loaded.append(weights)
        return version


def _sync(tmp_path, compute_dtype):
    module = Qwen3(Qwen3Config.tiny(), rngs=nnx.Rngs(0))
    params = nnx.to_pure_dict(nnx.state(module, nnx.Param))
    engine = _Recorder()
    config = ml_collections.ConfigDict(dict(engine="sglang", weights_dir=str(tmp_path / "w")))
    asyncio.run(weight_sync.push(engine, module, params, version="3", config=config,
                                 workdir=tmp_path, compute_dtype=compute_dtype))
    return module, engine.loaded[0]


def _tensors(directory):
    out = {}
    for path in sorted(pathlib.Path(directory).glob("*.safetensors")):
        out.update(safetensors.numpy.load_file(str(path)))
    return out


def test_bf16_sync_halves_the_bytes_and_rounds_once(tmp_path):
    module, bf16_dir = _sync(tmp_path / "a", "bfloat16")
    _, fp32_dir = _sync(tmp_path / "b", "float32")
    bf16, fp32 = _tensors(bf16_dir), _tensors(fp32_dir)
    assert set(bf16) == set(fp32)
    assert all(t.dtype == np.dtype(jnp.bfloat16) for t in bf16.values())
    assert all(t.dtype == np.float32 for t in fp32.values())
    assert sum(t.nbytes for t in bf16.values()) * 2 == sum(t.nbytes for t in fp32.values())
    for key, t in fp32.items():
        np.testing.assert_array_equal(bf16[key], t.astype(jnp.bfloat16))
    loaded = hf.load_model(bf16_dir, param_dtype=jnp.float32)
    assert isinstance(loaded, Qwen3) and bf16_dir.endswith("v3")


def test_a_process_that_does_not_notify_writes_its_part_and_tells_no_server(tmp_path):
    """In a multi-process job every process writes the directory (collectively) and only
    process 0 tells the SGLang servers (notify=False on the others)."""
    module = Qwen3(Qwen3Config.tiny(), rngs=nnx.Rngs(0))
    params = nnx.to_pure_dict(nnx.state(module, nnx.Param))
    engine = _Recorder()
    config = ml_collections.ConfigDict(dict(engine="sglang", weights_dir=str(tmp_path / "w")))
    version = asyncio.run(weight_sync.push(engine, module, params, version="4", config=config,
                                           workdir=tmp_path, notify=False))
    assert version == "4" and engine.loaded == []
    assert (tmp_path / "w" / "v4" / "config.json").is_file()
