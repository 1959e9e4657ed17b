"""`jax.distributed` initialisation from absl flags, before anything touches a JAX backend.

Three ways to run:
  * one process (default): nothing to do;
  * explicit: `--dist_coordinator_address=host:port --dist_num_processes=N --dist_process_id=i`
    on every process (how the multi-host tests start two local CPU processes);
  * `--dist_auto`: JAX detects the cluster (SLURM, Open MPI, TPU pods, GKE ...) itself.
On CPU, cross-process collectives go over gloo.
"""

from absl import flags
import jax

from sandmle_jax.errors import ConfigError

_COORDINATOR = flags.DEFINE_string(
        "dist_coordinator_address", None, "host:port of process 0's coordinator (multi-host runs).")
_NUM_PROCESSES = flags.DEFINE_integer("dist_num_processes", 1, "Number of processes in the job.")
_PROCESS_ID = flags.DEFINE_integer("dist_process_id", 0, "This process's index in [0, num).")
_AUTO = flags.DEFINE_bool(
        "dist_auto", False, "Let JAX detect the cluster (SLURM, MPI, TPU, GKE) and initialise.")


def initialize(coordinator_address: str | None = None, num_processes: int = 1,
               process_id: int = 0, auto: bool = False) -> None:
    """Joins this process to a multi-process JAX job (no-op for a single explicit process)."""
    if auto:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize()
        return
    if num_processes == 1 and coordinator_address is None:
        return
    if coordinator_address is None or num_processes < 1 or not 0 <= process_id < num_processes:
        raise ConfigError(
                "multi-process run needs a coordinator address and "
                f"0 <= process_id < num_processes; got coordinator_address="
                f"{coordinator_address!r}, num_processes={num_processes}, process_id={process_id}")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)


def initialize_from_flags() -> None:
    """`initialize` with the --dist_* flags (call at the top of a launcher's main)."""
    initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value, _AUTO.value)
