"""Memory (and optionally time) of the learner's log-probs: whole logits vs chunks.

    python benchmarks/head_logprobs_memory.py                 # Qwen3-0.6B head, 4 x 2048, bf16
    python benchmarks/head_logprobs_memory.py --time_steps=5  # also seconds per call

Value and gradient of sum(log-probs) + the entropies (no gradient), as the learner uses them,
at the LM head's shape. Baseline: the plain path every logits-returning model takes, fp32
logits from one matmul then `rl.grpo.token_logprobs` / `token_entropy` on them. Against it,
`models.head_logprobs.next_token_logprobs` with one chunk and with `--chunks` tokens per chunk.
Memory is XLA's compiled temporaries (shapes only, nothing allocated); ratios are baseline /
ours.
"""

import time

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np

from sandmle_jax.models.head_logprobs import HeadInputs, next_token_logprobs
from sandmle_jax.parallel import host_memory
from sandmle_jax.rl import grpo
import run_facts

_BATCH = flags.DEFINE_integer("batch", 4, "Rows.")
_SEQ = flags.DEFINE_integer("seq", 2048, "Tokens per row.")
_HIDDEN = flags.DEFINE_integer("hidden", 1024, "Hidden size (Qwen3-0.6B: 1024).")
_VOCAB = flags.DEFINE_integer("vocab", 151936, "Vocabulary (Qwen3: 151,936).")
_DTYPE = flags.DEFINE_enum("dtype", "bfloat16", ["bfloat16", "float32"], "Compute dtype.")
_CHUNKS = flags.DEFINE_list("chunks", ["4096", "1024"], "Tokens per chunk to compare.")
_TIME_STEPS = flags.DEFINE_integer("time_steps", 0, "Also time this many calls (0: memory only).")


def _whole_logits(hidden, head, ids):
    logits = jnp.dot(hidden, head, preferred_element_type=jnp.float32)
    entropy = grpo.token_entropy(jax.lax.stop_gradient(logits), 1.0)
    return jnp.sum(grpo.token_logprobs(logits, ids, 1.0)) + jnp.sum(entropy)


def _chunked(chunk):
    def loss(hidden, head, ids):
        logp, entropy = next_token_logprobs(HeadInputs(hidden, head, jnp.zeros(())), ids, 1.0,
                                            chunk_tokens=chunk)
        return jnp.sum(logp) + jnp.sum(jax.lax.stop_gradient(entropy))
    return loss


def main(argv):
    del argv
    print(run_facts.header())
    host_memory.keep_freed_memory_from_flags()
    b, t, d, v = _BATCH.value, _SEQ.value, _HIDDEN.value, _VOCAB.value
    dtype = jnp.dtype(_DTYPE.value)
    shapes = (jax.ShapeDtypeStruct((b, t, d), dtype), jax.ShapeDtypeStruct((d, v), dtype),
              jax.ShapeDtypeStruct((b, t), jnp.int32))
    cases = [("whole logits (baseline)", _whole_logits), ("fused, one chunk", _chunked(None))]
    cases += [(f"fused, {int(c):,}-token chunks", _chunked(int(c))) for c in _CHUNKS.value]
    print(f"device: {jax.devices()[0].device_kind}; {b} x {t} tokens, hidden {d}, vocab {v:,}, "
          f"{dtype.name}; one (tokens, vocab) fp32 array = {b * t * v * 4 / 2**30:.2f} GiB")
    print("| loss | temp GiB | memory ratio | ms/call | time ratio |")
    print("|---|---|---|---|---|")
    inputs = None
    if _TIME_STEPS.value:
        keys = jax.random.split(jax.random.PRNGKey(0), 3)
        inputs = (jax.random.normal(keys[0], (b, t, d), dtype),
                  (0.02 * jax.random.normal(keys[1], (d, v))).astype(dtype),
                  jax.random.randint(keys[2], (b, t), 0, v))
    base_memory = base_ms = None
    for name, loss in cases:
        compiled = jax.jit(jax.value_and_grad(loss, argnums=(0, 1))).lower(*shapes).compile()
        memory = compiled.memory_analysis().temp_size_in_bytes
        base_memory = base_memory or memory
        ms, time_ratio = float("nan"), "-"
        if inputs is not None:
            jax.block_until_ready(compiled(*inputs))
            seconds = []
            for _ in range(_TIME_STEPS.value):
                start = time.perf_counter()
                jax.block_until_ready(compiled(*inputs))
                seconds.append(time.perf_counter() - start)
            ms = 1e3 * float(np.median(seconds))
            base_ms = base_ms or ms
            time_ratio = f"{base_ms / ms:.2f}x"
        print(f"| {name} | {memory / 2**30:.2f} | {base_memory / memory:.2f}x | {ms:.1f} | "
              f"{time_ratio} |")


if __name__ == "__main__":
    app.run(main)
