"""CPU benchmark of the Qwen3 model: train-step throughput vs transformers, memory per parameter.

    python benchmarks/models_cpu.py [--steps=5]

1. Forward+backward tokens/s of our jitted NNX model and of transformers' Qwen3ForCausalLM
   (torch, eager, sdpa attention) on the same small config and batch, same threads; the ratio is
   ours / torch (goal >= 1.5x).
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

from sandmle_jax.models.qwen3 import Qwen3, Qwen3Config

_STEPS = flags.DEFINE_integer("steps", 5, "Timed steps per framework (after 2 warm-up steps).")
_BATCH = flags.DEFINE_integer("batch", 4, "Sequences per step.")
_SEQ = flags.DEFINE_integer("seq", 256, "Tokens per sequence.")

CONFIGS = {
        "dense": Qwen3Config.tiny(vocab_size=4096, hidden_size=256, intermediate_size=768,
                                  num_hidden_layers=4, num_attention_heads=8,
                                  num_key_value_heads=4, head_dim=32, tie_word_embeddings=False),
        "moe": Qwen3Config.tiny_moe(vocab_size=4096, hidden_size=256, intermediate_size=768,
                                    num_hidden_layers=4, num_attention_heads=8,
                                    num_key_value_heads=4, head_dim=32, num_experts=8,
                                    num_experts_per_tok=2, moe_intermediate_size=256),
}


def _nll(logits, ids):
    logp = jax.nn.log_softmax(logits[:, :-1], axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, ids[:, 1:, None], axis=-1))


def _time(fn, steps: int) -> float:
    for _ in range(2):
        fn()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def ours_step_seconds(config: Qwen3Config, ids: np.ndarray, steps: int) -> float:
    model = Qwen3(config, rngs=nnx.Rngs(0))
    ids = jnp.asarray(ids)
    step = nnx.jit(nnx.value_and_grad(lambda m: _nll(m(ids), ids)))

    def run():
        loss, grads = step(model)
        jax.block_until_ready((loss, grads))
    return _time(run, steps)


def torch_step_seconds(config: Qwen3Config, ids: np.ndarray, steps: int) -> float:
    hf_config = transformers.AutoConfig.for_model(**config.to_hf_dict("float32"))
    cls = transformers.Qwen3MoeForCausalLM if config.is_moe else transformers.Qwen3ForCausalLM
    model = cls(hf_config).train()
    ids = torch.tensor(ids)

    def run():
        model.zero_grad(set_to_none=True)
        model(ids, labels=ids).loss.backward()
    return _time(run, steps)


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
        grads = nnx.grad(lambda m: _nll(m(ids), ids))(model)
        optimizer.update(model, grads)
        return nnx.state((model, optimizer))

    memory = jax.jit(step, donate_argnums=0).lower(state, ids).compile().memory_analysis()
    peak = (memory.argument_size_in_bytes + memory.output_size_in_bytes
            - memory.alias_size_in_bytes + memory.temp_size_in_bytes)
    return peak / config.num_params(), memory.argument_size_in_bytes / config.num_params()


def main(argv):
    del argv
    ids = np.random.RandomState(0).randint(0, 4096, (_BATCH.value, _SEQ.value))
    tokens = ids.size
    print(f"device: {jax.devices()[0].device_kind}; torch threads {torch.get_num_threads()}; "
          f"batch {ids.shape[0]} x {ids.shape[1]} tokens")
    print("| model | params | ours tok/s | torch tok/s | ours/torch |")
    print("|---|---|---|---|---|")
    for name, config in CONFIGS.items():
        ours = tokens / ours_step_seconds(config, ids, _STEPS.value)
        ref = tokens / torch_step_seconds(config, ids, _STEPS.value)
        print(f"| {name} | {config.num_params() / 1e6:.1f}M | {ours:,.0f} | {ref:,.0f} | "
              f"{ours / ref:.2f}x |")
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
