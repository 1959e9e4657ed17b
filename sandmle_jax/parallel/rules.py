"""Logical axis names -> mesh axes (MaxText style), for parameters and activations.

Every parameter carries `logical_axes` metadata (one name per dimension, None = never sharded);
activations are constrained with `constrain(x, names)`. One table, `Rules`, maps names to mesh
axes. A mesh axis that does not divide a dimension (or is already used by an earlier dimension of
the same array) is dropped for that dimension, so tiny test models and odd head counts still
shard (replicated where needed) instead of failing.
"""

import contextlib
import math
import threading
from collections.abc import Iterator, Sequence

import jax
from flax import nnx

# name -> mesh axis, tuple of mesh axes, or None (replicated).
Rules = tuple[tuple[str, str | tuple[str, ...] | None], ...]

DEFAULT_RULES: Rules = (
        # activations
        ("activation_batch", ("data", "fsdp", "expert")),
        ("activation_length", None),
        ("activation_embed", None),
        ("activation_heads", "tensor"),
        ("activation_kv_heads", "tensor"),
        ("activation_head_dim", None),
        ("activation_mlp", "tensor"),
        ("activation_vocab", "tensor"),
        ("activation_exp", "expert"),
        # KV cache [layers, batch, length, kv_heads, head_dim]
        ("cache_layers", None),
        ("cache_batch", ("data", "fsdp", "expert")),
        ("cache_length", None),
        ("cache_kv_heads", "tensor"),
        ("cache_head_dim", None),
        # parameters
        ("vocab", "tensor"),
        ("embed", "fsdp"),
        ("q_heads", "tensor"),
        ("kv_heads", "tensor"),
        ("head_dim", None),
        ("mlp", "tensor"),
        ("exp", "expert"),
        ("moe_mlp", "tensor"),
        ("norm", None),
)


def mesh_axes_of(entry: str | Sequence[str] | None) -> tuple[str, ...]:
    """The mesh axes of a rule's value or a PartitionSpec entry (an axis, a tuple, or None)."""
    if entry is None:
        return ()
    return (entry,) if isinstance(entry, str) else tuple(entry)


def _lookup(rules: Rules, name: str | None) -> tuple[str, ...]:
    if name is None:
        return ()
    for logical, mesh_axes in rules:
        if logical == name:
            return mesh_axes_of(mesh_axes)
    raise KeyError(f"logical axis {name!r} has no rule; add it to the rules table "
                   f"(known: {[logical for logical, _ in rules]})")


def partition_spec(names: Sequence[str | None], shape: Sequence[int], mesh: jax.sharding.Mesh,
                   rules: Rules = DEFAULT_RULES) -> jax.sharding.PartitionSpec:
    """The PartitionSpec for an array of `shape` whose dimensions have logical `names`."""
    if len(names) != len(shape):
        raise ValueError(f"{len(names)} logical axes {tuple(names)} for a {len(shape)}-d array "
                         f"of shape {tuple(shape)}")
    used: set[str] = set()
    spec = []
    for name, size in zip(names, shape):
        kept = []
        for axis in _lookup(rules, name):
            if axis not in mesh.shape:
                raise ValueError(f"rule for {name!r} names mesh axis {axis!r}, not in mesh "
                                 f"axes {tuple(mesh.shape)}")
            product = math.prod(mesh.shape[k] for k in (*kept, axis))
            if axis in used or size % product:
                continue
            kept.append(axis)
        used.update(kept)
        spec.append(None if not kept else kept[0] if len(kept) == 1 else tuple(kept))
    return jax.sharding.PartitionSpec(*spec)


def named_sharding(names: Sequence[str | None], shape: Sequence[int], mesh: jax.sharding.Mesh,
                   rules: Rules = DEFAULT_RULES) -> jax.sharding.NamedSharding:
    return jax.sharding.NamedSharding(mesh, partition_spec(names, shape, mesh, rules))


def state_shardings(state, mesh: jax.sharding.Mesh, rules: Rules = DEFAULT_RULES):
    """NamedSharding pytree (same structure as `state`) for an NNX State of Variables.

    Works on concrete or abstract (`nnx.eval_shape`) states, e.g. a model's or a model plus
    its `nnx.Optimizer` (whose moments inherit the parameters' metadata). Every array Variable
    must carry `logical_axes` metadata; scalars (step counters) are replicated.
    """
    def one(variable):
        names = variable.get_metadata().get("logical_axes")
        if names is None and variable.shape == ():
            names = ()
        if names is None:
            raise ValueError(f"variable of shape {variable.shape} has no logical_axes metadata; "
                             "create it as nnx.Param(value, logical_axes=(...))")
        return variable.replace(named_sharding(names, variable.shape, mesh, rules))

    return jax.tree.map(one, state, is_leaf=lambda x: isinstance(x, nnx.Variable))


# ---- activations -------------------------------------------------------------------------------

_active = threading.local()


@contextlib.contextmanager
def use_mesh_rules(mesh: jax.sharding.Mesh, rules: Rules = DEFAULT_RULES) -> Iterator[None]:
    """While active, `constrain` pins activations to shardings under (mesh, rules).

    Enter it around the code that traces a jitted step; outside it `constrain` is the identity.
    """
    previous = getattr(_active, "value", None)
    _active.value = (mesh, rules)
    try:
        yield
    finally:
        _active.value = previous


def active_mesh_rules() -> tuple[jax.sharding.Mesh, Rules] | None:
    """The (mesh, rules) of the enclosing use_mesh_rules, or None outside it."""
    return getattr(_active, "value", None)


def constrain(x: jax.Array, names: Sequence[str | None]) -> jax.Array:
    """Sharding constraint on an activation by logical names (identity outside use_mesh_rules)."""
    active = active_mesh_rules()
    if active is None:
        return x
    mesh, rules = active
    return jax.lax.with_sharding_constraint(x, named_sharding(names, x.shape, mesh, rules))
