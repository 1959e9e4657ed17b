"""CPU benchmark of the Qwen3 model: train-step throughput vs transformers, memory per parameter.

    python benchmarks/models_cpu.py                          # both sides on all (2) cores
    ... --op_breakdown    # also each side's matmul time against the rest (pip install xprof)
    XLA_FLAGS=--xla_cpu_multi_thread_eigen=false taskset -c 1 \
        python benchmarks/models_cpu.py --torch_threads=1 --memory=false   # one core each

(Without `taskset`, XLA:CPU runs independent work on other cores even with that flag.)

1. Forward+backward tokens/s of our jitted NNX model and of transformers' Qwen3ForCausalLM
   (torch, eager, sdpa attention) on the same small config and batch; the ratio is ours / torch
   (goal >= 1.5x). Steps of the two frameworks alternate and medians are compared, so load from
   other jobs hits both alike.
2. Peak memory of one jitted, donated AdamW train step (params, grads, optimizer state,
   activations), from XLA's compiled memory analysis: (arguments + outputs - donated aliases +
   temporaries) / parameter count, in bytes per parameter; compiled from shapes only, so the
   Qwen3-0.6B row needs no memory for weights.
"""

import time

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
import transformers
from flax import nnx

from sandmle_jax.models.head_logprobs import next_token_logprobs
from sandmle_jax.models.qwen3 import Qwen3, Qwen3Config
from sandmle_jax.parallel import host_memory
import op_breakdown
import run_facts

_STEPS = flags.DEFINE_integer("steps", 8, "Timed steps per framework (alternated, after warm-up).")
_BATCH = flags.DEFINE_integer("batch", 4, "Sequences per step.")
_SEQ = flags.DEFINE_integer("seq", 256, "Tokens per sequence.")
_TORCH_THREADS = flags.DEFINE_integer("torch_threads", 2, "torch.set_num_threads for the reference.")
_MEMORY = flags.DEFINE_bool("memory", True, "Also compile train steps for the memory table.")
_BREAKDOWN = flags.DEFINE_bool("op_breakdown", False,
                                "Also profile both steps: matmul time against the rest (needs xprof).")
_CHUNK = flags.DEFINE_integer("logit_chunk_tokens", 0,
                              "Tokens whose logits exist at once in the loss (0 = all).")

CONFIGS = {
        "dense": Qwen3Config.tiny(vocab_size=4096, hidden_size=256, intermediate_size=768,
                                  num_hidden_layers=4, num_attention_heads=8,
                                  num_key_value_heads=4, head_dim=32, tie_word_embeddings=False),
        "moe": Qwen3Config.tiny_moe(vocab_size=4096, hidden_size=256, intermediate_size=768,
                                    num_hidden_layers=4, num_attention_heads=8,
                                    num_key_value_heads=4, head_dim=32, num_experts=8,
                                    num_experts_per_tok=2, moe_intermediate_size=256),
}


def _nll(model, ids):
    """Mean next-token cross-entropy (transformers' `labels=` loss) the way the learner computes
    log-probs: from the hidden states, `--logit_chunk_tokens` at a time."""
    logp, _ = next_token_logprobs(model.head_inputs(ids), ids, temperature=1.0,
                                  chunk_tokens=_CHUNK.value or None)
    return -jnp.mean(logp[:, 1:])


def throughput(config: Qwen3Config, ids: np.ndarray, steps: int,
               torch_threads: int) -> tuple[float, float, float]:
    """(ours, torch) tokens/s (median over steps) and the median ratio, steps alternated."""
    graphdef, params = nnx.split(Qwen3(config, rngs=nnx.Rngs(0)))
    jax_ids = jnp.asarray(ids)

    def loss(params):
        return _nll(nnx.merge(graphdef, params), jax_ids)

    # jax.jit over the split state, as the learner runs its step (nnx.jit re-walks the module
    # graph in Python on every call: 20-30 ms a step here).
    jax_step = jax.jit(jax.value_and_grad(loss))
    hf_config = transformers.AutoConfig.for_model(**config.to_hf_dict("float32"))
    cls = transformers.Qwen3MoeForCausalLM if config.is_moe else transformers.Qwen3ForCausalLM
    torch_model = cls(hf_config).train()
    torch_ids = torch.tensor(ids)
    torch.set_num_threads(torch_threads)

    def ours():
        jax.block_until_ready(jax_step(params))

    def reference():
        torch_model.zero_grad(set_to_none=True)
        torch_model(torch_ids, labels=torch_ids).loss.backward()

    seconds = {ours: [], reference: []}
    for fn in (ours, ours, reference, reference):  # compile / warm up
        fn()
    for _ in range(steps):
        for fn in seconds:
            start = time.perf_counter()
            fn()
            seconds[fn].append(time.perf_counter() - start)
    ours_s, torch_s = np.median(seconds[ours]), np.median(seconds[reference])
    if _BREAKDOWN.value:
        _print_breakdown(op_breakdown.xla_split(jax_step, (params,), steps),
                         op_breakdown.torch_split(reference, steps), torch_s)
    return ids.size / ours_s, ids.size / torch_s, torch_s / ours_s


def _print_breakdown(ours: tuple[float, float], theirs: tuple[float, float], torch_s: float):
    """Profiled ms per step, matmuls vs the rest, and the ratio ours could reach with no time
    outside its matmuls (torch's unprofiled step over our profiled matmul time)."""
    for side, (matmul, total) in (("ours", ours), ("torch", theirs)):
        print(f"  {side}: {matmul:.0f} ms in matmuls of {total:.0f} ms profiled "
              f"({matmul / total:.0%}), {total - matmul:.0f} ms elsewhere")
    print(f"  bound on ours/torch with nothing but our matmuls: {torch_s * 1e3 / ours[0]:.2f}x")


def train_step_memory(config: Qwen3Config, batch: int, seq: int, param_dtype,
                      remat: bool) -> tuple[float, float]:
    """(peak, state) bytes per parameter of a donated AdamW step, compiled from shapes only.

    state = parameters + AdamW moments (the step's donated arguments); peak adds gradients,
    activations and temporaries as XLA schedules them.
    """
    def build():
        model = Qwen3(config, rngs=nnx.Rngs(0), param_dtype=param_dtype, remat=remat)
        return model, nnx.Optimizer(model, optax.adamw(1e-4), wrt=nnx.Param)

    graphdef, state = nnx.split(nnx.eval_shape(build))
    ids = jax.ShapeDtypeStruct((batch, seq), jnp.int32)

    def step(state, ids):
        model, optimizer = nnx.merge(graphdef, state)
        grads = nnx.grad(lambda m: _nll(m, ids))(model)
        optimizer.update(model, grads)
        return nnx.state((model, optimizer))

    memory = jax.jit(step, donate_argnums=0).lower(state, ids).compile().memory_analysis()
    peak = (memory.argument_size_in_bytes + memory.output_size_in_bytes
            - memory.alias_size_in_bytes + memory.temp_size_in_bytes)
    return peak / config.num_params(), memory.argument_size_in_bytes / config.num_params()


def main(argv):
    del argv
    print(run_facts.header())
    kept = host_memory.keep_freed_memory_from_flags()
    ids = np.random.RandomState(0).randint(0, 4096, (_BATCH.value, _SEQ.value))
    print(f"device: {jax.devices()[0].device_kind}; batch {ids.shape[0]} x {ids.shape[1]} tokens; "
          f"torch threads {_TORCH_THREADS.value}; logit chunk {_CHUNK.value or 'all'} tokens; "
          f"freed memory kept: {kept}")
    print("| model | params | ours tok/s | torch tok/s | ours/torch |")
    print("|---|---|---|---|---|")
    for name, config in CONFIGS.items():
        ours, reference, ratio = throughput(config, ids, _STEPS.value, _TORCH_THREADS.value)
        print(f"| {name} | {config.num_params() / 1e6:.1f}M | {ours:,.0f} | {reference:,.0f} | "
              f"{ratio:.2f}x |")
    if not _MEMORY.value:
        return
    print("\n| model | batch x seq | param dtype | remat | peak bytes/param | state bytes/param |")
    print("|---|---|---|---|---|---|")
    memory_cases = [(name, config, _BATCH.value, _SEQ.value) for name, config in CONFIGS.items()]
    memory_cases.append(("qwen3_0_6b", Qwen3Config.qwen3_0_6b(), 1, 2048))
    for name, config, batch, seq in memory_cases:
        for dtype in (jnp.float32, jnp.bfloat16):
            for remat in (False, True):
                peak, state = train_step_memory(config, batch, seq, dtype, remat)
                print(f"| {name} | {batch} x {seq} | {jnp.dtype(dtype).name} | {remat} | "
                      f"{peak:.1f} | {state:.1f} |")

if __name__ == "__main__":
    app.run(main)
