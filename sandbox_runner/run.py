"""`python -m sandbox_runner.run --public=DIR --workspace=DIR [limit flags] -- CMD ARGS...`

Runs one command exactly as the agent's programs run (same backend, limits and mounts) and
prints the ExecResult as JSON: for debugging an agent's program by hand.
"""

import argparse
import dataclasses
import json
import os
import sys

from sandbox_runner.contracts import ExecRequest, Limits
from sandbox_runner.sandbox import Sandbox


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sandbox_runner.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--public", action="append", default=[], metavar="DIR",
                   help="read-only directory for the program (repeatable), e.g. a task's public/")
    p.add_argument("--workspace", required=True, metavar="DIR",
                   help="writable working directory (created if missing)")
    p.add_argument("--backend", default="auto", help="auto, bwrap, unshare or rlimits")
    p.add_argument("--min-isolation", default="rlimits",
                   help="fail below this level: rlimits, namespaces or bwrap")
    p.add_argument("--interpreter", default=sys.executable, help="the Python used for agent code")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="environment variable for the program (repeatable)")
    for field in dataclasses.fields(Limits):
        p.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default),
                       default=field.default, help=f"limit (default {field.default})")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser().error("give the command after `--`, e.g. -- python train.py")
    env = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep:
            parser().error(f"--env {item!r} must look like KEY=VALUE")
        env[key] = value
    workspace = os.path.abspath(args.workspace)
    os.makedirs(workspace, exist_ok=True)
    limits = Limits(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Limits)})
    sandbox = Sandbox(backend=args.backend, min_isolation=args.min_isolation,
                      interpreter=args.interpreter)
    request = ExecRequest(workdir=workspace, argv=tuple(command), limits=limits, env=env,
                          readonly_mounts=tuple(os.path.abspath(p) for p in args.public))
    print(json.dumps(sandbox.run(request).to_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
