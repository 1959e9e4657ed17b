"""Keep freed host memory mapped for reuse, so XLA:CPU's per-step temporaries stop page-faulting.

Each call of a jitted XLA:CPU step allocates its temporaries afresh (152 MB for one step of
benchmarks/models_cpu.py's tiny dense model, 298 MB for its MoE model). glibc gives blocks over
its mmap threshold (32 MB at most by default) their own mappings and unmaps them on free, and
XLA's worker threads allocate from per-thread arenas whose heaps cannot exceed 64 MB; so every
step faulted its whole temporary buffer in again: 39,000 page faults and 55 ms of kernel time of
a 210 ms one-core step (dense), 76,000 and 110 ms of 300 ms (MoE). One arena, no mmap below
2 GiB and no trimming remove the faults (dense 210 -> 154 ms, MoE 300 -> 185 ms on one core).

The price: memory the process frees stays mapped, so its resident size stays near its peak
instead of shrinking after it (the tiny main job's peak RSS: 2.7 -> 5.5 GB). Entry points
therefore apply it only where JAX will run on the CPU: on an accelerator host the big
temporaries live in device memory, and keeping freed host memory would only hold on to, e.g.,
a checkpoint's host copies.
"""

import ctypes
import importlib.metadata
import importlib.util
import pkgutil

from absl import flags
import jax

_KEEP = flags.DEFINE_bool(
        "keep_freed_memory", True,
        "Where JAX runs on the CPU, keep freed host memory for reuse "
        "(sandmle_jax/parallel/host_memory.py): faster jitted CPU steps, resident memory stays "
        "at its peak; false: glibc's defaults.")

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
_LARGEST_INT = 2**31 - 1


def keep_freed_memory_from_flags() -> bool:
    """`keep_freed_memory_on_cpu()` unless --keep_freed_memory=false."""
    return _KEEP.value and keep_freed_memory_on_cpu()


def keep_freed_memory_on_cpu() -> bool:
    """`keep_freed_memory()` where JAX will run on the CPU; True when it took effect."""
    return not accelerator_expected() and keep_freed_memory()


def accelerator_expected() -> bool:
    """Whether JAX's default backend will be an accelerator, decided without starting one (which
    would be too late): the platforms asked for (`JAX_PLATFORMS` / `jax_platforms`), else any
    installed PJRT plugin (CUDA, ROCm, ...) or libtpu."""
    platforms = jax.config.jax_platforms
    if platforms:
        return any(p.strip() not in ("", "cpu") for p in platforms.split(","))
    if any(True for _ in importlib.metadata.entry_points(group="jax_plugins")):
        return True
    namespace = importlib.util.find_spec("jax_plugins")  # path-based plugins
    if namespace and any(True for _ in pkgutil.iter_modules(namespace.submodule_search_locations)):
        return True
    return importlib.util.find_spec("libtpu") is not None


def keep_freed_memory() -> bool:
    """One malloc arena, large blocks from the heap, no trimming; True when glibc took all three.

    Call before JAX runs anything (before `jax.distributed` initialisation too): threads that
    already have their own arenas keep them. Without glibc (macOS, musl) nothing changes and
    the result is False.
    """
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "gnu_get_libc_version"):
        return False
    settings = ((_M_ARENA_MAX, 1), (_M_MMAP_THRESHOLD, _LARGEST_INT),
                (_M_TRIM_THRESHOLD, _LARGEST_INT))
    return all(libc.mallopt(option, value) == 1 for option, value in settings)
