"""keep_freed_memory: a jitted CPU step whose temporaries exceed glibc's mmap threshold and a
thread arena's heap stops page-faulting them in on every call, unless --keep_freed_memory=false
(fresh processes, since the setting only takes before JAX's threads allocate); entry points
leave accelerator hosts alone."""

import json
import platform
import subprocess
import sys

import jax
import pytest
from absl import flags

from sandmle_jax.parallel import host_memory

_STEP_FAULTS = """
import json, resource, sys
from absl import flags
from sandmle_jax.parallel import host_memory
flags.FLAGS(sys.argv[:1] + sys.argv[2:])
if sys.argv[1] == "from_flags":
    assert host_memory.keep_freed_memory_from_flags() == flags.FLAGS.keep_freed_memory
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
for _ in range(12):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    step(x).block_until_ready()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps(faults))
"""


def _faults_per_step(mode: str, *flag_args: str) -> list[int]:
    out = subprocess.run([sys.executable, "-c", _STEP_FAULTS, mode, *flag_args], check=True,
                         capture_output=True, text=True, timeout=300).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc malloc setting")
def test_keep_freed_memory_stops_per_step_page_faults():
    default = _faults_per_step("default")
    assert min(default) > 10_000, default  # ~100 MB faulted in again every step
    assert min(_faults_per_step("from_flags", "--keep_freed_memory=false")) > 10_000
    # Kept, steps fault only while the heap still grows to its working size: 0-2 pages a step
    # on an idle machine, a 64 MB growth (16,384 pages) in some steps while other jobs run.
    kept = _faults_per_step("from_flags")
    assert sum(kept) < sum(default) / 10, (kept, default)


@pytest.mark.parametrize("platforms,expected", [
        ("cpu", False), ("cuda", True), ("cpu,cuda", True), ("tpu", True)])
def test_accelerator_expected_follows_the_platforms_asked_for(platforms, expected):
    previous = jax.config.jax_platforms
    jax.config.update("jax_platforms", platforms)
    try:
        assert host_memory.accelerator_expected() is expected
        if expected:  # an accelerator host keeps glibc's defaults, the flag at its default
            if not flags.FLAGS.is_parsed():
                flags.FLAGS.mark_as_parsed()
            assert host_memory.keep_freed_memory_from_flags() is False
    finally:
        jax.config.update("jax_platforms", previous)


def test_accelerator_guess_agrees_with_the_backend_jax_started():
    assert host_memory.accelerator_expected() is (jax.default_backend() != "cpu")
