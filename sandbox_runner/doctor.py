"""`python -m sandbox_runner.doctor [--json]`: what isolation this host offers, what would be
used, and which limits would really be enforced. CI prints it before the tests."""

import argparse
import json
import os
import sys

from sandbox_runner import backends, cgroups
from sandbox_runner.sandbox import Sandbox, SandboxUnavailable
from sandbox_runner.workspace import can_mount_tmpfs


def report(interpreter: str = sys.executable) -> dict:
    """Everything the doctor knows, as JSON-friendly data."""
    usable, problems = cgroups.detect()
    data = {
        "euid": os.geteuid(),
        "bwrap_binary": backends.bwrap_binary(),
        "backends": {b.name: {"level": b.level.name.lower(), "problem": b.probe()}
                     for b in backends.best_first()},
        "cgroups": {name: f"{c.version} at {c.base}" if (c := usable.get(name)) else None
                    for name in cgroups.CONTROLLERS},
        "cgroup_problems": problems,
        "workspace_quota": "tmpfs" if can_mount_tmpfs() is None else "poll",
        "workspace_quota_problem": can_mount_tmpfs(),
        "interpreter": interpreter,
    }
    try:
        sandbox = Sandbox(interpreter=interpreter)
    except SandboxUnavailable as e:
        data.update(chosen=None, error=str(e))
        return data
    data["chosen"] = sandbox.setup.backend.name
    data["isolation"] = sandbox.isolation.name.lower()
    data["interpreter_roots"] = list(sandbox.setup.interpreter_roots)
    data["enforcement"] = sandbox.enforcement()
    return data


def format_report(data: dict) -> str:
    lines = ["sandbox_runner doctor", f"  effective uid: {data['euid']}",
             f"  bwrap binary: {data['bwrap_binary'] or 'none found'}", "  backends, best first:"]
    for name, info in data["backends"].items():
        state = "available" if info["problem"] is None else f"UNAVAILABLE: {info['problem']}"
        lines.append(f"    {name:<8} (level {info['level']}): {state}")
    lines.append("  cgroups:")
    for name, where in data["cgroups"].items():
        problem = data["cgroup_problems"].get(name, "?")
        lines.append(f"    {name:<8} {where or 'unusable: ' + problem}")
    why = data["workspace_quota_problem"]
    lines.append(f"  workspace disk quota: {data['workspace_quota']}"
                 + (f" ({why})" if why else ""))
    lines.append(f"  interpreter: {data['interpreter']}")
    if data["chosen"] is None:
        lines.append(f"  WOULD USE: nothing: {data['error']}")
        return "\n".join(lines)
    lines.append(f"  WOULD USE: {data['chosen']} (isolation level {data['isolation']})")
    if data["isolation"] == "rlimits":
        lines.append("  WARNING: no isolation; agent code could read hidden data and use the "
                     "network")
    lines.append("  limits:")
    for limit, how in data["enforcement"].items():
        lines.append(f"    {limit:<16} {how or 'NOT ENFORCED on this host'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--interpreter", default=sys.executable, help="Python for agent code")
    args = parser.parse_args(argv)
    data = report(args.interpreter)
    print(json.dumps(data, indent=2) if args.json else format_report(data))


if __name__ == "__main__":
    main()
