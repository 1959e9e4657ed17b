"""Every large recipe passes the dry run on 8 fake devices: mesh, shapes, shardings, buckets;
and a mesh that does not fit the devices is refused."""

import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
# One process for all recipes: importing JAX and tracing 30B shapes dominates the cost.
SCRIPT = """
import json, runpy, sys
from sandmle_jax.rl import dry_run
for path in sys.argv[1:]:
    config = runpy.run_path(path)["get_config"]()
    print(json.dumps(dry_run.dry_run(config)))
config = runpy.run_path(sys.argv[1])["get_config"]()
config.mesh.tensor = 3
try:
    dry_run.dry_run(config)
except ValueError as e:
    print(json.dumps({"refused": str(e)}))
"""
EXPECTED_PARAMS = {"qwen3_8b": 8.19e9, "qwen3_14b": 14.77e9, "qwen3_30b_a3b": 30.53e9}


@pytest.fixture(scope="module")
def reports():
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu",
           "PATH": "/usr/bin:/bin"}
    paths = [str(ROOT / "configs" / f"{name}.py") for name in sorted(EXPECTED_PARAMS)]
    done = subprocess.run([sys.executable, "-c", SCRIPT, *paths], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.strip().splitlines()]


@pytest.mark.parametrize("index, name", list(enumerate(sorted(EXPECTED_PARAMS))))
def test_large_config_dry_run(reports, index, name):
    report = reports[index]
    assert report["devices"] == 8 and report["preset"] == name
    assert report["parameters"] == pytest.approx(EXPECTED_PARAMS[name], rel=0.02)
    # Sharded: each device holds about an eighth of the fp32 parameters.
    assert report["parameter_bytes_per_device"] < 4 * report["parameters"] / 8 * 1.2
    assert report["micro_batch_shapes"][-1][1] >= 32768
    # Chunked log-probs: 16,384 tokens' fp32 logits over the data-parallel devices (2-4 of
    # them a device), not a whole 32k-token row's 20 GB.
    data_parallel = report["mesh"]["data"] * report["mesh"]["fsdp"]
    assert report["largest_logits_bytes_per_device"] == 16384 // data_parallel * 151936 * 4


def test_dry_run_rejects_a_bad_mesh(reports):
    assert "not divisible" in reports[-1]["refused"]
