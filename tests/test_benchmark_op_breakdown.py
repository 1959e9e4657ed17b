"""The op breakdown behind the CPU ratio's bound counts as matmuls exactly the ops that are."""

import jax
import jax.numpy as jnp
import torch

from benchmarks import op_breakdown


def test_dots_and_fusions_holding_dots_are_matmuls_and_elementwise_ops_are_not():
    def step(x, w):
        hidden = jnp.tanh(x @ w) * 2.0 + 1.0
        return jnp.sum(hidden @ w.T), jnp.exp(x).sum()

    x, w = jnp.ones((64, 32)), jnp.ones((32, 48))
    hlo = jax.jit(step).lower(x, w).compile().as_text()
    entry = hlo.split("\nENTRY ")[1].splitlines()
    # Independently: the executed instructions that jax traced from a dot_general.
    traced_dots = {line.split(" = ")[0].replace("ROOT ", "").strip().lstrip("%")
                   for line in entry if 'op_name="jit(step)/dot_general"' in line}
    assert len(traced_dots) == 2
    assert op_breakdown._ops_with_dots(hlo) == traced_dots


def test_torch_matmul_time_is_a_share_of_the_step():
    a, b = torch.rand(256, 256), torch.rand(256, 256)

    def step():
        (torch.exp(a @ b) + 1).sum()

    matmul, total = op_breakdown.torch_split(step, steps=3)
    assert 0 < matmul < total
    only_matmul, only_total = op_breakdown.torch_split(lambda: a @ b, steps=3)
    assert only_matmul / only_total > 0.5
