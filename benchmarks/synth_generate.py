"""Tasks generated per minute, and yield per gate, with the default procedural config.

    PYTHONPATH=. python benchmarks/synth_generate.py [--num_tasks 50] [--out DIR] [--workers 2]

Runs the same library call as `launch.generate` into a fresh directory (a temporary one unless
--out is given) and prints throughput, the per-gate pass/fail counts, the diversity of the kept
tasks and the slowest candidates. Run it on an otherwise idle machine for comparable numbers;
the load average at start and end is printed beside the result.
"""

import argparse
import importlib.util
import json
import os
import pathlib
import statistics
import tempfile

from sandmle_jax.synth import pipeline
import run_facts

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _config(workers: int):
    spec = importlib.util.spec_from_file_location("synth_config", ROOT / "configs" / "synth.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    config.sandbox.workers = workers
    return config


def main():
    print(run_facts.header())
    parser = argparse.ArgumentParser()
    parser.add_argument("--num_tasks", type=int, default=50)
    parser.add_argument("--out", default=None)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    out = pathlib.Path(args.out or tempfile.mkdtemp(prefix="synth-bench-"))
    load_before = os.getloadavg()[0]
    report = pipeline.generate(_config(args.workers), out, num_tasks=args.num_tasks)
    load_after = os.getloadavg()[0]
    print(f"kept {report['kept']}/{report['requested']} from {report['candidates']} candidates "
          f"(yield {report['yield']:.0%}) in {report['wall_s']:.0f} s: "
          f"{report['tasks_per_minute']:.2f} verified tasks/min on {os.cpu_count()} cores "
          f"(load average {load_before:.1f} at start, {load_after:.1f} at end)")
    print(f"{'gate':<24}{'passed':>8}{'failed':>8}")
    for gate, counts in report["gates"].items():
        print(f"{gate:<24}{counts.get('passed', 0):>8}{counts.get('failed', 0):>8}")
    for key, counts in report["diversity"].items():
        print(f"{key}: {json.dumps(counts)}")
    seconds = [json.loads(p.read_text())["seconds"] for p in (out / "records").glob("*.json")]
    print(f"candidate build seconds: median {statistics.median(seconds):.1f}, "
          f"max {max(seconds):.1f} (two build at once)")


if __name__ == "__main__":
    main()
