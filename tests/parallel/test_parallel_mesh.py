"""Mesh sizes from config (-1 inferred), the logical-axis rules table, distributed arguments."""

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from sandmle_jax.parallel import distributed
from sandmle_jax.parallel import mesh as mesh_lib
from sandmle_jax.parallel import rules


class FakeMesh:
    """Only `.shape` is consulted by partition_spec; real multi-device meshes are in the
    subprocess tests (test_parallel_sharding.py)."""

    def __init__(self, **shape):
        self.shape = dict(shape)


MESH = FakeMesh(data=2, fsdp=4, expert=2, tensor=2)


@pytest.mark.parametrize("config, devices, expected", [
        (mesh_lib.MeshConfig(), 8, dict(data=1, fsdp=8, expert=1, tensor=1)),
        (mesh_lib.MeshConfig(fsdp=4, tensor=2), 8, dict(data=1, fsdp=4, expert=1, tensor=2)),
        (mesh_lib.MeshConfig(data=-1, fsdp=2, expert=2), 8, dict(data=2, fsdp=2, expert=2,
                                                                 tensor=1)),
])
def test_resolve_infers_the_minus_one_axis(config, devices, expected):
    assert config.resolve(devices) == expected


@pytest.mark.parametrize("config, message", [
        (mesh_lib.MeshConfig(data=-1, fsdp=-1), "at most one"),
        (mesh_lib.MeshConfig(data=-1, fsdp=3), "not divisible"),
        (mesh_lib.MeshConfig(data=2, fsdp=2), "needs 4 devices"),
        (mesh_lib.MeshConfig(tensor=0), "positive"),
])
def test_resolve_explains_impossible_meshes(config, message):
    with pytest.raises(ValueError, match=message):
        config.resolve(8)


def test_from_dict_rejects_unknown_axes():
    assert mesh_lib.MeshConfig.from_dict({"data": 2, "fsdp": -1}) == mesh_lib.MeshConfig(data=2)
    with pytest.raises(ValueError, match="pipeline"):
        mesh_lib.MeshConfig.from_dict({"pipeline": 2})


def test_make_mesh_on_the_local_devices():
    mesh = mesh_lib.make_mesh(mesh_lib.MeshConfig())
    assert mesh.axis_names == mesh_lib.MESH_AXES
    assert dict(mesh.shape) == {"data": 1, "fsdp": jax.device_count(), "expert": 1, "tensor": 1}


@pytest.mark.parametrize("names, shape, expected", [
        (("embed", "q_heads", "head_dim"), (64, 8, 16), P("fsdp", "tensor", None)),
        (("vocab", "embed"), (1000, 64), P("tensor", "fsdp")),
        (("exp", "embed", "moe_mlp"), (8, 64, 32), P("expert", "fsdp", "tensor")),
        (("activation_batch", "activation_length"), (32, 5), P(("data", "fsdp", "expert"), None)),
        # 2 kv heads do not split 4 ways but do split over tensor=2; 3 do not: replicated.
        (("embed", "kv_heads", "head_dim"), (64, 3, 16), P("fsdp", None, None)),
        # batch 4: data*fsdp = 8 does not divide 4, so only data is kept (expert=2 then fits).
        (("activation_batch",), (4,), P(("data", "expert"))),
        (("norm",), (64,), P(None)),
        ((None, "mlp"), (5, 64), P(None, "tensor")),
])
def test_partition_spec_golden(names, shape, expected):
    assert rules.partition_spec(names, shape, MESH) == expected


def test_a_mesh_axis_is_used_once_per_array():
    table = (("a", "fsdp"), ("b", "fsdp"))
    assert rules.partition_spec(("a", "b"), (8, 8), MESH, table) == P("fsdp", None)


def test_unknown_names_and_axes_are_explained():
    with pytest.raises(KeyError, match="no rule"):
        rules.partition_spec(("nonsense",), (4,), MESH)
    with pytest.raises(ValueError, match="pipe"):
        rules.partition_spec(("x",), (4,), MESH, (("x", "pipe"),))
    with pytest.raises(ValueError, match="2-d array"):
        rules.partition_spec(("embed",), (4, 4), MESH)


def test_constrain_is_identity_without_rules_and_pins_with_them():
    x = jax.numpy.ones((4, 3))
    assert rules.constrain(x, ("activation_batch", None)) is x
    mesh = mesh_lib.make_mesh(mesh_lib.MeshConfig())
    with rules.use_mesh_rules(mesh):
        y = jax.jit(lambda v: rules.constrain(v * 2, ("activation_batch", None)))(x)
    np.testing.assert_array_equal(y, 2 * np.ones((4, 3)))
    assert y.sharding.mesh.axis_names == mesh_lib.MESH_AXES


def test_distributed_single_process_is_a_no_op_and_bad_args_are_explained():
    distributed.initialize()  # one process, no coordinator: nothing to do
    with pytest.raises(ValueError, match="process_id"):
        distributed.initialize("localhost:1234", num_processes=2, process_id=2)
    with pytest.raises(ValueError, match="coordinator"):
        distributed.initialize(None, num_processes=2, process_id=0)


def test_state_shardings_cover_a_model_and_its_optimizer():
    import optax
    from flax import nnx

    from sandmle_jax.models.qwen3 import Qwen3, Qwen3Config

    def build():
        model = Qwen3(Qwen3Config.tiny_moe(), rngs=nnx.Rngs(0))
        return model, nnx.Optimizer(model, optax.adamw(1e-3), wrt=nnx.Param)

    _, state = nnx.split(nnx.eval_shape(build))
    mesh = mesh_lib.make_mesh(mesh_lib.MeshConfig())
    flat = dict(nnx.to_flat_state(rules.state_shardings(state, mesh)))
    assert flat[(0, "layers", 0, "mlp", "experts_up_proj")].get_value().spec == P(
            "expert", "fsdp", "tensor")
    assert flat[(1, "opt_state", 0, "mu", "layers", 0, "mlp", "experts_up_proj")].get_value() \
        .spec == P("expert", "fsdp", "tensor")
    assert flat[(1, "step")].get_value().spec == P()
    with pytest.raises(ValueError, match="logical_axes"):
        rules.state_shardings(nnx.State({"w": nnx.Param(jax.numpy.ones((2, 2)))}), mesh)


def test_kv_cache_shardings_follow_the_cache_rules():
    from flax import nnx

    from sandmle_jax.models.qwen3 import Qwen3, Qwen3Config

    cache = Qwen3(Qwen3Config.tiny(), rngs=nnx.Rngs(0)).init_cache(2, 8)
    shardings = cache.shardings(mesh_lib.make_mesh(mesh_lib.MeshConfig()))
    batch = ("data", "fsdp", "expert")
    assert shardings.k.spec == P(None, batch, None, "tensor", None) == shardings.v.spec
    assert shardings.kv_mask.spec == P(batch, None)
    assert shardings.end.spec == P(batch)
