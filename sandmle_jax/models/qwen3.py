"""Qwen3 dense and Qwen3-MoE decoders in Flax NNX, numerically following transformers.

Each submodule's comment names its HF key (under `model.layers.{i}.` unless stated). Numerics
follow HF's order of casts: RMSNorm in fp32 then cast back before the weight multiply; q/k
RMSNorm per head before RoPE; RoPE tables in fp32 cast to the compute dtype; attention softmax in
fp32; MoE router softmax in fp32. One deliberate difference: the LM head accumulates in fp32 and
always returns fp32 logits (HF returns compute-dtype logits), so bf16 log-probs are better and
fp32 runs stay exact; its backward pass still runs in the compute dtype.

Shapes: B batch, T tokens in this call, S key slots (T, or max_len with a cache), D hidden,
N query heads, K kv heads, G = N // K, H head_dim, F mlp width, E experts, V vocab, L layers.

Padding and positions: `attention_mask[b, t] == 1` marks real tokens. Without explicit
`positions`, a token's position is the number of real tokens before it in its sequence (so left-
or right-padded batches give every sequence positions 0, 1, 2, ... like HF `generate`).

KV cache: `init_cache(batch, max_len)` gives a `KVCache`; `model(ids, attention_mask=m,
cache=c)` writes the chunk at each sequence's own slot `c.end[b]`, attends over the cache and
returns `(logits, new_cache)`. A sequence's `end` advances past its last real token in the chunk,
so right-padded prompts continue right after their own last token and left-padded prompts after
the padded block; feeding a token with mask 0 (a finished sequence) does not advance it. Tokens
that would land past max_len are dropped (not written): the caller keeps `end + T <= max_len`.
"""

import math

import jax
import jax.numpy as jnp
from flax import nnx
from flax import struct

from sandmle_jax.models import moe_experts
from sandmle_jax.models.config import Qwen3Config
from sandmle_jax.models.head_logprobs import HeadInputs
from sandmle_jax.models.swiglu import swiglu
from sandmle_jax.parallel import rules as sharding_rules

__all__ = ["KVCache", "Qwen3", "Qwen3Config"]

_BATCH, _LENGTH = "activation_batch", "activation_length"
_ATTENTION_IMPLS = ("einsum", "xla", "cudnn")
_CAUSAL_BLOCKS = 4  # query blocks of the cache-free einsum attention
_MIN_CAUSAL_BLOCK = 32  # shorter sequences run as one block


def _normal_param(rngs: nnx.Rngs, shape: tuple[int, ...], names: tuple[str | None, ...],
                  std: float, dtype) -> nnx.Param:
    value = nnx.initializers.normal(std)(rngs.params(), shape, dtype)
    return nnx.Param(value, logical_axes=names)


def _token_matmul(x: jax.Array, w: jax.Array, precision, contract: int = 1,
                  **kwargs) -> jax.Array:
    """x (B, T, *C) times w (*C, *O) -> (B, T, *O), as one 2-D matmul over the B*T tokens.

    The C dims (x's last `contract`) are contracted. Flat token matmuls keep XLA:CPU's backward
    pass off slow transposed copies of 3-D activations (1 thread, 1K tokens: MLP fwd+bwd 29 ->
    19 ms, LM head 78 -> 52 ms); on GPU/TPU the reshapes are free.
    """
    b, t = x.shape[:2]
    out_shape = w.shape[contract:]
    y = jnp.dot(x.reshape(b * t, -1), w.reshape(-1, math.prod(out_shape)), precision=precision,
                **kwargs)
    return y.reshape(b, t, *out_shape)


@jax.custom_vjp
def _low_precision_backward_logits(h: jax.Array, head: jax.Array) -> jax.Array:
    """h (N, D) @ head (D, V) in the compute dtype, accumulated and returned in fp32, whose
    backward runs in the compute dtype too.

    Autodiff of a dot with an fp32 result would hand both backward matmuls the fp32 cotangent,
    and XLA then upcasts the weights and runs two fp32 GEMMs over the whole vocabulary (the
    largest matmuls of a small model) and keeps an fp32 (N, V) gradient. Here the cotangent is
    cast to the compute dtype first, as mixed-precision training does for every other layer.
    """
    return jnp.dot(h, head, preferred_element_type=jnp.float32)


def _low_precision_backward_logits_fwd(h, head):
    return _low_precision_backward_logits(h, head), (h, head)


def _low_precision_backward_logits_bwd(residuals, cotangent):
    h, head = residuals
    cotangent = cotangent.astype(h.dtype)
    return (jnp.dot(cotangent, head.T, preferred_element_type=jnp.float32).astype(h.dtype),
            jnp.dot(h.T, cotangent, preferred_element_type=jnp.float32).astype(head.dtype))


_low_precision_backward_logits.defvjp(_low_precision_backward_logits_fwd,
                                      _low_precision_backward_logits_bwd)


def _logits(h: jax.Array, head: jax.Array, precision) -> jax.Array:
    """The LM head: h (B, T, D) @ head (D, V) -> fp32 logits (B, T, V). fp32 compute keeps the
    plain dot at `precision`; lower-precision compute runs its backward in that dtype."""
    if h.dtype == jnp.float32:
        return _token_matmul(h, head, precision, preferred_element_type=jnp.float32)
    b, t = h.shape[:2]
    return _low_precision_backward_logits(h.reshape(b * t, -1), head).reshape(b, t, -1)


@struct.dataclass
class KVCache:
    """Keys/values of every layer plus which slots hold real tokens.

    k, v:    (L, B, S, K, H) in the compute dtype, post-RoPE keys.
    kv_mask: (B, S) bool, True where a slot holds a real (unpadded) token.
    end:     (B,) int32, the slot the next token of each sequence is written to.
    """

    k: jax.Array
    v: jax.Array
    kv_mask: jax.Array
    end: jax.Array

    @staticmethod
    def logical_axes() -> "KVCache":
        """Logical axis names per field, for `shardings` and for callers building their own."""
        kv = ("cache_layers", "cache_batch", "cache_length", "cache_kv_heads", "cache_head_dim")
        return KVCache(k=kv, v=kv, kv_mask=("cache_batch", "cache_length"), end=("cache_batch",))

    def shardings(self, mesh: jax.sharding.Mesh,
                  rules: sharding_rules.Rules = sharding_rules.DEFAULT_RULES) -> "KVCache":
        names = KVCache.logical_axes()
        return KVCache(**{
                field: sharding_rules.named_sharding(getattr(names, field),
                                                     getattr(self, field).shape, mesh, rules)
                for field in ("k", "v", "kv_mask", "end")})


class RMSNorm(nnx.Module):
    """HF Qwen3RMSNorm: normalise in fp32, cast back, then multiply by the weight."""

    def __init__(self, size: int, eps: float, *, param_dtype):
        self.weight = nnx.Param(jnp.ones((size,), param_dtype), logical_axes=("norm",))
        self.eps = eps

    def __call__(self, x: jax.Array) -> jax.Array:
        x32 = x.astype(jnp.float32)
        variance = jnp.mean(jnp.square(x32), axis=-1, keepdims=True)
        normed = (x32 * jax.lax.rsqrt(variance + self.eps)).astype(x.dtype)
        return self.weight[...].astype(x.dtype) * normed


def rope_tables(positions: jax.Array, head_dim: int, theta: float, *,
                below: int | None = None) -> tuple[jax.Array, jax.Array]:
    """cos, sin of shape (B, T, H) in fp32 (HF's default rope: halves repeated, not interleaved).

    `below`: a static bound on the positions. The tables are then computed once per position
    0..below-1 and gathered, because XLA fuses a direct cos/sin into every consumer and so
    recomputes them per head in each layer's q/k rotation and its backward (XLA:CPU, the
    benchmark's dense model: 40 fused cos ops, 1 this way; step time -3%).
    """
    if below is not None:
        cos, sin = rope_tables(jnp.arange(below), head_dim, theta)
        return cos[positions], sin[positions]
    inv_freq = 1.0 / (theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))
    freqs = positions[..., None].astype(jnp.float32) * inv_freq
    angles = jnp.concatenate([freqs, freqs], axis=-1)
    return jnp.cos(angles), jnp.sin(angles)


def _apply_rope(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
    """x: (B, T, heads, H); cos, sin: (B, T, H) fp32, cast to x's dtype as HF does."""
    cos, sin = cos[:, :, None, :].astype(x.dtype), sin[:, :, None, :].astype(x.dtype)
    half = x.shape[-1] // 2
    rotated = jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rotated * sin


def _write_slots(cache: jax.Array, update: jax.Array, slots: jax.Array, layer=None) -> jax.Array:
    """cache[(layer,) b, slots[b, t]] = update[b, t]; slots past the end are dropped.

    A scatter into the whole cache (no per-layer slice copied out and back), so a donated cache
    is updated in place.
    """
    rows = jnp.arange(slots.shape[0])[:, None]
    index = (rows, slots) if layer is None else (layer, rows, slots)
    return cache.at[index].set(update, mode="drop")


def _masked_attention(q, k, v, mask, scale, precision):
    """Softmax attention under an arbitrary mask, fp32 softmax: q (B, T, N, H), k, v (B, S, K, H),
    mask (B, T, S) bool -> (B, T, N, H) in q's dtype.

    Laid out for XLA:CPU, whose backward pass otherwise runs through slow transposed copies of the
    score-sized arrays: the G query heads of each kv head are stacked into one (G*T) axis so both
    matmuls are plain (B, K) batched ones; the scale is applied to q, not to the scores; the mask
    is an additive bias (no select in the backward pass); the softmax is normalised on the (.., H)
    output instead of the (.., S) probabilities (as flash attention does). Fully masked rows
    (padding queries) stay uniform, as before.
    """
    b, t, n, h = q.shape
    kv_heads = k.shape[2]
    g = n // kv_heads
    q = (q * scale).reshape(b, t, kv_heads, g, h).transpose(0, 2, 3, 1, 4)
    q = q.reshape(b, kv_heads, g * t, h)
    k, v = k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)  # (B, K, S, H)
    scores = jnp.einsum("BKQH,BKSH->BKQS", q, k, precision=precision)  # Q = G*T
    bias = jnp.where(mask, 0.0, jnp.finfo(jnp.float32).min)[:, None, None]  # (B, 1, 1, T, S)
    scores = scores.reshape(b, kv_heads, g, t, -1).astype(jnp.float32) + bias
    weights = jnp.exp(scores - jax.lax.stop_gradient(jnp.max(scores, axis=-1, keepdims=True)))
    out = jnp.einsum("BKQS,BKSH->BKQH", weights.reshape(b, kv_heads, g * t, -1).astype(q.dtype),
                     v, precision=precision)
    out = out.reshape(b, kv_heads, g, t, h) / jnp.sum(weights, axis=-1, keepdims=True)
    return out.astype(q.dtype).transpose(0, 3, 1, 2, 4).reshape(b, t, n, h)


def _causal_block_attention(q, k, v, mask, scale, precision):
    """`_masked_attention` for the cache-free forward (S == T, causal) in query blocks that each
    see only the keys up to their own end, so the fully masked upper triangle is never computed
    (at 4 blocks, 10 of 16 score tiles) or kept for the backward pass (0.6B fp32 train step on
    CPU: 47.1 -> 43.6 peak bytes/param). Real rows are unchanged; a fully masked row (a
    left-padding query) is uniform over its block's keys instead of all keys.
    """
    t = q.shape[1]
    size = -(-t // _CAUSAL_BLOCKS)
    if size < _MIN_CAUSAL_BLOCK:
        return _masked_attention(q, k, v, mask, scale, precision)
    outs = []
    for start in range(0, t, size):
        end = min(start + size, t)
        outs.append(_masked_attention(q[:, start:end], k[:, :end], v[:, :end],
                                      mask[:, start:end, :end], scale, precision))
    return jnp.concatenate(outs, axis=1)


class Attention(nnx.Module):
    """HF `self_attn`: q/k/v/o projections, per-head q_norm/k_norm, RoPE, GQA."""

    def __init__(self, config: Qwen3Config, *, rngs: nnx.Rngs, param_dtype, dtype, precision,
                 attention_impl: str):
        d, n, k, h = (config.hidden_size, config.num_attention_heads, config.num_key_value_heads,
                      config.head_dim)
        std = config.initializer_range
        self.q_proj = _normal_param(rngs, (d, n, h), ("embed", "q_heads", "head_dim"), std,
                                    param_dtype)  # q_proj.weight (N*H, D)
        self.k_proj = _normal_param(rngs, (d, k, h), ("embed", "kv_heads", "head_dim"), std,
                                    param_dtype)  # k_proj.weight (K*H, D)
        self.v_proj = _normal_param(rngs, (d, k, h), ("embed", "kv_heads", "head_dim"), std,
                                    param_dtype)  # v_proj.weight (K*H, D)
        self.o_proj = _normal_param(rngs, (n, h, d), ("q_heads", "head_dim", "embed"), std,
                                    param_dtype)  # o_proj.weight (D, N*H)
        self.q_norm = RMSNorm(h, config.rms_norm_eps, param_dtype=param_dtype)  # q_norm.weight
        self.k_norm = RMSNorm(h, config.rms_norm_eps, param_dtype=param_dtype)  # k_norm.weight
        self.num_kv_heads = k
        self.scale = h ** -0.5
        self.dtype = dtype
        self.precision = precision
        self.attention_impl = attention_impl

    def __call__(self, x, cos, sin, mask, lengths, cache=None, write_slots=None):
        """x (B, T, D); mask (B, T, S) bool; lengths (B,) real tokens per right-padded row (used
        by the fused implementations); cache (k, v, layer) with k, v the whole (L, B, S, K, H)
        cache, or None; write_slots (B, T): the cache slot of each new token."""
        dt, prec = self.dtype, self.precision
        q = _token_matmul(x, self.q_proj[...].astype(dt), prec)  # (B, T, N, H)
        k = _token_matmul(x, self.k_proj[...].astype(dt), prec)  # (B, T, K, H)
        v = _token_matmul(x, self.v_proj[...].astype(dt), prec)  # (B, T, K, H)
        q = _apply_rope(self.q_norm(q), cos, sin)
        k = _apply_rope(self.k_norm(k), cos, sin)
        q = sharding_rules.constrain(
                q, (_BATCH, _LENGTH, "activation_heads", "activation_head_dim"))
        new_cache = None
        if cache is not None:
            k_all, v_all, layer = cache
            k_all = _write_slots(k_all, k, write_slots, layer)
            v_all = _write_slots(v_all, v, write_slots, layer)
            new_cache = (k_all, v_all)
            k, v = k_all[layer], v_all[layer]
        if cache is None and self.attention_impl != "einsum":
            out = jax.nn.dot_product_attention(
                    q, k, v, scale=self.scale, is_causal=True, query_seq_lengths=lengths,
                    key_value_seq_lengths=lengths, implementation=self.attention_impl)
        elif cache is None:
            out = _causal_block_attention(q, k, v, mask, self.scale, prec)
        else:
            out = _masked_attention(q, k, v, mask, self.scale, prec)
        return _token_matmul(out, self.o_proj[...].astype(dt), prec, contract=2), new_cache


class MLP(nnx.Module):
    """HF `mlp` (dense): down_proj(silu(gate_proj(x)) * up_proj(x))."""

    def __init__(self, config: Qwen3Config, *, rngs: nnx.Rngs, param_dtype, dtype, precision):
        d, f, std = config.hidden_size, config.intermediate_size, config.initializer_range
        self.gate_proj = _normal_param(rngs, (d, f), ("embed", "mlp"), std, param_dtype)
        self.up_proj = _normal_param(rngs, (d, f), ("embed", "mlp"), std, param_dtype)
        self.down_proj = _normal_param(rngs, (f, d), ("mlp", "embed"), std, param_dtype)
        self.dtype = dtype
        self.precision = precision

    def __call__(self, x: jax.Array) -> jax.Array:
        dt, prec = self.dtype, self.precision
        gate = _token_matmul(x, self.gate_proj[...].astype(dt), prec)  # (B, T, F)
        up = _token_matmul(x, self.up_proj[...].astype(dt), prec)
        hidden = sharding_rules.constrain(swiglu(gate, up),
                                          (_BATCH, _LENGTH, "activation_mlp"))
        return _token_matmul(hidden, self.down_proj[...].astype(dt), prec)


class MoE(nnx.Module):
    """HF `mlp` (Qwen3MoeSparseMoeBlock): fp32 softmax router, top-k, dropless experts.

    No token is ever dropped, exactly like HF: `moe_experts.apply_experts` runs every routed
    pair (expert-aligned blocks of static shape on CPU and GPUs, ragged_dot grouped matmuls on
    TPU).
    """

    def __init__(self, config: Qwen3Config, *, rngs: nnx.Rngs, param_dtype, dtype, precision):
        d, e, f = config.hidden_size, config.num_experts, config.moe_intermediate_size
        std = config.initializer_range
        self.gate = _normal_param(rngs, (d, e), ("embed", None), std,
                                  param_dtype)  # mlp.gate.weight (E, D)
        self.experts_gate_proj = _normal_param(
                rngs, (e, d, f), ("exp", "embed", "moe_mlp"), std,
                param_dtype)  # mlp.experts.{e}.gate_proj.weight (F, D)
        self.experts_up_proj = _normal_param(
                rngs, (e, d, f), ("exp", "embed", "moe_mlp"), std,
                param_dtype)  # mlp.experts.{e}.up_proj.weight (F, D)
        self.experts_down_proj = _normal_param(
                rngs, (e, f, d), ("exp", "moe_mlp", "embed"), std,
                param_dtype)  # mlp.experts.{e}.down_proj.weight (D, F)
        self.top_k = config.num_experts_per_tok
        self.norm_topk_prob = config.norm_topk_prob
        self.dtype = dtype
        self.precision = precision

    def __call__(self, x: jax.Array, token_mask: jax.Array):
        """Returns y (B, T, D) and load-balancing statistics (counts (E,), prob_sum (E,), rows)."""
        dt, prec = self.dtype, self.precision
        b, t, d = x.shape
        flat = x.reshape(b * t, d)
        num_experts = self.gate.shape[-1]
        router_logits = jnp.einsum("ND,DE->NE", flat, self.gate[...].astype(dt), precision=prec)
        probs = jax.nn.softmax(router_logits.astype(jnp.float32), axis=-1)
        top_probs, top_experts = jax.lax.top_k(probs, self.top_k)  # (N, k)
        if self.norm_topk_prob:
            top_probs = top_probs / jnp.sum(top_probs, axis=-1, keepdims=True)
        experts = tuple(w[...].astype(dt) for w in (
                self.experts_gate_proj, self.experts_up_proj, self.experts_down_proj))
        y = moe_experts.apply_experts(flat, experts, top_experts, top_probs.astype(dt), prec)

        # HF load_balancing_loss_func statistics, padding excluded.
        weight = token_mask.reshape(-1).astype(jnp.float32)
        counts = jnp.einsum("NKE,N->E", jax.nn.one_hot(top_experts, num_experts), weight)
        prob_sum = jnp.einsum("NE,N->E", probs, weight)
        return y.reshape(b, t, d), (counts, prob_sum, jnp.sum(weight))


class DecoderLayer(nnx.Module):
    """HF `model.layers.{i}`: pre-norm attention and MLP/MoE blocks with residuals."""

    def __init__(self, config: Qwen3Config, layer: int, *, rngs: nnx.Rngs, param_dtype, dtype,
                 precision, attention_impl: str):
        kw = dict(rngs=rngs, param_dtype=param_dtype, dtype=dtype, precision=precision)
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps,
                                       param_dtype=param_dtype)
        self.self_attn = Attention(config, attention_impl=attention_impl, **kw)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps,
                                                param_dtype=param_dtype)
        self.mlp = MoE(config, **kw) if config.is_moe_layer(layer) else MLP(config, **kw)

    def __call__(self, h, cos, sin, mask, token_mask, cache, write_slots):
        lengths = jnp.sum(token_mask, axis=-1, dtype=jnp.int32)
        attn, new_cache = self.self_attn(self.input_layernorm(h), cos, sin, mask, lengths,
                                         cache, write_slots)
        h = h + attn
        x = self.post_attention_layernorm(h)
        if isinstance(self.mlp, MoE):
            out, stats = self.mlp(x, token_mask)
        else:
            out, stats = self.mlp(x), None
        h = sharding_rules.constrain(h + out, (_BATCH, _LENGTH, "activation_embed"))
        return h, new_cache, stats


def _run_layer(layer: DecoderLayer, *args):
    return layer(*args)


class Qwen3(nnx.Module):
    """Qwen3 / Qwen3-MoE causal LM (HF Qwen3ForCausalLM / Qwen3MoeForCausalLM).

    `param_dtype` stores the weights, `dtype` (default: param_dtype) is the compute dtype; with
    fp32 compute every matmul runs at HIGHEST precision so logits are exact fp32 on any backend.
    `remat=True` rematerialises each decoder layer in the backward pass.

    attention_impl (cache-free forward only; decoding always uses "einsum"):
      "einsum"  exact masked attention for any padding (default; HF parity is tested on it);
      "xla" / "cudnn"  `jax.nn.dot_product_attention` with causal + sequence-length masking
                (cudnn = fused flash attention on NVIDIA GPUs, bf16/fp16). These assume
                RIGHT-padded batches (real tokens first in every row); left padding is wrong.
    """

    def __init__(self, config: Qwen3Config, *, rngs: nnx.Rngs, param_dtype=jnp.float32,
                 dtype=None, remat: bool = False, attention_impl: str = "einsum"):
        if attention_impl not in _ATTENTION_IMPLS:
            raise ValueError(f"attention_impl={attention_impl!r}; choose one of {_ATTENTION_IMPLS}")
        dtype = jnp.dtype(param_dtype if dtype is None else dtype)
        precision = jax.lax.Precision.HIGHEST if dtype == jnp.float32 else None
        d, v, std = config.hidden_size, config.vocab_size, config.initializer_range
        self.config = config
        self.dtype = dtype
        self.remat = remat
        self.precision = precision
        self.embed_tokens = _normal_param(rngs, (v, d), ("vocab", "embed"), std,
                                          param_dtype)  # model.embed_tokens.weight (V, D)
        self.layers = nnx.List([
                DecoderLayer(config, i, rngs=rngs, param_dtype=param_dtype, dtype=dtype,
                             precision=precision, attention_impl=attention_impl)
                for i in range(config.num_hidden_layers)])
        self.norm = RMSNorm(d, config.rms_norm_eps, param_dtype=param_dtype)  # model.norm.weight
        self.lm_head = (None if config.tie_word_embeddings else
                        _normal_param(rngs, (d, v), ("embed", "vocab"), std,
                                      param_dtype))  # lm_head.weight (V, D)

    def init_cache(self, batch: int, max_len: int) -> KVCache:
        """An empty cache for `batch` sequences of up to `max_len` tokens (prompt + generated)."""
        c = self.config
        shape = (c.num_hidden_layers, batch, max_len, c.num_key_value_heads, c.head_dim)
        return KVCache(k=jnp.zeros(shape, self.dtype), v=jnp.zeros(shape, self.dtype),
                       kv_mask=jnp.zeros((batch, max_len), bool),
                       end=jnp.zeros((batch,), jnp.int32))

    def __call__(self, input_ids: jax.Array, positions: jax.Array | None = None,
                 attention_mask: jax.Array | None = None, cache: KVCache | None = None):
        """Logits (B, T, V) fp32; with a cache, (logits, new_cache)."""
        logits, _, new_cache = self.forward(input_ids, positions, attention_mask, cache)
        return logits if cache is None else (logits, new_cache)

    def logits_and_aux(self, input_ids: jax.Array, positions: jax.Array | None = None,
                       attention_mask: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """Training forward: logits (B, T, V) fp32 and the MoE load-balancing loss.

        The aux loss is HF's `load_balancing_loss_func` over all MoE layers (padding excluded),
        unscaled: add `config.router_aux_loss_coef * aux` to the loss. It is 0 for dense models.
        """
        logits, aux, _ = self.forward(input_ids, positions, attention_mask, None)
        return logits, aux

    def head_inputs(self, input_ids: jax.Array, positions: jax.Array | None = None,
                    attention_mask: jax.Array | None = None) -> HeadInputs:
        """Training forward up to the LM head: final-norm hidden states, the head (D, V) and the
        MoE load-balancing loss, for `head_logprobs.next_token_logprobs` (log-probs without
        the whole logits tensor)."""
        h, aux, _ = self._trunk(input_ids, positions, attention_mask, None)
        return HeadInputs(hidden=h, head=self._head(), aux_loss=aux, precision=self.precision)

    def forward(self, input_ids, positions, attention_mask, cache):
        """(logits, aux_loss, new_cache or None); see the module docstring for the semantics."""
        h, aux, new_cache = self._trunk(input_ids, positions, attention_mask, cache)
        logits = _logits(h, self._head(), self.precision)
        logits = sharding_rules.constrain(logits, (_BATCH, _LENGTH, "activation_vocab"))
        return logits, aux, new_cache

    def _head(self) -> jax.Array:
        """The LM head (D, V) in the compute dtype: lm_head, or the tied embedding."""
        head = self.embed_tokens[...].T if self.lm_head is None else self.lm_head[...]
        return head.astype(self.dtype)

    def _trunk(self, input_ids, positions, attention_mask, cache):
        """(final-norm hidden states, aux_loss, new_cache or None)."""
        b, t = input_ids.shape
        token_mask = (jnp.ones((b, t), bool) if attention_mask is None
                      else attention_mask.astype(bool))
        real_before = jnp.cumsum(token_mask, axis=-1) - 1  # real tokens before each, this chunk
        if cache is None:
            seen = jnp.zeros((b,), jnp.int32)
            query_slots = jnp.broadcast_to(jnp.arange(t), (b, t))
            kv_valid, key_slots = token_mask, jnp.arange(t)
        else:
            seen = jnp.sum(cache.kv_mask, axis=-1)
            query_slots = cache.end[:, None] + jnp.arange(t)  # also where the chunk is written
            kv_valid = _write_slots(cache.kv_mask, token_mask, query_slots)
            key_slots = jnp.arange(cache.kv_mask.shape[1])
        # Positions counted here from a cache-free chunk are below its length t.
        below = t if positions is None and cache is None else None
        if positions is None:
            positions = jnp.maximum(seen[:, None] + real_before, 0)
        mask = kv_valid[:, None, :] & (key_slots[None, None, :] <= query_slots[:, :, None])

        h = self.embed_tokens[...][input_ids].astype(self.dtype)
        h = sharding_rules.constrain(h, (_BATCH, _LENGTH, "activation_embed"))
        cos, sin = rope_tables(positions, self.config.head_dim, self.config.rope_theta,
                               below=below)
        run = nnx.remat(_run_layer) if self.remat else _run_layer
        stats = []
        k_cache, v_cache = (None, None) if cache is None else (cache.k, cache.v)
        for i, layer in enumerate(self.layers):
            layer_cache = None if cache is None else (k_cache, v_cache, i)
            h, new_kv, layer_stats = run(layer, h, cos, sin, mask, token_mask, layer_cache,
                                         query_slots)
            if cache is not None:
                k_cache, v_cache = new_kv
            if layer_stats is not None:
                stats.append(layer_stats)
        h = self.norm(h)

        new_cache = None
        if cache is not None:
            advance = jnp.max(jnp.where(token_mask, jnp.arange(1, t + 1), 0), axis=-1)
            new_cache = KVCache(k=k_cache, v=v_cache, kv_mask=kv_valid, end=cache.end + advance)
        return h, self._aux_loss(stats), new_cache

    def _aux_loss(self, stats) -> jax.Array:
        if not stats:
            return jnp.zeros((), jnp.float32)
        counts = sum(s[0] for s in stats)
        prob_sum = sum(s[1] for s in stats)
        rows = sum(s[2] for s in stats)
        return self.config.num_experts * jnp.sum((counts / rows) * (prob_sum / rows))
