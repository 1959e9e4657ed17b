"""SwiGLU activation with a hand-written backward, shared by the dense MLP and the MoE experts."""

import jax


@jax.custom_vjp
def swiglu(gate: jax.Array, up: jax.Array) -> jax.Array:
    """silu(gate) * up, with a hand-written backward that keeps only gate and up and recomputes
    the sigmoid: one elementwise pass each way instead of autodiff's several (XLA:CPU ran the
    activation's forward and backward as 4-6 separate passes of ~1.2 ms per layer)."""
    return jax.nn.silu(gate) * up


def _swiglu_fwd(gate, up):
    return swiglu(gate, up), (gate, up)


def _swiglu_bwd(residuals, cotangent):
    gate, up = residuals
    sigmoid = jax.nn.sigmoid(gate)
    d_gate = cotangent * up * sigmoid * (1 + gate * (1 - sigmoid))
    return d_gate.astype(gate.dtype), (cotangent * gate * sigmoid).astype(up.dtype)


swiglu.defvjp(_swiglu_fwd, _swiglu_bwd)
