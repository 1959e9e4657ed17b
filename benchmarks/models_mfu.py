"""Train-step MFU of a Qwen3-0.6B-shaped random model in bf16, on whatever accelerator JAX sees.

    python benchmarks/models_mfu.py            # Qwen3-0.6B shape, 4 x 2048 tokens per step
    python benchmarks/models_mfu.py --smoke    # tiny model, seconds on a CPU (checks the script)

One step = forward, backward and an AdamW update (donated state, sharded fsdp over all local
devices). FLOPs per step = 6 * (matmul parameters per token, LM head included) * tokens
+ 6 * layers * heads * head_dim * seq * tokens (causal attention: half of the full QK^T and PV,
times 3 for forward + backward). MFU = FLOPs per step / step time / (devices * peak bf16 FLOP/s
of the card). Attention `auto` uses cuDNN flash attention on GPUs (the learner's right-padded
layout) and the exact einsum path elsewhere; if cuDNN fails to compile the error is printed and
the einsum path is measured instead. Finishes in well under 3 minutes on one H100.
"""

import collections
import dataclasses
import gzip
import json
import pathlib
import re
import tempfile
import time

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from sandmle_jax.models.head_logprobs import next_token_logprobs
from sandmle_jax.models.qwen3 import Qwen3, Qwen3Config
from sandmle_jax.parallel import host_memory
from sandmle_jax.parallel import mesh as mesh_lib
from sandmle_jax.parallel import rules
import run_facts

_SMOKE = flags.DEFINE_bool("smoke", False, "Tiny model and batch: checks the script on a CPU.")
_BATCH = flags.DEFINE_integer("batch", 4, "Sequences per step (global).")
_SEQ = flags.DEFINE_integer("seq", 2048, "Tokens per sequence.")
_STEPS = flags.DEFINE_integer("steps", 10, "Timed steps after 2 warm-up steps.")
_ATTENTION = flags.DEFINE_enum("attention", "auto", ["auto", "einsum", "xla", "cudnn"],
                               "Attention implementation (see Qwen3's docstring).")
_PARAM_DTYPE = flags.DEFINE_enum("param_dtype", "bfloat16", ["bfloat16", "float32"],
                                 "Stored weights; compute is bf16 either way.")
_REMAT = flags.DEFINE_bool("remat", False, "Rematerialise each layer in the backward pass.")
_VOCAB = flags.DEFINE_integer("vocab", None, "Override the vocabulary size: a small one leaves the "
                              "LM head and loss out of the step, which splits its time.")
_CHUNK = flags.DEFINE_integer("logit_chunk_tokens", 0, "Tokens whose logits exist at once in the "
                              "loss (0 = all); chunks recompute the LM head (not counted).")
_PROFILE = flags.DEFINE_integer("profile", 0, "Trace this many more steps and print the time "
                                "per op / kernel name (0: no trace).")
_PEAK_TFLOPS = flags.DEFINE_float("peak_tflops", None,
                                  "Peak bf16 dense TFLOP/s per device; default from the card name.")

# Dense bf16 peak TFLOP/s by device_kind substring (first match wins; order matters).
_PEAK_BF16_TFLOPS = (("H100 PCIe", 756.0), ("H100", 989.0), ("H200", 989.0), ("H800", 989.0),
                     ("B200", 2250.0), ("A100", 312.0), ("L40S", 362.0), ("A10G", 70.0),
                     ("TPU v6 lite", 918.0), ("TPU v5 lite", 197.0), ("TPU v5", 459.0),
                     ("TPU v4", 275.0))


def _peak_tflops(device_kind: str) -> float | None:
    if _PEAK_TFLOPS.value:
        return _PEAK_TFLOPS.value
    for name, tflops in _PEAK_BF16_TFLOPS:
        if name in device_kind:
            return tflops
    return None


def step_flops(config: Qwen3Config, batch: int, seq: int) -> float:
    tokens = batch * seq
    attention = (6 * config.num_hidden_layers * config.num_attention_heads * config.head_dim
                 * seq * tokens)
    return 6 * config.active_params_per_token() * tokens + attention


def _loss(model, ids):
    """Mean next-token NLL the way the learner computes log-probs (from the hidden states,
    `--logit_chunk_tokens` at a time)."""
    logp, _ = next_token_logprobs(model.head_inputs(ids), ids, temperature=1.0,
                                  chunk_tokens=_CHUNK.value or None)
    return -jnp.mean(logp[:, 1:])


def _print_op_times(trace_dir: str, steps: int, top: int = 25) -> None:
    """The trace's op / kernel times per step, summed by name with numeric suffixes dropped
    (fusion.12 and fusion.40 -> fusion), largest first: where a step's time goes."""
    path = next(pathlib.Path(trace_dir).rglob("*.trace.json.gz"))
    trace = json.loads(gzip.decompress(path.read_bytes()))
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    totals = collections.Counter()
    for event in events:
        name = event.get("name", "")
        if event.get("ph") == "X" and "dur" in event and not name.startswith("$"):
            totals[re.sub(r"[.\d]+$", "", name)] += event["dur"] / steps / 1e3
    print(f"  op time per step (ms), top {top} by name:")
    for name, ms in totals.most_common(top):
        print(f"    {ms:9.2f}  {name[:100]}")


def measure(config: Qwen3Config, batch: int, seq: int, attention: str, steps: int) -> float:
    """Seconds per train step."""
    mesh = mesh_lib.make_mesh(mesh_lib.MeshConfig(fsdp=-1), jax.local_devices())
    param_dtype = jnp.dtype(_PARAM_DTYPE.value)

    def build():
        model = Qwen3(config, rngs=nnx.Rngs(0), param_dtype=param_dtype, dtype=jnp.bfloat16,
                      remat=_REMAT.value, attention_impl=attention)
        return model, nnx.Optimizer(model, optax.adamw(1e-5), wrt=nnx.Param)

    graphdef, abstract_state = nnx.split(nnx.eval_shape(build))
    shardings = rules.state_shardings(abstract_state, mesh)
    # Initialised straight into its shards: no full copy on one device first.
    start = time.perf_counter()
    state = jax.block_until_ready(jax.jit(lambda: nnx.state(build()), out_shardings=shardings)())
    print(f"  random state built in {time.perf_counter() - start:.1f}s")
    batch_sharding = rules.named_sharding(("activation_batch", "activation_length"), (batch, seq),
                                          mesh)
    ids = jax.device_put(np.random.RandomState(0).randint(0, config.vocab_size, (batch, seq),
                                                          dtype=np.int32), batch_sharding)

    def train_step(state, ids):
        model, optimizer = nnx.merge(graphdef, state)
        loss, grads = nnx.value_and_grad(_loss)(model, ids)
        optimizer.update(model, grads)
        return nnx.state((model, optimizer)), loss

    with rules.use_mesh_rules(mesh):
        step = jax.jit(train_step, donate_argnums=0, out_shardings=(shardings, None))
        start = time.perf_counter()
        for _ in range(2):
            state, loss = step(state, ids)
        print(f"  compile + 2 warm-up steps: {time.perf_counter() - start:.1f}s, "
              f"loss {float(loss):.3f}")
        start = time.perf_counter()
        for _ in range(steps):
            state, loss = step(state, ids)
        loss.block_until_ready()
        seconds = (time.perf_counter() - start) / steps
        if _PROFILE.value:
            with tempfile.TemporaryDirectory() as trace_dir:
                with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
                    for _ in range(_PROFILE.value):
                        state, loss = step(state, ids)
                    loss.block_until_ready()
                _print_op_times(trace_dir, _PROFILE.value)
    if not np.isfinite(float(loss)):
        raise FloatingPointError(f"loss became {float(loss)} (attention={attention})")
    return seconds


def main(argv):
    del argv
    print(run_facts.header())
    host_memory.keep_freed_memory_from_flags()
    # Random weights need no statistical quality here. Building the state took 75-85 s on an
    # H100 (from the runs' timestamps), more than compiling the step; rbg instead of threefry
    # cut its compile + run on the CPU from 21 to 14 s. The time is printed now.
    jax.config.update("jax_default_prng_impl", "unsafe_rbg")
    if _SMOKE.value:
        config, batch, seq, steps = Qwen3Config.tiny(), 2, 64, 2
    else:
        config, batch, seq, steps = Qwen3Config.qwen3_0_6b(), _BATCH.value, _SEQ.value, _STEPS.value
    if _VOCAB.value:
        config = dataclasses.replace(config, vocab_size=_VOCAB.value)
    device = jax.local_devices()[0]
    platform = device.platform
    attention = _ATTENTION.value
    if attention == "auto":
        attention = "cudnn" if platform == "gpu" else "einsum"
    print(f"device: {device.device_kind} x {jax.local_device_count()} ({platform}); "
          f"model {config.num_params() / 1e6:,.1f}M params; batch {batch} x {seq}; "
          f"params {_PARAM_DTYPE.value}, compute bfloat16; attention {attention}; "
          f"remat {_REMAT.value}")
    try:
        seconds = measure(config, batch, seq, attention, steps)
    except Exception as e:  # a benchmark, not the library: report and measure the exact path
        if attention != "cudnn":
            raise
        print(f"  cudnn attention failed ({type(e).__name__}: {str(e)[:300]}); using einsum")
        attention = "einsum"
        seconds = measure(config, batch, seq, attention, steps)
    flops = step_flops(config, batch, seq)
    tokens_per_s = batch * seq / seconds
    achieved = flops / seconds / jax.local_device_count()
    peak = _peak_tflops(device.device_kind)
    mfu = f"{100 * achieved / (peak * 1e12):.1f}%" if peak else "n/a (unknown peak; --peak_tflops)"
    stats = device.memory_stats() or {}
    memory = (f"; peak device memory {stats['peak_bytes_in_use'] / 2**30:.1f} GiB"
              if "peak_bytes_in_use" in stats else "")
    print(f"attention {attention}: {seconds * 1e3:.1f} ms/step, {tokens_per_s:,.0f} tokens/s, "
          f"{achieved / 1e12:.1f} TFLOP/s per device{memory}")
    print(f"MFU: {mfu} on {device.device_kind}")


if __name__ == "__main__":
    app.run(main)
