"""Every benchmark prints the facts its numbers depend on (CPU, usable cores, load, library
versions) before the numbers: a recorded CPU ratio once failed to reproduce on a box whose CPU had
changed, and nothing recorded said so."""

import importlib.metadata
import os
import pathlib
import re
import subprocess
import sys

from benchmarks import run_facts

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Scripts under benchmarks/ that write data or serve, and time nothing.
NOT_BENCHMARKS = {"real_seeds.py"}


def test_header_names_versions_cores_and_load():
    line = run_facts.header()
    assert f"jax {importlib.metadata.version('jax')}" in line
    assert f"numpy {importlib.metadata.version('numpy')}" in line
    cores = len(os.sched_getaffinity(0))
    assert f"{cores} of {os.cpu_count()} cores usable" in line
    loads = re.search(r"load average \(1, 5, 15 min\): ([\d.]+), ([\d.]+), ([\d.]+)", line)
    assert loads and all(float(value) >= 0 for value in loads.groups())
    assert run_facts.cpu_model() in line and run_facts.cpu_model()


def test_a_missing_library_is_named_absent(monkeypatch):
    monkeypatch.setattr(run_facts, "LIBRARIES", ("numpy", "no-such-library-here"))
    assert run_facts.library_versions() == {
        "numpy": importlib.metadata.version("numpy"), "no-such-library-here": "absent"}


def test_every_benchmark_script_prints_the_header():
    scripts = [path for path in sorted((ROOT / "benchmarks").glob("*.py"))
               if '__name__ == "__main__"' in path.read_text() and path.name not in NOT_BENCHMARKS]
    assert len(scripts) >= 15
    missing = [path.name for path in scripts if "print(run_facts.header())" not in path.read_text()]
    assert not missing


def test_a_benchmark_run_as_documented_prints_it_first():
    """`python benchmarks/tasks_grading.py` from the repository root, as RESULTS.md gives it."""
    result = subprocess.run(
        [sys.executable, "benchmarks/tasks_grading.py", "--rows", "200", "--repeats", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
    first = result.stdout.splitlines()[0]
    assert first.startswith("run: ")
    assert f"numpy {importlib.metadata.version('numpy')}" in first
