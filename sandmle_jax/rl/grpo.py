"""GRPO math as pure JAX functions: advantages, token log-probs, the clipped policy loss.

Shapes: B trajectories (rows), T token positions of the whole conversation, V vocabulary.
Every per-token array is (B, T) and aligned with the conversation's token ids: position t holds
the quantity for token t (log p(tokens[t] | tokens[:t])); position 0 predicts nothing and is 0.
`mask` is 1 only on policy-generated tokens, so prompts, tool responses and padding drop out.

Semantics follow veRL's `core_algos` (read, not copied):
- advantages: per group, (r - mean) / (std + eps) with torch.std's *unbiased* (ddof=1) std;
  Dr.GRPO drops the division (`std_normalize=False`).
- policy loss: ratio = exp(clip(logp - old_logp, -20, 20)); the PPO loss
  max(-A * ratio, -A * clip(ratio, 1 - clip_low, 1 + clip_high)); dual-clip applies only where
  A < 0 and caps that loss at -A * dual_clip (veRL `clip_ratio_c`).
- aggregation (veRL `agg_loss`, the form with global batch normalisers):
    token-mean:              sum_it l_it m_it / N_tokens
    seq-mean-token-mean:     sum_i (sum_t l_it m_it / sum_t m_it) / N_seqs
    seq-mean-token-sum:      sum_i (sum_t l_it m_it) / N_seqs
    seq-mean-token-sum-norm: sum_i (sum_t l_it m_it / C) / N_seqs   (Dr.GRPO; C a constant,
                             e.g. the max generation length)
  where N_tokens counts mask tokens and N_seqs counts rows with at least one mask token. Passing
  N_tokens / N_seqs of the whole mini-batch (`global_token_count` / `global_seq_count`) makes
  each micro-batch's loss a partial sum: the micro-batch losses (and their gradients) add up to
  the full-batch loss exactly, whatever the micro-batching or data-parallel layout.
- truncated importance sampling (TIS): per token w = min(exp(old_logp - rollout_logp), cap),
  a constant (stop-gradient) multiplier on the policy loss, correcting the rollout engine's
  numerical mismatch with the learner.
"""

from typing import Literal

import jax
import jax.numpy as jnp

Aggregation = Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum",
                      "seq-mean-token-sum-norm"]
AGGREGATIONS: tuple[str, ...] = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum",
                                 "seq-mean-token-sum-norm")
KL_ESTIMATORS: tuple[str, ...] = ("k1", "k3")

# veRL's clamp of the log-ratio before exp(): keeps a wildly off-policy token from overflowing.
_LOG_RATIO_BOUND = 20.0
# veRL's clamp of the k3 estimate, for the same reason.
_K3_BOUND = 10.0

# Metrics whose micro-batch values combine by max instead of by sum.
MAX_METRICS: tuple[str, ...] = ("mismatch_abs_max",)


def compute_advantages(rewards: jax.Array, group_size: int, *, std_normalize: bool = True,
                       eps: float = 1e-6) -> jax.Array:
    """Group-relative advantages for rewards laid out group after group.

    rewards: (N,) with N = num_groups * group_size, the members of a group adjacent.
    Returns (N,): r - group mean, divided by (unbiased group std + eps) when `std_normalize`
    (GRPO; veRL's torch.std), undivided for Dr.GRPO. A group whose rewards are all equal gets
    advantage 0 for every member.
    """
    rewards = jnp.asarray(rewards, jnp.float32)
    if rewards.ndim != 1:
        raise ValueError(f"rewards must be 1-D (one per trajectory), got shape {rewards.shape}")
    if group_size < 2:
        raise ValueError(f"group_size must be >= 2 for group-relative advantages, got {group_size}")
    if rewards.shape[0] % group_size:
        raise ValueError(f"{rewards.shape[0]} rewards do not split into groups of {group_size}: "
                         "lay rewards out group after group with every group complete")
    groups = rewards.reshape(-1, group_size)                          # (G, n)
    centred = groups - groups.mean(axis=1, keepdims=True)
    if std_normalize:
        std = jnp.sqrt(jnp.sum(centred**2, axis=1, keepdims=True) / (group_size - 1))
        centred = centred / (std + eps)
    return centred.reshape(-1)


def zero_variance_groups(rewards: jax.Array, group_size: int) -> jax.Array:
    """(N,) bool: True for members of a group whose rewards are all equal (no learning signal)."""
    groups = jnp.asarray(rewards).reshape(-1, group_size)
    flat = jnp.all(groups == groups[:, :1], axis=1)
    return jnp.repeat(flat, group_size)


def mask_trajectories(mask: jax.Array, drop: jax.Array) -> jax.Array:
    """Zero the loss mask of dropped rows (timeouts, zero-variance groups).

    Apply it after `compute_advantages`, as the paper does: dropped members still count in their
    group's mean and std, so the other members' advantages do not change; the dropped rows just
    stop contributing tokens, sequences and gradient.
    """
    return mask * (1 - jnp.asarray(drop, mask.dtype))[:, None]


def loss_normalizers(mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(token count, sequence count) of a mask: the `global_*_count`s for the whole mini-batch."""
    mask = jnp.asarray(mask, jnp.float32)
    return mask.sum(), (mask.sum(axis=-1) > 0).sum().astype(jnp.float32)


def _scaled_logits(logits: jax.Array, temperature: float) -> jax.Array:
    """(B, T, V) fp32 logits / temperature, every position kept: slicing off the last one would
    copy a vocabulary-sized array (XLA:CPU materialises it); its row is dropped from the (B, T)
    results instead."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 (the rollout sampling temperature), "
                         f"got {temperature}")
    return logits.astype(jnp.float32) / temperature


def _shift_right(x: jax.Array) -> jax.Array:
    """(B, T) values where [:, t] is about the distribution at t (which predicts token t+1) ->
    aligned with the tokens they score: out[:, 0] = 0, out[:, t] = x[:, t-1]."""
    return jnp.pad(x[:, :-1], ((0, 0), (1, 0)))


def token_logprobs(logits: jax.Array, tokens: jax.Array, temperature: float) -> jax.Array:
    """log softmax(logits / temperature) at the next token, aligned with `tokens`.

    logits: (B, T, V) from running the model on tokens (B, T); logits[:, t] predicts token t+1.
    Returns (B, T) float32: out[:, t] = log p(tokens[:, t] | tokens[:, :t]); out[:, 0] = 0.
    The temperature must equal the rollout's so learner and rollout log-probs are comparable.
    """
    scaled = _scaled_logits(logits, temperature)
    next_tokens = jnp.pad(tokens[:, 1:], ((0, 0), (0, 1)))  # the last row's pick is dropped
    picked = jnp.take_along_axis(scaled, next_tokens[..., None], axis=-1)[..., 0]
    return _shift_right(picked - jax.nn.logsumexp(scaled, axis=-1))


def token_entropy(logits: jax.Array, temperature: float) -> jax.Array:
    """(B, T) entropy of the temperature-scaled next-token distribution, aligned like
    `token_logprobs` (out[:, t] is the entropy of the distribution that sampled token t)."""
    log_p = jax.nn.log_softmax(_scaled_logits(logits, temperature), axis=-1)
    return _shift_right(-jnp.sum(jnp.exp(log_p) * log_p, axis=-1))


def aggregate_loss(loss_mat: jax.Array, mask: jax.Array, aggregation: Aggregation, *,
                   global_token_count: jax.Array | float | None = None,
                   global_seq_count: jax.Array | float | None = None,
                   loss_scale_factor: float | None = None) -> jax.Array:
    """Reduce a (B, T) per-token loss to a scalar (definitions in the module docstring).

    Without global counts the normalisers come from this batch (veRL's single-batch default).
    `loss_scale_factor` is Dr.GRPO's constant C; it defaults to T like veRL, which is only
    layout-independent when every batch has the same T: pass the constant when T varies (buckets).
    """
    mask = mask.astype(loss_mat.dtype)
    local_tokens, local_seqs = loss_normalizers(mask)
    tokens = local_tokens if global_token_count is None else global_token_count
    seqs = local_seqs if global_seq_count is None else global_seq_count
    row_sums = jnp.sum(loss_mat * mask, axis=-1)                       # (B,)
    if aggregation == "token-mean":
        return row_sums.sum() / jnp.maximum(tokens, 1.0)
    if aggregation == "seq-mean-token-mean":
        row_means = row_sums / jnp.maximum(mask.sum(axis=-1), 1.0)
        return row_means.sum() / jnp.maximum(seqs, 1.0)
    if aggregation == "seq-mean-token-sum":
        return row_sums.sum() / jnp.maximum(seqs, 1.0)
    if aggregation == "seq-mean-token-sum-norm":
        scale = loss_mat.shape[-1] if loss_scale_factor is None else loss_scale_factor
        return row_sums.sum() / scale / jnp.maximum(seqs, 1.0)
    raise ValueError(f"unknown aggregation {aggregation!r}; choose one of {AGGREGATIONS}")


def kl_penalty(logp: jax.Array, ref_logp: jax.Array, estimator: str) -> jax.Array:
    """Per-token KL(pi || pi_ref) estimate from samples of pi: k1 = log ratio, k3 = r - 1 - log r
    with r = pi_ref / pi (Schulman's low-variance estimator; veRL's `low_var_kl`, clamped)."""
    if estimator == "k1":
        return logp - ref_logp
    if estimator == "k3":
        log_r = jnp.clip(ref_logp - logp, -_LOG_RATIO_BOUND, _LOG_RATIO_BOUND)
        return jnp.clip(jnp.exp(log_r) - log_r - 1.0, -_K3_BOUND, _K3_BOUND)
    raise ValueError(f"unknown KL estimator {estimator!r}; choose one of {KL_ESTIMATORS}")


def policy_loss(logp: jax.Array, old_logp: jax.Array, advantages: jax.Array, mask: jax.Array, *,
                clip_low: float = 0.2, clip_high: float = 0.28, dual_clip: float | None = 3.0,
                aggregation: Aggregation = "seq-mean-token-mean",
                rollout_logp: jax.Array | None = None, tis_cap: float | None = None,
                ref_logp: jax.Array | None = None, kl_coef: float = 0.0,
                kl_estimator: str = "k3",
                global_token_count: jax.Array | float | None = None,
                global_seq_count: jax.Array | float | None = None,
                loss_scale_factor: float | None = None) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Clipped GRPO policy loss (to minimise) and its metrics.

    logp, old_logp, mask, rollout_logp, ref_logp: (B, T); advantages: (B,) per trajectory
    (broadcast to its tokens) or (B, T). Gradients flow through `logp` only.

    Metrics are token means over the mask (`mismatch_abs_max` a max). With global counts they
    are normalised by `global_token_count`, so like the loss they add up over micro-batches
    (combine `MAX_METRICS` by max instead). Mismatch metrics need `rollout_logp`: |old - rollout|
    mean and max, and k3 KL(rollout || learner); TIS weighting needs `tis_cap` as well.
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; choose one of {AGGREGATIONS}")
    if dual_clip is not None and dual_clip <= 1.0:
        raise ValueError(f"dual_clip must be > 1 (a cap of dual_clip * |A| on negative-advantage "
                         f"losses) or None to disable it, got {dual_clip}")
    if tis_cap is not None and rollout_logp is None:
        raise ValueError("tis_cap needs rollout_logp: pass the rollout engine's log-probs")
    if kl_coef and ref_logp is None:
        raise ValueError("kl_coef > 0 needs ref_logp: pass the reference policy's log-probs")
    if logp.shape != mask.shape or old_logp.shape != mask.shape:
        raise ValueError(f"logp {logp.shape}, old_logp {old_logp.shape} and mask {mask.shape} "
                         "must all be (batch, tokens)")
    mask = mask.astype(jnp.float32)
    old_logp = jax.lax.stop_gradient(old_logp)
    adv = jnp.asarray(advantages, jnp.float32)
    adv = jnp.broadcast_to(adv[:, None] if adv.ndim == 1 else adv, mask.shape)

    log_ratio = jnp.clip(logp - old_logp, -_LOG_RATIO_BOUND, _LOG_RATIO_BOUND)
    ratio = jnp.exp(log_ratio)
    unclipped = -adv * ratio
    clipped = -adv * jnp.clip(ratio, 1.0 - clip_low, 1.0 + clip_high)
    losses = jnp.maximum(unclipped, clipped)
    dual_clipped = jnp.zeros_like(losses, dtype=bool)
    if dual_clip is not None:
        cap = -adv * dual_clip
        dual_clipped = (adv < 0) & (losses > cap)
        losses = jnp.where(adv < 0, jnp.minimum(losses, cap), losses)

    tokens = global_token_count
    def token_mean(x: jax.Array) -> jax.Array:
        return aggregate_loss(x, mask, "token-mean", global_token_count=tokens)

    metrics = {
        "clip_frac": token_mean((clipped > unclipped).astype(jnp.float32)),
        "dual_clip_frac": token_mean(dual_clipped.astype(jnp.float32)),
        "ppo_kl": token_mean(-log_ratio),
    }
    if rollout_logp is not None:
        delta = old_logp - jax.lax.stop_gradient(rollout_logp)       # log(pi_learner / pi_rollout)
        abs_delta = jnp.abs(delta)
        metrics["mismatch_abs_mean"] = token_mean(abs_delta)
        metrics["mismatch_abs_max"] = jnp.max(jnp.where(mask > 0, abs_delta, 0.0))
        metrics["mismatch_k3"] = token_mean(kl_penalty(rollout_logp, old_logp, "k3"))
        if tis_cap is not None:
            weight = jax.lax.stop_gradient(jnp.minimum(jnp.exp(delta), tis_cap))
            losses = losses * weight
            metrics["tis_weight_mean"] = token_mean(weight)

    agg = dict(global_token_count=global_token_count, global_seq_count=global_seq_count,
               loss_scale_factor=loss_scale_factor)
    pg_loss = aggregate_loss(losses, mask, aggregation, **agg)
    metrics["pg_loss"] = pg_loss
    loss = pg_loss
    if ref_logp is not None:
        kl = kl_penalty(logp, jax.lax.stop_gradient(ref_logp), kl_estimator)
        metrics["kl_ref"] = token_mean(kl)
        if kl_coef:
            loss = loss + kl_coef * aggregate_loss(kl, mask, aggregation, **agg)
    metrics["loss"] = loss
    return loss, metrics
