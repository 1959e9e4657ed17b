"""The GRPO learner: train state and a jitted, donated update with gradient accumulation.

Model interface: `apply_fn(params, input_ids, attention_mask)` returns logits (B, T, V), or a
`head_logprobs.HeadInputs` (hidden states, LM head, MoE aux loss) whose log-probs are computed
`logit_chunk_tokens` tokens at a time so the whole fp32 logits never exist; params a pytree of
arrays. `nnx_apply_fn` builds one from any Flax NNX module: its `head_inputs(input_ids,
attention_mask=...)` where it has one (Qwen3), else `module(input_ids, attention_mask=...)`, so
the learner knows nothing about Qwen3.

One optimizer step per mini-batch (the paper's strictly on-policy recipe): every micro-batch
sees the same parameters, so the "old" log-probs of the PPO ratio are the current ones
(stop-gradient) and no extra forward pass is needed; the ratio is 1 and clipping only matters
through TIS against the rollout engine's log-probs. Micro-batch losses use the mini-batch's
global token/sequence counts, so their gradients add up to the full-batch gradient exactly.

Compilations: `_accumulate` once per micro-batch shape (= per length bucket), `_apply` once.
Remat is the model's option (e.g. `Qwen3(..., remat=True)` rematerialises each decoder layer):
wrapping the whole forward here would recompute everything and save nothing.
"""

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from sandmle_jax import dataclass_keys
from sandmle_jax.models import head_logprobs
from sandmle_jax.parallel import rules as sharding_rules
from sandmle_jax.rl import grpo
from sandmle_jax.rl.batching import LearnerBatch, MicroBatch

ModelOutput = jax.Array | head_logprobs.HeadInputs
ApplyFn = Callable[[Any, jax.Array, jax.Array], ModelOutput]
Params = Any


@flax.struct.dataclass
class TrainState:
    """Everything a resumed run needs besides the data cursor (see checkpoint.py)."""
    params: Params
    opt_state: optax.OptState
    step: jax.Array             # () int32, optimizer steps taken
    rng: jax.Array              # (2,) uint32 raw PRNG key, for stochastic parts of a recipe


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """GRPO loss settings; defaults are the SandMLE recipe (see SANDMLE.md)."""
    clip_low: float = 0.2                 # epsilon_low
    clip_high: float = 0.28               # epsilon_high (DAPO clip-higher)
    dual_clip: float | None = 3.0         # c; None disables dual-clip
    aggregation: str = "seq-mean-token-mean"
    loss_scale_factor: float | None = None  # Dr.GRPO constant C for seq-mean-token-sum-norm
    temperature: float = 1.0              # the rollout sampling temperature
    tis_cap: float | None = None          # truncated importance sampling cap; None = off
    kl_coef: float = 0.0                  # beta; 0 = no reference policy
    kl_estimator: str = "k3"
    aux_loss_coef: float = 0.0            # MoE load-balancing loss weight (HF router_aux_loss_coef)

    def __post_init__(self) -> None:
        if self.aggregation not in grpo.AGGREGATIONS:
            raise ValueError(f"unknown aggregation {self.aggregation!r}; "
                             f"choose one of {grpo.AGGREGATIONS}")
        if self.kl_estimator not in grpo.KL_ESTIMATORS:
            raise ValueError(f"unknown kl_estimator {self.kl_estimator!r}; "
                             f"choose one of {grpo.KL_ESTIMATORS}")
        if self.aggregation == "seq-mean-token-sum-norm" and self.loss_scale_factor is None:
            raise ValueError("seq-mean-token-sum-norm needs loss_scale_factor (Dr.GRPO's constant,"
                             " e.g. the max response length): bucket lengths vary")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "LossConfig":
        dataclass_keys.check_keys(cls, values, "loss config")
        return cls(**dict(values))


def nnx_apply_fn(module: nnx.Module, *, method: str | None = None) -> tuple[ApplyFn, Params]:
    """Split an NNX module into a pure apply function and its params (a nested dict).

    The function calls the module's `method` (e.g. "__call__" for logits, "logits_and_aux");
    by default `head_inputs` where the module has it, else the module itself (the learner's
    model interface). Non-Param state (e.g. RNG counters) is frozen into the function; the
    params template is kept abstract so the closure holds no second copy of the weights.
    """
    graphdef, param_state, rest = nnx.split(module, nnx.Param, ...)
    template = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), param_state)

    def apply_fn(params: Params, input_ids: jax.Array, attention_mask: jax.Array) -> Any:
        state = jax.tree.map(lambda x: x, template)
        nnx.replace_by_pure_dict(state, params)
        model = nnx.merge(graphdef, state, rest)
        name = method or ("head_inputs" if hasattr(model, "head_inputs") else "__call__")
        return getattr(model, name)(input_ids, attention_mask=attention_mask)

    return apply_fn, nnx.to_pure_dict(param_state)


def nnx_param_shardings(module: nnx.Module, mesh: jax.sharding.Mesh,
                        rules: sharding_rules.Rules = sharding_rules.DEFAULT_RULES) -> Any:
    """NamedShardings for `nnx_apply_fn(module)`'s params, from their logical axis names."""
    state = nnx.state(module, nnx.Param)
    return nnx.to_pure_dict(sharding_rules.state_shardings(state, mesh, rules))


def _cast_floats(tree: Any, dtype: Any) -> Any:
    return jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x,
                        tree)


class Learner:
    """Builds the jitted functions once; `train_step` runs one optimizer step on a LearnerBatch.

    compute_dtype: e.g. jnp.bfloat16 to run forward/backward in bf16 while params, gradients
    and optimizer state stay float32 (master weights); logits are upcast for the loss. Leave it
    None for a model that casts its weights to its own compute dtype (Qwen3's `dtype`, with
    `param_dtype=float32`): that is the same bf16-compute/fp32-master split.
    mesh / param_shardings: optional (from `parallel`): params, gradients and the optimizer
    state stay in `param_shardings`; micro-batch rows are split over the mesh's batch axes
    (rules' "activation_batch"); tracing runs under `use_mesh_rules(mesh, rules)` so the model's
    activation constraints apply. Rows per micro-batch must divide by the data-parallel size.
    logit_chunk_tokens: for models returning HeadInputs, how many tokens' fp32 logits exist at
    once (None = all of a micro-batch: fastest; a chunk costs one more LM-head matmul in the
    backward and bounds the logits' memory whatever the trajectory length).
    """

    def __init__(self, apply_fn: ApplyFn, optimizer: optax.GradientTransformation,
                 loss: LossConfig, *, compute_dtype: Any = None,
                 mesh: jax.sharding.Mesh | None = None, param_shardings: Any = None,
                 rules: sharding_rules.Rules = sharding_rules.DEFAULT_RULES,
                 logit_chunk_tokens: int | None = None):
        if (mesh is None) != (param_shardings is None):
            raise ValueError("pass mesh and param_shardings together (see nnx_param_shardings),"
                             " or neither for single-device training")
        self.apply_fn = apply_fn
        self.optimizer = optimizer
        self.loss = loss
        self.compute_dtype = compute_dtype
        self.mesh = mesh
        self.rules = rules
        self.param_shardings = param_shardings
        head_logprobs.chunk_positions(1, 1, logit_chunk_tokens)  # rejects a bad value now
        self.logit_chunk_tokens = logit_chunk_tokens
        grads_out = None if param_shardings is None else (param_shardings, None)
        self._accumulate = jax.jit(self._accumulate_impl, donate_argnums=(1, 2),
                                   out_shardings=grads_out)
        self._apply = jax.jit(self._apply_impl, donate_argnums=(0,))
        self._zeros = jax.jit(lambda p: jax.tree.map(jnp.zeros_like, p),
                              out_shardings=param_shardings)
        self._logprobs = jax.jit(self._logprobs_impl)
        self._metric_shapes: dict[bool, dict[str, jax.ShapeDtypeStruct]] = {}

    @contextlib.contextmanager
    def _tracing_context(self) -> Iterator[None]:
        if self.mesh is None:
            yield
            return
        with sharding_rules.use_mesh_rules(self.mesh, self.rules):
            yield

    # ---- state ------------------------------------------------------------------------------

    def init_state(self, params: Params, seed: int) -> TrainState:
        """Fresh state; with shardings, params and optimizer moments land in param_shardings."""
        if self.param_shardings is None:
            opt_state = self.optimizer.init(params)
        else:
            params = jax.device_put(params, self.param_shardings)
            abstract = jax.eval_shape(self.optimizer.init, params)
            replicated = jax.sharding.NamedSharding(self.mesh, jax.sharding.PartitionSpec())
            shardings = optax.tree_map_params(
                self.optimizer, lambda _, sharding: sharding, abstract, self.param_shardings,
                transform_non_params=lambda _: replicated)
            opt_state = jax.jit(self.optimizer.init, out_shardings=shardings)(params)
            # Counters on the mesh too: a checkpoint saved before any update (a step with
            # nothing to learn) holds them, and Orbax refuses host-local arrays in a
            # multi-process job.
            return TrainState(params=params, opt_state=opt_state,
                              step=jax.device_put(np.zeros((), np.int32), replicated),
                              rng=jax.device_put(np.asarray(jax.random.PRNGKey(seed)), replicated))
        return TrainState(params=params, opt_state=opt_state, step=jnp.zeros((), jnp.int32),
                          rng=jax.random.PRNGKey(seed))

    # ---- forward ----------------------------------------------------------------------------

    def _token_stats(self, params: Params, micro: MicroBatch
                     ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(R, L) log-probs, (R, L) entropies (no gradient) and the MoE aux loss (0 if none)."""
        if self.compute_dtype is not None:
            params = _cast_floats(params, self.compute_dtype)
        out = self.apply_fn(params, micro.input_ids, micro.attention_mask)
        temperature = self.loss.temperature
        if isinstance(out, head_logprobs.HeadInputs):
            logp, entropy = head_logprobs.next_token_logprobs(
                out, micro.input_ids, temperature, chunk_tokens=self.logit_chunk_tokens)
            return logp, jax.lax.stop_gradient(entropy), out.aux_loss
        logits = out.astype(jnp.float32)                               # (R, L, V)
        return (grpo.token_logprobs(logits, micro.input_ids, temperature),
                grpo.token_entropy(jax.lax.stop_gradient(logits), temperature),
                jnp.zeros((), jnp.float32))

    def _logprobs_impl(self, params: Params, micro: MicroBatch) -> jax.Array:
        return self._token_stats(params, micro)[0]

    def logprobs(self, params: Params, micro: MicroBatch) -> jax.Array:
        """(R, L) learner log-probs of a micro-batch, e.g. a reference policy's for the KL."""
        with self._tracing_context():
            return self._logprobs(params, self._place(micro))

    # ---- update -----------------------------------------------------------------------------

    def _loss_impl(self, params: Params, micro: MicroBatch, ref_logp: jax.Array | None,
                   token_count: jax.Array, seq_count: jax.Array
                   ) -> tuple[jax.Array, dict[str, jax.Array]]:
        cfg = self.loss
        logp, entropy, aux_loss = self._token_stats(params, micro)
        loss, metrics = grpo.policy_loss(
            logp, jax.lax.stop_gradient(logp), micro.advantages, micro.loss_mask,
            clip_low=cfg.clip_low, clip_high=cfg.clip_high, dual_clip=cfg.dual_clip,
            aggregation=cfg.aggregation, rollout_logp=micro.rollout_logp, tis_cap=cfg.tis_cap,
            ref_logp=ref_logp, kl_coef=cfg.kl_coef, kl_estimator=cfg.kl_estimator,
            global_token_count=token_count, global_seq_count=seq_count,
            loss_scale_factor=cfg.loss_scale_factor)
        metrics["entropy"] = grpo.aggregate_loss(entropy, micro.loss_mask, "token-mean",
                                                 global_token_count=token_count)
        # The aux loss is a per-micro-batch mean: weighted by the micro-batch's share of loss
        # tokens, the micro-batches' terms add up to the mini-batch's token-weighted mean.
        share = jnp.sum(micro.loss_mask.astype(jnp.float32)) / jnp.maximum(token_count, 1.0)
        metrics["aux_loss"] = aux_loss * share
        if cfg.aux_loss_coef:
            loss = loss + cfg.aux_loss_coef * metrics["aux_loss"]
            metrics["loss"] = loss
        return loss, metrics

    def _accumulate_impl(self, params: Params, grads: Params, metrics: dict[str, jax.Array],
                         micro: MicroBatch, ref_logp: jax.Array | None, token_count: jax.Array,
                         seq_count: jax.Array) -> tuple[Params, dict[str, jax.Array]]:
        (_, micro_metrics), micro_grads = jax.value_and_grad(self._loss_impl, has_aux=True)(
            params, micro, ref_logp, token_count, seq_count)
        grads = jax.tree.map(jnp.add, grads, micro_grads)
        combined = {k: (jnp.maximum if k in grpo.MAX_METRICS else jnp.add)(metrics[k], v)
                    for k, v in micro_metrics.items()}
        return grads, combined

    def _apply_impl(self, state: TrainState, grads: Params) -> tuple[TrainState, jax.Array]:
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new_state = state.replace(params=params, opt_state=opt_state, step=state.step + 1)
        return new_state, optax.tree.norm(grads)

    def _place(self, micro: MicroBatch) -> MicroBatch:
        """Put a micro-batch's rows on the mesh's batch axes (no-op without a mesh)."""
        if self.mesh is None:
            return micro
        names = {1: ("activation_batch",), 2: ("activation_batch", "activation_length")}
        return jax.device_put(micro, jax.tree.map(
            lambda x: sharding_rules.named_sharding(names[x.ndim], x.shape, self.mesh,
                                                    self.rules), micro))

    def _zero_metrics(self, params: Params, micro: MicroBatch, ref_logp: jax.Array | None
                      ) -> dict[str, jax.Array]:
        """Zeros with the metrics' structure, so every accumulate call shares one signature.

        The structure depends only on the config and on whether a reference policy is used;
        it is traced once per case (tracing a large model every step costs seconds).
        """
        key = ref_logp is None
        if key not in self._metric_shapes:
            self._metric_shapes[key] = jax.eval_shape(
                self._loss_impl, params, micro, ref_logp, jnp.float32(1), jnp.float32(1))[1]
        return {k: jnp.zeros(v.shape, v.dtype) for k, v in self._metric_shapes[key].items()}

    def compute_gradients(self, params: Params, batch: LearnerBatch,
                          ref_params: Params | None = None
                          ) -> tuple[Params, dict[str, jax.Array]]:
        """Sum of micro-batch gradients (= the mini-batch gradient) and the summed metrics."""
        if not batch.micro_batches:
            raise ValueError("the batch has no trajectories left (all dropped or empty masks); "
                             "skip this step instead of updating on nothing")
        if self.loss.kl_coef and ref_params is None:
            raise ValueError("loss.kl_coef > 0 needs ref_params (the reference policy's weights)")
        token_count = jnp.float32(batch.token_count)
        seq_count = jnp.float32(batch.seq_count)
        grads = self._zeros(params)
        metrics = None
        with self._tracing_context():
            for micro in batch.micro_batches:
                micro = self._place(micro)
                ref_logp = None if ref_params is None else self._logprobs(ref_params, micro)
                if metrics is None:
                    metrics = self._zero_metrics(params, micro, ref_logp)
                grads, metrics = self._accumulate(params, grads, metrics, micro, ref_logp,
                                                  token_count, seq_count)
        return grads, metrics

    def train_step(self, state: TrainState, batch: LearnerBatch,
                   ref_params: Params | None = None) -> tuple[TrainState, dict[str, float]]:
        """One optimizer step. `state` is donated: use only the returned one afterwards.

        Raises FloatingPointError on a non-finite loss or gradient norm (fail fast, before the
        next checkpoint can save poisoned weights).
        """
        start = time.perf_counter()
        step_before = int(state.step)
        grads, metrics = self.compute_gradients(state.params, batch, ref_params)
        state, grad_norm = self._apply(state, grads)
        out = {k: float(v) for k, v in jax.device_get(metrics).items()}
        out["grad_norm"] = float(grad_norm)
        elapsed = time.perf_counter() - start
        tokens = sum(int(np.asarray(m.attention_mask).sum()) for m in batch.micro_batches)
        out["tokens_per_s"] = tokens / elapsed
        out["step_s"] = elapsed
        out["step"] = float(step_before)
        if not (np.isfinite(out["loss"]) and np.isfinite(out["grad_norm"])):
            raise FloatingPointError(f"non-finite loss {out['loss']} or grad norm "
                                     f"{out['grad_norm']} at step {step_before}: lower the learning "
                                     "rate or inspect the batch; refusing to continue")
        return state, out

    def compilations(self) -> dict[str, int]:
        """How many programs each jitted function has compiled (one per input shape)."""
        return {"accumulate": self._accumulate._cache_size(), "apply": self._apply._cache_size()}
