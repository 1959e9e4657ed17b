"""The learner's optax chain, built from a validated config: clip -> AdamW(schedule)."""

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from sandmle_jax import dataclass_keys

SCHEDULES: tuple[str, ...] = ("constant", "cosine")


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """AdamW with linear warmup, then a constant or cosine learning rate, and global-norm clip.

    Defaults are the paper's RL recipe (lr 1e-6, no decay schedule); SFT overrides them.
    """
    learning_rate: float = 1e-6
    warmup_steps: int = 0           # lr ramps linearly over these steps
    schedule: str = "constant"      # after warmup: "constant" or "cosine"
    total_steps: int = 0            # cosine: the step where lr reaches its floor
    min_lr_ratio: float = 0.0       # cosine floor, as a fraction of learning_rate
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.01      # decoupled; applied to matrices only (ndim >= 2)
    max_grad_norm: float | None = 1.0  # None disables clipping

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {SCHEDULES}")
        if self.learning_rate <= 0 or self.warmup_steps < 0:
            raise ValueError("learning_rate must be > 0 and warmup_steps >= 0")
        if self.schedule == "cosine" and self.total_steps <= self.warmup_steps:
            raise ValueError(f"cosine schedule needs total_steps ({self.total_steps}) > "
                             f"warmup_steps ({self.warmup_steps})")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ValueError("max_grad_norm must be > 0, or None to disable clipping")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "OptimizerConfig":
        """Build from a dict or ConfigDict, rejecting keys this config does not know."""
        dataclass_keys.check_keys(cls, values, "optimizer config")
        return cls(**dict(values))


def learning_rate_schedule(config: OptimizerConfig) -> optax.Schedule:
    """lr(step) for the update at `step` (0-based).

    Warmup is lr * (step + 1) / warmup_steps, so the first update already moves the weights
    (veRL's step / warmup wastes it at lr 0). Cosine then decays from lr at the end of warmup to
    lr * min_lr_ratio at total_steps and stays there.
    """
    peak, warmup = config.learning_rate, config.warmup_steps

    def schedule(step: jax.Array) -> jax.Array:
        step = jnp.asarray(step, jnp.float32)
        warm = peak * jnp.minimum(1.0, (step + 1.0) / max(warmup, 1))
        if config.schedule == "constant":
            return warm
        progress = jnp.clip((step - warmup) / (config.total_steps - warmup), 0.0, 1.0)
        floor = peak * config.min_lr_ratio
        cosine = floor + (peak - floor) * 0.5 * (1.0 + jnp.cos(math.pi * progress))
        return jnp.where(step < warmup, warm, cosine)

    return schedule


def decay_mask(params: Any) -> Any:
    """Weight decay on matrices only: biases and norm scales are left alone."""
    return jax.tree.map(lambda p: p.ndim >= 2, params)


def make_optimizer(config: OptimizerConfig) -> optax.GradientTransformation:
    """clip_by_global_norm (if set) then AdamW on the schedule."""
    adamw = optax.adamw(learning_rate_schedule(config), b1=config.b1, b2=config.b2,
                        eps=config.eps, weight_decay=config.weight_decay, mask=decay_mask)
    if config.max_grad_norm is None:
        return adamw
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), adamw)
