"""Two local processes x 4 CPU devices (gloo collectives) act as one 8-device job.

Both processes join through `parallel.distributed.initialize`, build one (data=2, fsdp=2,
tensor=2) mesh over the 8 global devices, load the checkpoint straight into their shards,
compute loss and gradients on one global batch and export it again; the results must equal one
single-device process.
"""

import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
from flax import nnx
from objective import masked_nll

from sandmle_jax.models import hf, safetensors_io
from sandmle_jax.models.qwen3 import Qwen3, Qwen3Config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BATCH_SEED = 3


def _batch():
    rng = np.random.RandomState(BATCH_SEED)
    ids = rng.randint(2, 256, (8, 6)).astype(np.int32)
    mask = (np.arange(6)[None] < rng.randint(2, 7, (8, 1))).astype(np.int32)
    return ids, mask


def _flat_grads(grads) -> dict[str, jax.Array]:
    return {"/".join(map(str, path)): v[...] for path, v in nnx.to_flat_state(grads)}


def _worker(coordinator: str, process_id: int, checkpoint: str, out_dir: str) -> None:
    from jax.experimental import multihost_utils

    from sandmle_jax.parallel import distributed
    from sandmle_jax.parallel import mesh as mesh_lib
    from sandmle_jax.parallel import rules

    distributed.initialize(coordinator, num_processes=2, process_id=process_id)
    assert jax.process_count() == 2 and jax.device_count() == 8 and jax.local_device_count() == 4
    mesh = mesh_lib.make_mesh(mesh_lib.MeshConfig(data=2, fsdp=2, tensor=2))
    model = hf.load_model(checkpoint, mesh=mesh)
    ids, mask = _batch()
    sharding = rules.named_sharding(("activation_batch", "activation_length"), ids.shape, mesh)
    ids_g, mask_g = (jax.make_array_from_callback(x.shape, sharding, lambda i, x=x: x[i])
                     for x in (ids, mask))
    with rules.use_mesh_rules(mesh):
        loss, grads = nnx.jit(nnx.value_and_grad(masked_nll))(model, ids_g, mask_g)
    host = {k: np.asarray(multihost_utils.process_allgather(v, tiled=True))
            for k, v in _flat_grads(grads).items()}
    hf.save_model(model, os.path.join(out_dir, "export"))
    if process_id == 0:
        np.savez(os.path.join(out_dir, "grads.npz"), loss=np.asarray(float(loss)), **host)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """Runs the 2-process job; returns (checkpoint dir, output dir, single-process reference)."""
    tmp = tmp_path_factory.mktemp("multihost")
    model = Qwen3(Qwen3Config.tiny_moe(), rngs=nnx.Rngs(0))
    checkpoint = str(tmp / "checkpoint")
    hf.save_model(model, checkpoint)
    ids, mask = _batch()
    loss, grads = nnx.jit(nnx.value_and_grad(masked_nll))(hf.load_model(checkpoint), ids, mask)
    reference = {k: np.asarray(v) for k, v in _flat_grads(grads).items()} | {"loss": float(loss)}

    coordinator = f"127.0.0.1:{_free_port()}"
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu")
    procs = [subprocess.Popen([sys.executable, __file__, coordinator, str(pid), checkpoint,
                               str(tmp)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for pid in (0, 1)]
    try:
        outputs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, output in zip(procs, outputs):
        assert p.returncode == 0, output[-4000:]
    return checkpoint, str(tmp), reference


def test_two_processes_compute_the_single_process_loss_and_grads(job):
    _, out_dir, reference = job
    result = np.load(os.path.join(out_dir, "grads.npz"))
    np.testing.assert_allclose(float(result["loss"]), reference["loss"], rtol=1e-6)
    names = set(result.files) - {"loss"}
    assert names == set(reference) - {"loss"}
    scale = max(np.abs(reference[k]).max() for k in names)
    for name in names:
        np.testing.assert_allclose(result[name], reference[name], rtol=0, atol=1e-5 * scale,
                                   err_msg=name)


def test_two_processes_export_the_same_checkpoint(job):
    checkpoint, out_dir, _ = job
    original = safetensors_io.SafetensorsFile(os.path.join(checkpoint, "model.safetensors"))
    exported = safetensors_io.SafetensorsFile(os.path.join(out_dir, "export", "model.safetensors"))
    assert sorted(exported.keys()) == sorted(original.keys())
    for key in original.keys():
        np.testing.assert_array_equal(exported.tensor(key), original.tensor(key), err_msg=key)


if __name__ == "__main__":
    _worker(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])
