"""Export a policy to a Hugging Face directory (for SGLang, transformers and everyone else).

    python -m launch.export_hf --checkpoint=/models/Qwen3-8B --out=/tmp/qwen3-8b-export

--checkpoint_format says what --checkpoint is: `hf` (an HF directory: a round trip through our
model, checking that load and save agree) or `orbax` (a training run's checkpoint directory,
e.g. runs/tiny/checkpoints/grpo: its newest step's params on the run's base model; read only,
so exporting from a live run never disturbs its saves). Weights are loaded sharded over all
devices (fsdp), so a model larger than one device exports; multi-host jobs pass the --dist_*
flags.
"""

from absl import flags

from sandmle_jax import paths
from sandmle_jax.errors import ConfigError
from sandmle_jax.models import hf
from sandmle_jax.monitoring import console
from sandmle_jax.parallel import distributed
from sandmle_jax.parallel import host_memory
from sandmle_jax.parallel import mesh as mesh_lib
from sandmle_jax.rl import weight_sync

_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "Checkpoint to export.", required=True)
# checkpoint format -> exporter(checkpoint, out_dir, *, mesh, dtype, max_shard_bytes)
_EXPORTERS = {"hf": hf.export_hf_dir, "orbax": weight_sync.export_checkpoint}

_FORMAT = flags.DEFINE_enum("checkpoint_format", "hf", sorted(_EXPORTERS),
                            "What --checkpoint is: `hf` = a Hugging Face model directory, "
                            "`orbax` = a training run's checkpoint directory.")
_OUT = flags.DEFINE_string("out", None, "Output directory (created).", required=True)
_DTYPE = flags.DEFINE_enum("dtype", "auto", ["auto", "float32", "bfloat16", "float16"],
                           "Saved dtype; `auto` keeps the checkpoint's.")
_MAX_SHARD_GB = flags.DEFINE_float("max_shard_gb", 5.0, "Largest safetensors file, in GiB.",
                                   lower_bound=0.001)


def main(argv):
    del argv
    host_memory.keep_freed_memory_from_flags()
    console.quiet()
    checkpoint, out = paths.absolute(_CHECKPOINT.value), paths.absolute(_OUT.value)
    if not checkpoint.is_dir():
        raise ConfigError(f"--checkpoint {checkpoint}: no such directory")
    distributed.initialize_from_flags()
    mesh = mesh_lib.make_mesh(mesh_lib.MeshConfig(fsdp=-1))
    export = _EXPORTERS[_FORMAT.value]
    export(str(checkpoint), str(out), mesh=mesh,
           dtype=None if _DTYPE.value == "auto" else _DTYPE.value,
           max_shard_bytes=int(_MAX_SHARD_GB.value * 2**30))
    console.stage(f"exported {checkpoint} to {out}")


if __name__ == "__main__":
    console.run_launcher(main)
