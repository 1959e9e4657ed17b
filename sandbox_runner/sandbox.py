"""The Sandbox: picks the strongest backend this host supports, once, and runs requests."""

import logging
import os
import sys
import threading
import warnings
from collections.abc import Mapping

from sandbox_runner import backends, cgroups, executor
from sandbox_runner.contracts import ExecRequest, ExecResult, Isolation

log = logging.getLogger(__name__)


class SandboxUnavailable(RuntimeError):
    """The host cannot provide the isolation level that was demanded."""


class Sandbox:
    """Runs ExecRequests confined by the best available backend.

    backend: a registry name ("bwrap", "unshare", "rlimits") or "auto" (best that works).
    min_isolation: start-up fails below this level ("rlimits" < "namespaces" < "bwrap").
    interpreter: the Python that runs `code` requests (default: this environment's); made
        absolute and free of `..` here, since the folders such a path passes through are not
        mounted inside the sandbox.
    use_cgroups: False skips cgroups even where writable (then processes are limited only by
        RLIMIT_NPROC for non-root users, and memory per process by RLIMIT_AS).
    """

    def __init__(self, backend: str = "auto", min_isolation: str | Isolation = Isolation.RLIMITS,
                 interpreter: str = sys.executable, use_cgroups: bool = True):
        self.min_isolation = Isolation.parse(min_isolation)
        interpreter = os.path.abspath(interpreter)
        self.probe_failures: dict[str, str] = {}
        chosen = self._choose(backend)
        controllers, self.cgroup_problems = cgroups.detect() if use_cgroups else ({}, {})
        stale = cgroups.remove_stale(controllers)
        if stale:
            log.warning("sandbox_runner: removed %d groups left by dead runners", len(stale))
        try:
            roots = backends.interpreter_roots(interpreter)
        except RuntimeError as e:
            raise SandboxUnavailable(str(e)) from None
        self.setup = executor.Setup(backend=chosen, controllers=controllers,
                                    interpreter=interpreter, interpreter_roots=roots,
                                    euid=os.geteuid())
        if chosen.level == Isolation.RLIMITS:
            message = ("sandbox_runner: NO ISOLATION. Agent code runs as this user with only "
                       "resource limits; it can read any file this user can and reach the "
                       f"network. Why stronger backends failed: {self.probe_failures}")
            warnings.warn(message, stacklevel=2)
            log.warning(message)

    def _choose(self, name: str) -> backends.Backend:
        if name != "auto" and name not in backends.REGISTRY:
            raise ValueError(f"unknown sandbox backend {name!r}: use 'auto' or one of "
                             f"{sorted(backends.REGISTRY)}")
        candidates = backends.best_first() if name == "auto" else [backends.REGISTRY[name]]
        for candidate in candidates:
            if candidate.level < self.min_isolation:
                continue
            reason = candidate.probe()
            if reason is None:
                return candidate
            self.probe_failures[candidate.name] = reason
        raise SandboxUnavailable(
            f"no backend gives isolation >= {self.min_isolation.name.lower()} here "
            f"(tried {[c.name for c in candidates]}): {self.probe_failures}. Run "
            f"`python -m sandbox_runner.doctor` for details, or lower min_isolation.")

    @property
    def isolation(self) -> Isolation:
        return self.setup.backend.level

    def enforcement(self) -> dict[str, str]:
        """Each limit and the mechanism enforcing it here ('' = not enforced)."""
        return executor.enforcement(self.setup)

    def run(self, req: ExecRequest, cancel: threading.Event | None = None,
            sources: Mapping[str, str] | None = None) -> ExecResult:
        """Run one request; setting `cancel` kills its tree (killed_by="cancelled"). `sources`:
        where some of its directories lie on this host, if elsewhere (`executor.execute`)."""
        return executor.execute(self.setup, req, cancel, sources)
