"""Sandbox overhead and throughput, bare vs sandboxed, measured in the same run.

    python benchmarks/sandbox_overhead.py [--repeats 30] [--fit-repeats 15] [--throughput-runs 20]

1. Latency of `python -c 'print(1)'`: median wall time bare (subprocess.run) and through the
   Sandbox (argv request, and code request which adds writing a fresh file); goal: < 60 ms added.
2. A program importing pandas and scikit-learn and fitting a model on 200 rows: median wall
   time bare and sandboxed (also the median of per-pair ratios, and min vs min); goal: <= 1.3.
   Also its CPU seconds (bare: rusage of the process tree; sandboxed: the cgroup's cpuacct,
   which includes bwrap itself), which load from other jobs disturbs far less than wall time.
3. Throughput of that program with a Pool of 2 workers, and bare with 2 concurrent processes.
Bare runs get the same thread-count variables as the sandbox (cpus=1), so only isolation differs.
Runs alternate bare/sandboxed so that load from other users of the machine hits both alike; the
report includes the load average, and min-vs-min latency, which is less sensitive to that load.
"""

import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from sandbox_runner import Episode, Limits, Pool, Sandbox
from sandbox_runner.executor import THREAD_VARS
import run_facts

FIT = """
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
df = pd.read_csv("{public}/train.csv")
X, y = df.drop(columns="y"), df["y"]
LogisticRegression(max_iter=200).fit(X, y)
print(RandomForestClassifier(n_estimators=50, random_state=0).fit(X, y).score(X, y))
"""


def write_fit_task(public: str) -> None:
    rows = ["f0,f1,f2,f3,y"] + [f"{i % 7},{i % 5},{(i * 3) % 11},{i % 2},{(i % 7 + i % 5) % 2}"
                                for i in range(200)]
    with open(os.path.join(public, "train.csv"), "w") as f:
        f.write("\n".join(rows) + "\n")


def _bare_with_cpu(argv: list[str], cwd: str) -> tuple[float, float]:
    """Wall and CPU seconds (user + sys of the process and its children) of a bare run."""
    env = {"PATH": os.environ["PATH"], **{name: "1" for name in THREAD_VARS}}
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"bare run of {argv} exited {proc.returncode}")
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime


def _bare(argv: list[str], cwd: str) -> float:
    return _bare_with_cpu(argv, cwd)[0]


def _timed_with_cpu(fn) -> tuple[float, float]:
    """Wall seconds around a sandboxed run, and the CPU seconds its cgroup accounted."""
    start = time.perf_counter()
    result = fn()
    if result.exit_code != 0:
        raise RuntimeError(f"sandboxed run failed: {result.stderr_tail}")
    return time.perf_counter() - start, result.cpu_s


def _timed(fn) -> float:
    return _timed_with_cpu(fn)[0]


def main() -> None:
    print(run_facts.header())
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--fit-repeats", type=int, default=15)
    p.add_argument("--throughput-runs", type=int, default=20)
    args = p.parse_args()

    load_before = os.getloadavg()[0]
    sandbox = Sandbox()
    limits = Limits(wall_s=120, memory_bytes=2048 << 20, max_processes=256,
                    workspace_bytes=512 << 20)
    py = sys.executable
    with tempfile.TemporaryDirectory() as root:
        public = os.path.join(root, "public")
        os.mkdir(public)
        write_fit_task(public)
        fit_file = os.path.join(root, "fit.py")
        with open(fit_file, "w") as f:
            f.write(FIT.format(public=public))
        with Episode(public, sandbox, limits, root=root) as ep:
            ws = str(ep.workspace)
            # Interleave bare and sandboxed runs so that machine load hits both alike.
            bare, boxed, boxed_code = [], [], []
            for _ in range(args.repeats):
                bare.append(_bare([py, "-c", "print(1)"], ws))
                boxed.append(_timed(lambda: ep.run((py, "-c", "print(1)"))))
                boxed_code.append(_timed(lambda: ep.run_code("print(1)")))
            fit_bare, fit_boxed, cpu_bare, cpu_boxed = [], [], [], []
            for _ in range(args.fit_repeats):
                wall, cpu = _bare_with_cpu([py, fit_file], ws)
                fit_bare.append(wall)
                cpu_bare.append(cpu)
                wall, cpu = _timed_with_cpu(lambda: ep.run_code(FIT.format(public=public)))
                fit_boxed.append(wall)
                cpu_boxed.append(cpu)
            with concurrent.futures.ThreadPoolExecutor(2) as threads:
                start = time.perf_counter()
                list(threads.map(lambda _: _bare([py, fit_file], ws), range(args.throughput_runs)))
                bare_rate = args.throughput_runs / (time.perf_counter() - start)
            with Pool(sandbox, workers=2) as pool:
                start = time.perf_counter()
                jobs = [pool.submit(ep.request(code=FIT.format(public=public)), block=True)
                        for _ in range(args.throughput_runs)]
                assert all(j.result().exit_code == 0 for j in jobs)
                boxed_rate = args.throughput_runs / (time.perf_counter() - start)

    med = statistics.median
    report = {
        "isolation": sandbox.setup.backend.name,
        "workspace_quota": ep.quota,
        "enforcement": sandbox.enforcement(),
        "cpus_visible": len(os.sched_getaffinity(0)),
        "load_average_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "print1_bare_ms": round(1000 * med(bare), 1),
        "print1_sandbox_argv_ms": round(1000 * med(boxed), 1),
        "print1_sandbox_code_ms": round(1000 * med(boxed_code), 1),
        "print1_added_ms_argv": round(1000 * (med(boxed) - med(bare)), 1),
        "print1_added_ms_code": round(1000 * (med(boxed_code) - med(bare)), 1),
        "print1_added_ms_argv_min_vs_min": round(1000 * (min(boxed) - min(bare)), 1),
        "fit_bare_s": round(med(fit_bare), 3),
        "fit_sandbox_s": round(med(fit_boxed), 3),
        "fit_ratio": round(med(fit_boxed) / med(fit_bare), 3),
        "fit_ratio_median_of_pairs": round(med(b / a for a, b in zip(fit_bare, fit_boxed)), 3),
        "fit_ratio_min_vs_min": round(min(fit_boxed) / min(fit_bare), 3),
        "fit_cpu_bare_s": round(med(cpu_bare), 3),
        "fit_cpu_sandbox_s": round(med(cpu_boxed), 3),
        "fit_cpu_ratio": round(med(cpu_boxed) / med(cpu_bare), 3),
        "throughput_bare_2proc_per_s": round(bare_rate, 2),
        "throughput_pool_2workers_per_s": round(boxed_rate, 2),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
