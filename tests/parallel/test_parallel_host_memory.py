"""keep_freed_memory: a jitted CPU step whose temporaries exceed glibc's mmap threshold and a
thread arena's heap stops page-faulting them in on every call (fresh processes, since the
setting only takes before JAX's threads allocate)."""

import json
import platform
import subprocess
import sys

import pytest

_STEP_FAULTS = """
import json, resource, sys
if sys.argv[1] == "keep":
    from sandmle_jax.parallel import host_memory
    assert host_memory.keep_freed_memory()
import jax, jax.numpy as jnp

@jax.jit
def step(x):  # ~100 MB of temporaries: three (2048, 4096) fp32 intermediates
    a = jnp.sin(x)
    b = jnp.cos(x) * a
    return jnp.sum(a @ b.T) + jnp.sum(jnp.exp(a - b))

x = jnp.ones((2048, 4096))
for _ in range(3):
    step(x).block_until_ready()
faults = []
for _ in range(7):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    step(x).block_until_ready()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps(sorted(faults)[3]))  # the median: the heap may still grow in the first steps
"""


def _faults_per_step(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", _STEP_FAULTS, mode], check=True,
                         capture_output=True, text=True, timeout=300).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc malloc setting")
def test_keep_freed_memory_stops_per_step_page_faults():
    default, kept = _faults_per_step("default"), _faults_per_step("keep")
    assert default > 10_000, default  # ~100 MB faulted in again every step
    assert kept < 1_000, kept
