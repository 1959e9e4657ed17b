"""One MoE expert layer, forward + backward (training) or forward only (decoding): the blocked
experts at several block sizes vs `jax.lax.ragged_dot` (the `grouped` path), on whatever device
JAX sees.

    python benchmarks/moe_layer.py          # CPU-sized: 1,024 tokens, top-2 of 8 experts
    python benchmarks/moe_layer.py --tokens=8192 --hidden=2048 --intermediate=768 \
        --experts=128 --top_k=8 --dtype=bfloat16                # a Qwen3-30B-A3B layer, GPU
    python benchmarks/moe_layer.py --tokens=64 ... --forward_only   # a decode step's layer

`moe_experts.apply_experts` runs `blocked` on CPU and GPUs because XLA there expands ragged_dot
to every expert over every row; this measures what that choice and the block size cost: the
CPU's block size (one block per expert, at most 128 rows) and, for each --blocks_per_expert B,
`moe_experts.rows_per_block(pairs, experts, B, None)` (GPUs use B = 4). Variants alternate step
by step; medians are compared against the ragged_dot baseline (a variant that fails, e.g. out
of memory, is reported and skipped). TFLOP/s counts only the routed pairs' work:
3 projections x 2 x pairs x hidden x intermediate, x 3 with the backward. With few pairs per
expert (decoding) the blocked path still gathers one block of weights per active expert, while
ragged_dot's E-times expansion costs little next to reading the weights: the regime where
ragged_dot may win.
"""

import functools
import time

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np

from sandmle_jax.models import moe_experts
from sandmle_jax.parallel import host_memory
import run_facts

_TOKENS = flags.DEFINE_integer("tokens", 1024, "Tokens in the layer's batch.")
_HIDDEN = flags.DEFINE_integer("hidden", 256, "Hidden size D.")
_INTERMEDIATE = flags.DEFINE_integer("intermediate", 256, "Expert intermediate size F.")
_EXPERTS = flags.DEFINE_integer("experts", 8, "Experts E.")
_TOP_K = flags.DEFINE_integer("top_k", 2, "Experts per token.")
_DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Params and compute.")
_BLOCKS = flags.DEFINE_list("blocks_per_expert", ["2", "4", "8"],
                            "Blocked variants to time, uncapped (GPUs use 4).")
_STEPS = flags.DEFINE_integer("steps", 20, "Timed steps per variant, after one warm-up.")
_FORWARD_ONLY = flags.DEFINE_bool("forward_only", False, "Time the forward pass alone.")


def _inputs():
    dtype = jnp.dtype(_DTYPE.value)
    d, f, e = _HIDDEN.value, _INTERMEDIATE.value, _EXPERTS.value
    keys = jax.random.split(jax.random.key(0), 5)
    flat = jax.random.normal(keys[0], (_TOKENS.value, d), dtype)
    experts = tuple(jax.random.normal(key, shape, dtype) * 0.02 for key, shape in zip(
            keys[1:4], [(e, d, f), (e, d, f), (e, f, d)]))
    router_logits = jax.random.normal(keys[4], (_TOKENS.value, e))
    top_probs, top_experts = jax.lax.top_k(jax.nn.softmax(router_logits), _TOP_K.value)
    return flat, experts, top_experts, top_probs.astype(dtype)


def _step(experts_fn, top_experts, top_probs):
    def forward(flat, experts):
        return experts_fn(flat, experts, top_experts, top_probs, None)

    def loss(flat, experts):
        return jnp.sum(forward(flat, experts).astype(jnp.float32) ** 2)

    return jax.jit(forward if _FORWARD_ONLY.value else jax.value_and_grad(loss, argnums=(0, 1)))


def main(argv):
    del argv
    print(run_facts.header())
    host_memory.keep_freed_memory_from_flags()
    flat, experts, top_experts, top_probs = _inputs()
    pairs, num_experts = top_experts.size, _EXPERTS.value
    variants = {"ragged_dot (grouped)": (moe_experts.grouped, None)}
    cpu_rows = moe_experts.rows_per_block(pairs, num_experts, 1, 128)
    variants["blocked, CPU's rows"] = (functools.partial(moe_experts.blocked, rows=cpu_rows),
                                       cpu_rows)
    for blocks in map(int, _BLOCKS.value):
        rows = moe_experts.rows_per_block(pairs, num_experts, blocks, None)
        variants[f"blocked, {blocks} per expert"] = (
                functools.partial(moe_experts.blocked, rows=rows), rows)
    steps, failed = {}, {}
    for name, (fn, _) in variants.items():
        step = _step(fn, top_experts, top_probs)
        try:
            jax.block_until_ready(step(flat, experts))
            steps[name] = step
        except Exception as e:  # a benchmark: report the variant that cannot run and go on
            failed[name] = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
    times = {name: [] for name in steps}
    for _ in range(_STEPS.value):
        for name, step in steps.items():
            start = time.perf_counter()
            jax.block_until_ready(step(flat, experts))
            times[name].append(time.perf_counter() - start)
    flops = 3 * 2 * pairs * _HIDDEN.value * _INTERMEDIATE.value * (1 if _FORWARD_ONLY.value else 3)
    passes = "forward" if _FORWARD_ONLY.value else "forward + backward"
    device = jax.devices()[0]
    print(f"device: {device.device_kind} ({device.platform}); {_TOKENS.value} tokens, top-"
          f"{_TOP_K.value} of {num_experts} experts, D {_HIDDEN.value}, F "
          f"{_INTERMEDIATE.value}, {_DTYPE.value}; {passes} of one layer's experts")
    print("| variant | rows per block | ms | TFLOP/s (routed pairs) | speed vs ragged_dot |")
    print("|---|---|---|---|---|")
    baseline = np.median(times["ragged_dot (grouped)"]) if "ragged_dot (grouped)" in times else None
    for name, (_, rows) in variants.items():
        if name in failed:
            print(f"| {name} | {rows or '-'} | failed: {failed[name]} | - | - |")
            continue
        seconds = float(np.median(times[name]))
        ratio = f"{baseline / seconds:.2f}x" if baseline else "-"
        print(f"| {name} | {rows or '-'} | {seconds * 1e3:.2f} | {flops / seconds / 1e12:.2f} | "
              f"{ratio} |")


if __name__ == "__main__":
    app.run(main)
