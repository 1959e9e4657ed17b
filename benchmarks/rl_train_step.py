"""GRPO learner step: tokens/s with and without remat, and compilations over varying lengths.

    python benchmarks/rl_train_step.py [--steps=50] [--buckets=256,512,1024]
    python benchmarks/rl_train_step.py --preset=qwen3_0_6b --compute_dtype=bfloat16 \
        --buckets=1024,2048,4096 --min_len=512 --steps=20      # on an accelerator

Model: the tiny_cpu recipe's Qwen3 shape (configs/tiny_cpu.py `model.tiny`), fp32, random
weights. Each step takes `groups x group_size` random trajectories with lengths uniform in
[min_len, largest bucket], packs them into `rows`-row micro-batches padded to the buckets, and
runs one optimizer step (gradient accumulation over the micro-batches). Tokens/s counts real
(non-pad) tokens of steps that compiled nothing; compilations are the learner's jitted programs
(accumulate: one per bucket seen; apply: one).
"""

import statistics
import time

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sandmle_jax.models.qwen3 import Qwen3, Qwen3Config
from sandmle_jax.parallel import host_memory
from sandmle_jax.rl.batching import BatchingConfig, make_learner_batch
from sandmle_jax.rl.episodes import Row
from sandmle_jax.rl.learner import Learner, LossConfig, nnx_apply_fn
from sandmle_jax.rl.optim import OptimizerConfig, make_optimizer
import run_facts

_STEPS = flags.DEFINE_integer("steps", 50, "Optimizer steps per remat setting.")
_BUCKETS = flags.DEFINE_list("buckets", ["256", "512", "1024"], "Bucket lengths.")
_ROWS = flags.DEFINE_integer("rows", 2, "Rows per micro-batch.")
_GROUPS = flags.DEFINE_integer("groups", 2, "Groups (tasks) per step.")
_GROUP_SIZE = flags.DEFINE_integer("group_size", 4, "Trajectories per group.")
_MIN_LEN = flags.DEFINE_integer("min_len", 64, "Shortest trajectory.")
_PRESET = flags.DEFINE_enum("preset", "tiny_cpu", ["tiny_cpu", "qwen3_0_6b"], "Model shape.")
_DTYPE = flags.DEFINE_enum("compute_dtype", "float32", ["float32", "bfloat16"],
                           "Forward/backward dtype (params stay float32).")
_CHUNK = flags.DEFINE_integer("logit_chunk_tokens", 0, "The learner's log-prob chunk in tokens "
                              "(0 = whole micro-batch).")

def tiny_cpu_model_config() -> Qwen3Config:
    """configs/tiny_cpu.py's `model.tiny` shape (copied: the benchmark must not break when the
    recipe's other sections change)."""
    return Qwen3Config.tiny(vocab_size=2048, hidden_size=128, intermediate_size=384,
                            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                            head_dim=32)


def random_step(rng: np.random.Generator, vocab: int, max_len: int) -> list[Row]:
    trajs = []
    for g in range(_GROUPS.value):
        for _ in range(_GROUP_SIZE.value):
            n = int(rng.integers(_MIN_LEN.value, max_len + 1))
            prompt = n // 4
            mask = (0,) * prompt + (1,) * (n - prompt)
            trajs.append(Row(tuple(int(t) for t in rng.integers(0, vocab, n)), mask,
                              tuple(-1.0 * m for m in mask), float(rng.uniform()), g))
    return trajs


def run(config: Qwen3Config, remat: bool, buckets: tuple[int, ...]) -> dict[str, float]:
    # Qwen3 casts fp32 weights to its compute `dtype` itself, so the learner's compute_dtype
    # stays None (a cast there would be undone by the model's casts).
    model = Qwen3(config, rngs=nnx.Rngs(0), remat=remat, param_dtype=jnp.float32,
                  dtype=jnp.dtype(_DTYPE.value))
    apply_fn, params = nnx_apply_fn(model)
    learner = Learner(apply_fn, make_optimizer(OptimizerConfig(learning_rate=1e-5)),
                      LossConfig(tis_cap=2.0), logit_chunk_tokens=_CHUNK.value or None)
    state = learner.init_state(params, seed=0)
    batching = BatchingConfig(bucket_lengths=buckets, rows=_ROWS.value)
    rng = np.random.default_rng(0)
    rates, shapes, compiled_before = [], set(), 0
    for _ in range(_STEPS.value):
        batch = make_learner_batch(random_step(rng, config.vocab_size, buckets[-1]), batching,
                                   group_size=_GROUP_SIZE.value)
        shapes |= {mb.input_ids.shape for mb in batch.micro_batches}
        start = time.perf_counter()
        state, metrics = learner.train_step(state, batch)
        jax.block_until_ready(state.params)
        elapsed = time.perf_counter() - start
        compiled = sum(learner.compilations().values())
        if compiled == compiled_before:
            tokens = sum(int(np.asarray(m.attention_mask).sum()) for m in batch.micro_batches)
            rates.append(tokens / elapsed)
        compiled_before = compiled
    return {"tokens_per_s": statistics.median(rates), "timed_steps": len(rates),
            "shapes": len(shapes), **learner.compilations()}


def main(argv):
    del argv
    print(run_facts.header())
    host_memory.keep_freed_memory_from_flags()
    buckets = tuple(int(b) for b in _BUCKETS.value)
    config = (tiny_cpu_model_config() if _PRESET.value == "tiny_cpu" else
              Qwen3Config.qwen3_0_6b())
    print(f"devices: {jax.devices()}; {_PRESET.value} {_DTYPE.value}: "
          f"{config.num_hidden_layers} layers, hidden "
          f"{config.hidden_size}, vocab {config.vocab_size}; buckets {buckets}, rows "
          f"{_ROWS.value}, {_GROUPS.value * _GROUP_SIZE.value} trajectories/step, "
          f"{_STEPS.value} steps, logit chunk {_CHUNK.value or 'all'}")
    for remat in (False, True):
        r = run(config, remat, buckets)
        print(f"remat={remat!s:5}  median tokens/s {r['tokens_per_s']:8.0f} over "
              f"{r['timed_steps']} compile-free steps;  micro-batch shapes seen {r['shapes']}, "
              f"compilations: accumulate {r['accumulate']}, apply {r['apply']}")


if __name__ == "__main__":
    app.run(main)
