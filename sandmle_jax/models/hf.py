"""Hugging Face checkpoint directories <-> sharded `Qwen3` models.

`load_model` reads `config.json` and `*.safetensors` (one file or an indexed set) and builds each
parameter with `jax.make_array_from_callback`: every device's shard is cut from a memory-mapped
tensor, so a host reads at most one HF tensor at a time (only the experts its shards need for
MoE weights) and never holds the whole model. `save_model` writes HF names and layouts (one key
per expert for MoE), a `config.json`, `generation_config.json` and the tokenizer files, loadable
by `transformers.AutoModelForCausalLM` and SGLang.
"""

import dataclasses
import glob
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.experimental import multihost_utils

from sandmle_jax.models import safetensors_io
from sandmle_jax.models.config import Qwen3Config
from sandmle_jax.models.qwen3 import Qwen3
from sandmle_jax.models.tokenizer import copy_tokenizer_files
from sandmle_jax.parallel import rules as sharding_rules

# Keys some exporters add that carry no parameters.
_IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)
_DEFAULT_SHARD_BYTES = 5 * 2**30
_SAVE_DTYPES = {"float32": np.dtype(np.float32), "bfloat16": np.dtype(jnp.bfloat16),
                "float16": np.dtype(np.float16)}


@dataclasses.dataclass(frozen=True)
class _HfTensor:
    """Where one of our parameters lives in an HF checkpoint and how it is laid out there.

    layout: "copy" (same array), "linear" (HF [out, in] = ours.T), "in_heads" (ours [D, heads,
    H] = HF [heads*H, D].T), "out_heads" (ours [heads, H, D] = HF [D, heads*H].T), "experts"
    (ours [E, in, out] stacks the per-expert HF [out, in] keys, transposed).
    """

    keys: tuple[str, ...]
    layout: str


def hf_layout(config: Qwen3Config) -> dict[tuple, _HfTensor]:
    """Our flat parameter path -> its HF tensor(s)."""
    table = {("embed_tokens",): _HfTensor(("model.embed_tokens.weight",), "copy"),
             ("norm", "weight"): _HfTensor(("model.norm.weight",), "copy")}
    if not config.tie_word_embeddings:
        table[("lm_head",)] = _HfTensor(("lm_head.weight",), "linear")
    for i in range(config.num_hidden_layers):
        hf, ours = f"model.layers.{i}", ("layers", i)
        for norm in ("input_layernorm", "post_attention_layernorm"):
            table[(*ours, norm, "weight")] = _HfTensor((f"{hf}.{norm}.weight",), "copy")
        for norm in ("q_norm", "k_norm"):
            table[(*ours, "self_attn", norm, "weight")] = _HfTensor(
                    (f"{hf}.self_attn.{norm}.weight",), "copy")
        for proj in ("q_proj", "k_proj", "v_proj"):
            table[(*ours, "self_attn", proj)] = _HfTensor(
                    (f"{hf}.self_attn.{proj}.weight",), "in_heads")
        table[(*ours, "self_attn", "o_proj")] = _HfTensor(
                (f"{hf}.self_attn.o_proj.weight",), "out_heads")
        if config.is_moe_layer(i):
            table[(*ours, "mlp", "gate")] = _HfTensor((f"{hf}.mlp.gate.weight",), "linear")
            for proj in ("gate_proj", "up_proj", "down_proj"):
                keys = tuple(f"{hf}.mlp.experts.{e}.{proj}.weight"
                             for e in range(config.num_experts))
                table[(*ours, "mlp", f"experts_{proj}")] = _HfTensor(keys, "experts")
        else:
            for proj in ("gate_proj", "up_proj", "down_proj"):
                table[(*ours, "mlp", proj)] = _HfTensor((f"{hf}.mlp.{proj}.weight",), "linear")
    return table


def _hf_to_ours(array: np.ndarray, layout: str, shape: tuple[int, ...]) -> np.ndarray:
    if layout == "copy":
        return array
    return array.T.reshape(shape)  # linear, in_heads, out_heads


def _ours_to_hf(array: np.ndarray, layout: str) -> np.ndarray:
    if layout == "copy":
        return array
    if layout == "in_heads":
        return array.reshape(array.shape[0], -1).T
    if layout == "out_heads":
        return array.reshape(-1, array.shape[-1]).T
    return array.T  # linear


def load_config(model_dir: str) -> Qwen3Config:
    path = os.path.join(model_dir, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(
                f"{model_dir} has no config.json; pass a Hugging Face model directory")
    with open(path) as f:
        return Qwen3Config.from_hf_dict(json.load(f))


def _open_checkpoint(model_dir: str) -> dict[str, safetensors_io.SafetensorsFile]:
    """HF key -> the file holding it, over every *.safetensors in the directory."""
    paths = sorted(glob.glob(os.path.join(model_dir, "*.safetensors")))
    if not paths:
        raise FileNotFoundError(f"{model_dir} has no *.safetensors files (PyTorch .bin checkpoints "
                                "are not supported: re-save with safe_serialization=True)")
    where = {}
    for path in paths:
        handle = safetensors_io.SafetensorsFile(path)
        for key in handle.keys():
            where[key] = handle
    return where


def _check_keys(table: dict[tuple, _HfTensor], available: set[str]) -> None:
    wanted = {key for spec in table.values() for key in spec.keys}
    missing = sorted(wanted - available)
    if missing:
        raise ValueError(f"checkpoint lacks {len(missing)} tensors the config needs, e.g. "
                         f"{missing[:5]}; is config.json from the same model?")
    extra = sorted(k for k in available - wanted
                   if not k.endswith(_IGNORED_SUFFIXES) and k != "lm_head.weight")
    if extra:
        raise ValueError(f"checkpoint has {len(extra)} tensors this Qwen3 config does not use, "
                         f"e.g. {extra[:5]}; is config.json from the same model?")


def _sharded_param(spec: _HfTensor, files, shape, dtype, sharding) -> jax.Array:
    """One parameter as a global array whose local shards are cut from the checkpoint."""
    converted: dict[str, np.ndarray] = {}  # one tensor, reused for the devices that share it

    def shard(index: tuple[slice, ...]) -> np.ndarray:
        if spec.layout == "experts":
            experts = range(shape[0])[index[0]]
            parts = [files[spec.keys[e]].tensor(spec.keys[e]).T[index[1:]] for e in experts]
            return np.stack(parts).astype(dtype)
        if "full" not in converted:
            raw = files[spec.keys[0]].tensor(spec.keys[0])
            if raw.size != np.prod(shape):
                raise ValueError(f"{spec.keys[0]} has shape {raw.shape}; the config expects "
                                 f"{int(np.prod(shape))} values for our shape {shape}")
            converted["full"] = _hf_to_ours(raw, spec.layout, shape)
        return np.asarray(converted["full"][index], dtype=dtype)

    return jax.make_array_from_callback(shape, sharding, shard)


def load_model(model_dir: str, *, mesh: jax.sharding.Mesh | None = None,
               rules: sharding_rules.Rules = sharding_rules.DEFAULT_RULES,
               param_dtype=jnp.float32, dtype=None, remat: bool = False) -> Qwen3:
    """A `Qwen3` with the checkpoint's weights, sharded over `mesh` by `rules`.

    Without a mesh the weights go to the first local device.

    `param_dtype` is the stored dtype (checkpoint values are cast to it), `dtype` the compute
    dtype (default: param_dtype). `model(input_ids)` returns logits [batch, tokens, vocab].
    """
    config = load_config(model_dir)
    abstract = nnx.eval_shape(lambda: Qwen3(config, rngs=nnx.Rngs(0), param_dtype=param_dtype,
                                            dtype=dtype, remat=remat))
    graphdef, state = nnx.split(abstract)
    if mesh is None:
        device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        shardings = jax.tree.map(lambda v: v.replace(device), state,
                                 is_leaf=lambda x: isinstance(x, nnx.Variable))
    else:
        shardings = sharding_rules.state_shardings(state, mesh, rules)
    files = _open_checkpoint(model_dir)
    table = hf_layout(config)
    _check_keys(table, set(files))
    sharding_of = dict(nnx.to_flat_state(shardings))
    loaded = []
    for path, variable in nnx.to_flat_state(state):
        array = _sharded_param(table[path], files, variable.shape, variable.dtype,
                               sharding_of[path].get_value())
        loaded.append((path, variable.replace(array)))
    return nnx.merge(graphdef, nnx.from_flat_state(loaded))


def _to_host(array: jax.Array) -> np.ndarray:
    """The full value on this host (a collective across processes for multi-host arrays)."""
    if array.is_fully_addressable:
        return np.asarray(jax.device_get(array))
    return np.asarray(multihost_utils.process_allgather(array, tiled=True))


def save_model(model: Qwen3, out_dir: str, *, dtype=None, tokenizer_dir: str | None = None,
               max_shard_bytes: int = _DEFAULT_SHARD_BYTES) -> None:
    """Writes an HF Qwen3 / Qwen3-MoE directory (call on every process; process 0 writes).

    dtype: the saved dtype (default: the parameters'). tokenizer_dir: where to copy tokenizer
    files and generation_config.json from (typically the directory the model was loaded from).
    """
    config = model.config
    table = hf_layout(config)
    params = dict(nnx.to_flat_state(nnx.state(model, nnx.Param)))
    if set(params) != set(table):
        raise ValueError(f"model parameters do not match the HF layout of its config: "
                         f"{sorted(set(params) ^ set(table))[:5]}")
    save_dtype = np.dtype(dtype or params[("embed_tokens",)][...].dtype)
    if save_dtype not in _SAVE_DTYPES.values():
        raise ValueError(f"cannot save in {save_dtype}; use one of {sorted(_SAVE_DTYPES)}")
    entries = []  # (hf key, hf shape, our path, expert index or None)
    for path, spec in table.items():
        shape = params[path].shape
        if spec.layout == "experts":
            for e, key in enumerate(spec.keys):
                entries.append((key, (shape[2], shape[1]), path, e))
        else:
            hf_shape = _ours_to_hf(np.empty(shape, np.bool_), spec.layout).shape
            entries.append((spec.keys[0], hf_shape, path, None))
    shards = _plan_shards(entries, save_dtype.itemsize, max_shard_bytes)

    gathered: dict[tuple, np.ndarray] = {}  # the last parameter brought to the host

    def produce(path, expert):
        if path not in gathered:
            gathered.clear()
            gathered[path] = _to_host(params[path][...])
        value = gathered[path]
        if expert is not None:
            return value[expert].T
        return _ours_to_hf(value, table[path].layout)

    writer = jax.process_index() == 0
    if writer:
        os.makedirs(out_dir, exist_ok=True)
    weight_map = {}
    for number, shard in enumerate(shards, start=1):
        name = ("model.safetensors" if len(shards) == 1
                else f"model-{number:05d}-of-{len(shards):05d}.safetensors")
        tensors = [(key, shape, save_dtype, lambda p=path, e=expert: produce(p, e))
                   for key, shape, path, expert in shard]
        if writer:
            safetensors_io.write(os.path.join(out_dir, name), tensors)
        else:
            for *_, make in tensors:  # same collectives as the writer, in the same order
                make()
        weight_map |= {key: name for key, *_ in shard}
    if not writer:
        return
    dtype_name = {v: k for k, v in _SAVE_DTYPES.items()}[save_dtype]
    _write_json(os.path.join(out_dir, "config.json"), config.to_hf_dict(dtype_name))
    if len(shards) > 1:
        total = sum(int(np.prod(s)) for _, s, *_ in entries) * save_dtype.itemsize
        _write_json(os.path.join(out_dir, "model.safetensors.index.json"),
                    {"metadata": {"total_size": total}, "weight_map": weight_map})
    copied = copy_tokenizer_files(tokenizer_dir, out_dir) if tokenizer_dir else []
    if "generation_config.json" not in copied:
        src = os.path.join(tokenizer_dir or "", "generation_config.json")
        if tokenizer_dir and os.path.isfile(src):
            shutil.copyfile(src, os.path.join(out_dir, "generation_config.json"))
        else:
            _write_json(os.path.join(out_dir, "generation_config.json"),
                        {"bos_token_id": config.bos_token_id, "pad_token_id": config.pad_token_id,
                         "eos_token_id": config.to_hf_dict()["eos_token_id"]})


def _plan_shards(entries, itemsize: int, max_shard_bytes: int) -> list[list]:
    shards, current, size = [], [], 0
    for entry in entries:
        nbytes = int(np.prod(entry[1])) * itemsize
        if current and size + nbytes > max_shard_bytes:
            shards.append(current)
            current, size = [], 0
        current.append(entry)
        size += nbytes
    return shards + [current]


def _write_json(path: str, value) -> None:
    with open(path, "w") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")


def checkpoint_dtype(model_dir: str) -> np.dtype:
    """The dtype config.json declares (`dtype` in transformers 5, `torch_dtype` before)."""
    with open(os.path.join(model_dir, "config.json")) as f:
        raw = json.load(f)
    name = raw.get("dtype") or raw.get("torch_dtype") or "float32"
    if name not in _SAVE_DTYPES:
        raise ValueError(f"{model_dir}/config.json declares dtype {name!r}; expected one of "
                         f"{sorted(_SAVE_DTYPES)}")
    return _SAVE_DTYPES[name]


def export_hf_dir(checkpoint_dir: str, out_dir: str, *, mesh: jax.sharding.Mesh | None = None,
                  dtype=None, max_shard_bytes: int = _DEFAULT_SHARD_BYTES) -> None:
    """HF directory -> our model -> HF directory, tokenizer files carried over.

    dtype: saved dtype, default the checkpoint's own; weights are held in that dtype.
    """
    dtype = np.dtype(dtype) if dtype is not None else checkpoint_dtype(checkpoint_dir)
    model = load_model(checkpoint_dir, mesh=mesh, param_dtype=dtype)
    save_model(model, out_dir, dtype=dtype, tokenizer_dir=checkpoint_dir,
               max_shard_bytes=max_shard_bytes)
