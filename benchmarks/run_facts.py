"""Shared by the benchmark scripts: the facts a number depends on, printed before it.

A ratio measured sessions ago did not reproduce, and nothing recorded had said that the box's CPU,
its load or the libraries had changed since (benchmarks/RESULTS.md, "models: the CPU ratios on
another CPU"). Every benchmark prints this line first, so a result pasted into RESULTS.md carries
them.
"""

import datetime
import importlib.metadata
import os
import platform

LIBRARIES = ("jax", "jaxlib", "flax", "optax", "torch", "transformers", "numpy")


def cpu_model() -> str:
    """The CPU's name with its vendor, family and model numbers (Linux /proc/cpuinfo: a virtual
    machine's name can be as bare as "Intel(R) Xeon(R) Processor"), else what `platform` knows."""
    fields = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if not key.strip():
                    break  # the first processor's block ends here
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    if "model name" not in fields:
        return platform.processor() or platform.machine()
    return (f"{fields['model name']} ({fields.get('vendor_id', '?')} family "
            f"{fields.get('cpu family', '?')} model {fields.get('model', '?')})")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that set the speed, without importing them."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def header() -> str:
    """One line: UTC time, CPU, the cores this process may use, load average, library versions."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    versions = " ".join(f"{name} {version}" for name, version in library_versions().items())
    return (f"run: {now}; cpu: {cpu_model()}, {cores} of {os.cpu_count()} cores usable; "
            f"load average (1, 5, 15 min): {load}; {versions}")
