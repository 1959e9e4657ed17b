"""Dropless MoE experts: every (token, expert) pair the router picks runs through its expert's
SwiGLU, exactly like HF's per-expert loop, with static shapes for XLA.

Both implementations take flat (N, D) tokens, experts (gate (E, D, F), up (E, D, F), down
(E, F, D)), the router's top_experts and top_probs (N, k), and return the weighted sum (N, D)
per token; `apply_experts` picks by backend at lowering time and, under a mesh, runs them on
each batch shard's own tokens.

  blocked   CPU and GPUs: pairs in expert-aligned blocks, one batched matmul per projection.
  grouped   TPU: pairs sorted by expert, `jax.lax.ragged_dot` grouped GEMMs.

Why not ragged_dot everywhere: XLA:CPU lowers it to every expert over every row, and XLA's GPU
pipeline (`RaggedDotRewriter`) expands it into a dense dot over every expert under a group
mask: E times the FLOPs and an E-times temporary, both operands expanded for the weight
gradient. Its exceptions need flags: cuDNN's grouped GEMM (forward only, cuDNN >= 9.22,
`--xla_gpu_experimental_use_ragged_dot_fusion`) and, on ROCm, hipBLASLt's (with cuBLASLt
enabled). For Qwen3-30B-A3B (128 experts) the expansion is 128x the expert work.
"""

import functools

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from sandmle_jax.models.swiglu import swiglu
from sandmle_jax.parallel import rules as sharding_rules

# Rows per block = the mean expert's pairs / blocks per expert, as a power of two.
# CPU: one block per expert, at most 128 rows (measured: fuller matmuls beat less padding, as
# XLA:CPU packs each block's weights). GPU: about four per expert at any batch size, so padding
# averages 1/8-1/4 of the pairs (worst 1/4-1/2) and the gathered block weights stay within ~5x
# the expert weights.
_CPU_BLOCKS_PER_EXPERT, _CPU_MAX_ROWS = 1, 128
_GPU_BLOCKS_PER_EXPERT, _GPU_MAX_ROWS = 4, None


def apply_experts(flat, experts, top_experts, top_probs, precision):
    """The experts for flat tokens, each batch shard on its own tokens under `use_mesh_rules`.

    Left to XLA's partitioner, the global sort of the pairs replicates them, and every device
    computed every token's experts (8 fake devices, data-parallel: each ran all 71 blocks of the
    8,192 pairs instead of its 1,024 pairs' 15). So under a mesh this is a shard_map over the
    batch axes: each shard routes its own tokens against the experts' weights gathered over
    every other axis but the MLP one ("moe_mlp", e.g. tensor), whose partial outputs are summed.
    The weights' gradients are summed over the batch shards by shard_map's transpose.
    """
    active = sharding_rules.active_mesh_rules()
    if active is None:
        return _apply_experts_here(flat, experts, top_experts, top_probs, precision)
    mesh, rules = active
    tokens = sharding_rules.partition_spec(("activation_batch", None), flat.shape, mesh, rules)
    batch_axes = set(sharding_rules.mesh_axes_of(tokens[0]))
    gate_spec = sharding_rules.partition_spec((None, None, "moe_mlp"), experts[0].shape, mesh,
                                              rules)
    mlp_axes = tuple(axis for axis in sharding_rules.mesh_axes_of(gate_spec[2])
                     if axis not in batch_axes)
    mlp = mlp_axes or None
    in_proj, out_proj = P(None, None, mlp), P(None, mlp, None)

    def shard(flat, gate_w, up_w, down_w, top_experts, top_probs):
        y = _apply_experts_here(flat, (gate_w, up_w, down_w), top_experts, top_probs, precision)
        return jax.lax.psum(y, mlp_axes) if mlp_axes else y

    token_spec = P(tokens[0], None)
    return jax.shard_map(shard, mesh=mesh, out_specs=token_spec, in_specs=(
            token_spec, in_proj, in_proj, out_proj, token_spec, token_spec))(
            flat, *experts, top_experts, top_probs)


def _apply_experts_here(flat, experts, top_experts, top_probs, precision):
    """The backend's implementation on the tokens and weights this device holds."""
    pairs, num_experts = top_experts.size, experts[0].shape[0]
    cpu_rows = rows_per_block(pairs, num_experts, _CPU_BLOCKS_PER_EXPERT, _CPU_MAX_ROWS)
    gpu_rows = rows_per_block(pairs, num_experts, _GPU_BLOCKS_PER_EXPERT, _GPU_MAX_ROWS)
    return jax.lax.platform_dependent(
            flat, experts, top_experts, top_probs,
            cpu=functools.partial(blocked, precision=precision, rows=cpu_rows),
            cuda=functools.partial(blocked, precision=precision, rows=gpu_rows),
            rocm=functools.partial(blocked, precision=precision, rows=gpu_rows),
            default=functools.partial(grouped, precision=precision))


def rows_per_block(pairs: int, num_experts: int, blocks_per_expert: int,
                   max_rows: int | None) -> int:
    """A power of two >= the mean expert's pairs / blocks_per_expert, at least 8 and at most
    max_rows (None: no cap)."""
    target = -(-pairs // (num_experts * blocks_per_expert))
    rows = max(8, 1 << (target - 1).bit_length())
    return rows if max_rows is None else min(max_rows, rows)


def _sorted_pairs(top_experts: jax.Array, num_experts: int):
    """Pairs (flattened top_experts, N*k) in expert order: each sorted pair's index and expert,
    and per-expert counts (E,)."""
    expert_of_pair = top_experts.reshape(-1)
    order = jnp.argsort(expert_of_pair, stable=True)
    sizes = jnp.bincount(expert_of_pair, length=num_experts).astype(jnp.int32)
    return order, expert_of_pair[order], sizes


def grouped(flat, experts, top_experts, top_probs, precision):
    """Grouped matmuls (`jax.lax.ragged_dot`) over the pairs sorted by expert."""
    gate_w, up_w, down_w = experts
    order, _, group_sizes = _sorted_pairs(top_experts, gate_w.shape[0])
    token_of_pair = order // top_experts.shape[-1]
    xs = flat[token_of_pair]
    gate = jax.lax.ragged_dot(xs, gate_w, group_sizes, precision=precision)
    up = jax.lax.ragged_dot(xs, up_w, group_sizes, precision=precision)
    ys = jax.lax.ragged_dot(swiglu(gate, up), down_w, group_sizes, precision=precision)
    ys = ys * top_probs.reshape(-1)[order][:, None]
    return jnp.zeros_like(flat).at[token_of_pair].add(ys)


def blocked(flat, experts, top_experts, top_probs, precision, rows):
    """Each expert's sorted pairs padded to whole blocks of `rows` (R), so every block has one
    expert, and one batched matmul per projection over the C blocks, each with its expert's
    weights gathered: static shapes for any routing with C = ceil(N*k / R) + E - 1. Padding rows
    read a zero row, are weighted 0 and dropped when the outputs are added back to their tokens.

    Tried and dropped: a capacity layout (each expert's pairs in its own slots of an (E, rows,
    D) buffer, weights used as they are) with this as the fallback when an expert overflows is
    25% faster per layer when routing fits (1 core, 1,024 tokens, top-2 of 8: 17.7 vs 24.2 ms),
    but the busiest expert of benchmarks/models_cpu.py's random routers holds 1.3-2x the mean
    load, so every layer fell back and whole steps gained nothing.
    """
    gate_w, up_w, down_w = experts
    num_experts, top_k = gate_w.shape[0], top_experts.shape[-1]
    pairs = top_experts.size
    num_blocks = -(-pairs // rows) + num_experts - 1
    order, expert_of_sorted, sizes = _sorted_pairs(top_experts, num_experts)
    rank = jnp.arange(pairs) - (jnp.cumsum(sizes) - sizes)[expert_of_sorted]
    padded_sizes = -(-sizes // rows) * rows
    padded_ends = jnp.cumsum(padded_sizes)
    slot = (padded_ends - padded_sizes)[expert_of_sorted] + rank
    pair_of_slot = jnp.full((num_blocks * rows,), pairs).at[slot].set(order)  # pairs = padding
    token_of_slot = pair_of_slot // top_k  # padding -> N, out of range
    weight_of_slot = top_probs.reshape(-1).at[pair_of_slot].get(mode="fill", fill_value=0)
    block_expert = jnp.searchsorted(padded_ends, jnp.arange(num_blocks) * rows, side="right")
    block_expert = jnp.minimum(block_expert, num_experts - 1)  # trailing all-padding blocks
    xs = flat.at[token_of_slot].get(mode="fill", fill_value=0).reshape(num_blocks, rows, -1)
    gate = _block_matmul(xs, gate_w, block_expert, precision)
    up = _block_matmul(xs, up_w, block_expert, precision)
    ys = _block_matmul(swiglu(gate, up), down_w, block_expert, precision)
    ys = ys.reshape(num_blocks * rows, -1) * weight_of_slot[:, None]
    return jnp.zeros_like(flat).at[token_of_slot].add(ys, mode="drop")


@functools.partial(jax.checkpoint, static_argnums=(3,))
def _block_matmul(x, weights, block_expert, precision):
    """Blocks x (C, R, K) times their experts' weights (E, K, N)[block_expert] -> (C, R, N).

    Rematerialised: the backward pass gathers the (C, K, N) block weights again instead of
    keeping them from the forward pass, where they would stay alive across the whole model
    (C/E times the expert weights per projection and layer: for Qwen3-30B-A3B at 8,192 tokens
    on GPUs, 6 GB a layer).
    """
    return jnp.einsum("CRK,CKN->CRN", x, weights[block_expert], precision=precision)
