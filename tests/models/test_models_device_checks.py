"""benchmarks/gpu_checks.sh is the one command a lent GPU machine runs, and device time is too
scarce to find a broken flag there: every benchmark command in it must run here, on the CPU, with
its own flags and only the sizes made tiny."""

import pathlib
import re
import shlex
import subprocess
import sys

import pytest

_ROOT = pathlib.Path(__file__).resolve().parents[2]
_SCRIPT = _ROOT / "benchmarks" / "gpu_checks.sh"
# Appended after the script's own flags (absl keeps the last value), so only the sizes change.
_TINY = {
        "benchmarks/models_mfu.py": ["--smoke"],
        "benchmarks/head_logprobs_memory.py": ["--batch=2", "--seq=64", "--hidden=32",
                                               "--vocab=512", "--chunks=32"],
        "benchmarks/moe_layer.py": ["--tokens=64", "--hidden=32", "--intermediate=16",
                                    "--experts=8", "--top_k=2", "--steps=2"],
}
_EXPECTED = {
        "benchmarks/models_mfu.py": r"MFU: n/a .* on cpu",
        "benchmarks/head_logprobs_memory.py": r"\| whole logits \(baseline\) \|",
        "benchmarks/moe_layer.py": r"\| blocked, 4 per expert \| 8 \| [\d.]+ \|",
}


def _benchmark_commands() -> list[tuple[str, list[str]]]:
    """(script, its flags) for every `python3 benchmarks/*.py` in the script, continuations
    joined."""
    text = _SCRIPT.read_text().replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        match = re.search(r"python3 (benchmarks/\w+\.py)(.*)$", line)
        if match:
            commands.append((match.group(1), shlex.split(match.group(2))))
    return commands


def test_device_script_is_valid_bash_and_names_only_known_benchmarks():
    subprocess.run(["bash", "-n", str(_SCRIPT)], check=True)
    commands = _benchmark_commands()
    assert len(commands) >= 5, commands
    assert {script for script, _ in commands} <= set(_TINY), commands


@pytest.mark.parametrize("script,flags", _benchmark_commands(),
                         ids=lambda value: value if isinstance(value, str) else " ".join(value))
def test_device_check_runs_on_cpu_with_its_flags(script, flags):
    result = subprocess.run(
            [sys.executable, script, *flags, *_TINY[script]], cwd=_ROOT, capture_output=True,
            text=True, timeout=300,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(_ROOT), "JAX_PLATFORMS": "cpu"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(_EXPECTED[script], result.stdout), result.stdout[-3000:]
