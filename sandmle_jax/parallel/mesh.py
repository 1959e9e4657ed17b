"""A device mesh from a config: axes (data, fsdp, expert, tensor), one of them may be -1 (infer)."""

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.experimental import mesh_utils

# Order matters: the last axis varies fastest over devices, so "tensor" (the most communication
# hungry) gets neighbouring devices.
MESH_AXES = ("data", "fsdp", "expert", "tensor")


@dataclasses.dataclass(frozen=True)
class MeshConfig:
    """Size of each mesh axis; exactly one may be -1 to take whatever devices are left."""

    data: int = 1
    fsdp: int = -1
    expert: int = 1
    tensor: int = 1

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "MeshConfig":
        """From a config dict (e.g. `config.mesh` of an ml_collections ConfigDict)."""
        unknown = sorted(set(values) - set(MESH_AXES))
        if unknown:
            raise ValueError(f"unknown mesh axes {unknown}; the axes are {list(MESH_AXES)}")
        return cls(**{k: int(v) for k, v in values.items()})

    def resolve(self, num_devices: int) -> dict[str, int]:
        """Axis sizes with -1 filled in; the product must equal num_devices."""
        sizes = {axis: getattr(self, axis) for axis in MESH_AXES}
        inferred = [axis for axis, size in sizes.items() if size == -1]
        bad = {axis: size for axis, size in sizes.items() if size == 0 or size < -1}
        if bad:
            raise ValueError(f"mesh axis sizes must be positive or -1 (infer), got {bad}")
        if len(inferred) > 1:
            raise ValueError(f"at most one mesh axis may be -1, got {inferred}")
        known = math.prod(size for size in sizes.values() if size != -1)
        if inferred:
            if num_devices % known:
                raise ValueError(f"cannot infer mesh axis {inferred[0]!r}: {num_devices} "
                                 f"devices are not divisible by the other axes' product "
                                 f"{known} ({sizes})")
            sizes[inferred[0]] = num_devices // known
        if math.prod(sizes.values()) != num_devices:
            raise ValueError(f"mesh {sizes} needs {math.prod(sizes.values())} devices but "
                             f"{num_devices} are available; set one axis to -1 to infer it")
        return sizes


def make_mesh(config: MeshConfig, devices: Sequence[jax.Device] | None = None) -> jax.sharding.Mesh:
    """A Mesh over all (global, multi-host) devices, or the given ones, with MESH_AXES names."""
    devices = list(jax.devices() if devices is None else devices)
    sizes = config.resolve(len(devices))
    shape = tuple(sizes[axis] for axis in MESH_AXES)
    if devices == list(jax.devices()):
        # Topology-aware placement (ICI/NVLink neighbours on the fast axes) where JAX knows it.
        device_array = mesh_utils.create_device_mesh(shape, devices)
    else:
        device_array = np.asarray(devices, dtype=object).reshape(shape)
    return jax.sharding.Mesh(device_array, MESH_AXES)
