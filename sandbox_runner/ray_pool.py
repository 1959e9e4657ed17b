"""Sandboxes on a Ray cluster: `RayPool` runs each execution on one of its actors, each a bwrap
sandbox on its node, with `Pool`'s `run` / `arun`.

The caller's workspace stays the episode's state: every execution ships it (as
`sandbox_runner.transfer` bytes) with the request, the actor runs the program in a fresh copy
of it and returns the result with the copy as the program left it, which then replaces the
caller's workspace. The task's public/ directories travel once per content (Ray's object store)
and are kept on each node. bwrap shows both copies at the caller's paths, so a program sees the
same paths on any node as it would locally (the workspace's absolute `data` link included);
hence actors need bwrap, whatever `min_isolation` says: agent code on shared cluster nodes gets
the full isolation or does not run.

Failures are Ray's to handle: actors restart without end (`max_restarts=-1`) and a call whose
actor or node died is retried on the restarted one (`max_task_retries=-1`). A retried
execution runs again from the workspace it was sent with, so the episode sees one result; a
program may thus have run twice, invisibly (it cannot reach the network or anything outside
its workspace copy). No shared filesystem is needed; the price is copying the workspace both
ways per execution (benchmarks/RESULTS.md, "sandbox: Ray against the local pool").
"""

import asyncio
import collections
import concurrent.futures
import contextlib
import hashlib
import math
import os
import shutil
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator

import ray

from sandbox_runner import transfer
from sandbox_runner.contracts import ExecRequest, ExecResult, Isolation
from sandbox_runner.sandbox import Sandbox
from sandbox_runner.workspace import new_workspace, remove_stale_workspaces, remove_workspace

NAMESPACE = "sandbox_runner"
PUBLIC_MAX_BYTES = 8 << 30  # a task's public/ larger than this is refused
PUBLIC_COPIES_KEPT = 256  # per node; least recently used first out


class ClusterUnavailable(ConnectionError):
    """No Ray cluster answers at the address, or it cannot place the sandbox actors."""


class ExecutionLost(TimeoutError):
    """No result within the wall limit plus `RayPool.restart_margin_s`: the actor or node died
    and Ray found nowhere to restart it in time."""


def connect(address: str, timeout_s: float = 10.0) -> bool:
    """Joins the Ray cluster at `address` ("HOST:PORT" or "auto") unless this process already
    has; True if it joined now. ClusterUnavailable, in one line, when none answers."""
    if ray.is_initialized():
        return False
    if address != "auto":
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=timeout_s).close()
        except (OSError, ValueError) as e:
            raise ClusterUnavailable(
                f"no Ray cluster answers at {address!r} ({e}); start one with `ray start "
                f"--head --port={port or 6379}` or fix the address") from None
    try:
        ray.init(address=address, namespace=NAMESPACE, logging_level="warning",
                 log_to_driver=False)
    except ConnectionError as e:
        raise ClusterUnavailable(f"no Ray cluster at {address!r}: "
                                 f"{str(e).strip().splitlines()[0]}") from None
    return True


def directory_digest(directory: str) -> str:
    """Names a directory's contents by its entries' paths, sizes, times and link targets
    (cheap: nothing is read; a public/ directory does not change during a run)."""
    digest = hashlib.sha256()
    for parent, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(parent, name)
            st = os.lstat(path)
            link = os.readlink(path) if os.path.islink(path) else ""
            digest.update(f"{os.path.relpath(path, directory)}\0{st.st_mode}\0{st.st_size}\0"
                          f"{st.st_mtime_ns}\0{link}\n".encode())
    return digest.hexdigest()[:32]


class _PublicCopies:
    """A node's unpacked public/ directories by digest, the least recently used removed first
    once more than `keep` are unused."""

    def __init__(self, root: str, keep: int = PUBLIC_COPIES_KEPT):
        self.root, self.keep = root, keep
        self.dirs: collections.OrderedDict[str, str] = collections.OrderedDict()
        self.users: collections.Counter[str] = collections.Counter()
        self.lock = asyncio.Lock()

    async def acquire(self, digest: str, ref: ray.ObjectRef) -> str:
        async with self.lock:
            if digest not in self.dirs:
                data = await ref
                path = tempfile.mkdtemp(prefix=f"sandbox_runner-ws-{os.getpid()}-pub",
                                        dir=self.root)
                os.chmod(path, 0o755)
                await asyncio.to_thread(transfer.unpack, data, path)
                self.dirs[digest] = path
            self.dirs.move_to_end(digest)
            self.users[digest] += 1
            return self.dirs[digest]

    def release(self, digest: str) -> None:
        self.users[digest] -= 1
        unused = [d for d in self.dirs if self.users[d] <= 0]
        while len(self.dirs) > self.keep and unused:
            shutil.rmtree(self.dirs.pop(unused.pop(0)), ignore_errors=True)


class SandboxNode:
    """The remote side: one node's bwrap sandbox running executions shipped by a RayPool."""

    def __init__(self, interpreter: str, concurrency: int, root: str | None):
        self.sandbox = Sandbox("bwrap", min_isolation="bwrap",
                               interpreter=interpreter or sys.executable)
        self.root = os.path.abspath(root or tempfile.gettempdir())
        remove_stale_workspaces(self.root)
        self.threads = concurrent.futures.ThreadPoolExecutor(concurrency, "sandbox-node")
        self.public = _PublicCopies(self.root)

    async def where(self) -> dict:
        return {"node": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(),
                "pid": os.getpid(), "isolation": self.sandbox.isolation.name.lower(),
                "enforcement": self.sandbox.enforcement()}

    async def execute(self, req: ExecRequest, workspace: bytes,
                      mounts: list[tuple[str, str, ray.ObjectRef]]
                      ) -> tuple[ExecResult, bytes]:
        """Runs `req` in a copy of `workspace` with `mounts` (path, digest, packed public/)."""
        acquired = []
        try:
            sources = {}
            for path, digest, ref in mounts:
                sources[path] = await self.public.acquire(digest, ref)
                acquired.append(digest)
            stop = threading.Event()
            running = asyncio.get_running_loop().run_in_executor(
                self.threads, self._run, req, workspace, sources, stop)
            try:
                return await asyncio.shield(running)
            except asyncio.CancelledError:  # ray.cancel: kill the program's tree
                stop.set()
                raise
        finally:
            for digest in acquired:
                self.public.release(digest)

    def _run(self, req: ExecRequest, workspace: bytes, sources: dict[str, str],
             stop: threading.Event) -> tuple[ExecResult, bytes]:
        path, mounted = new_workspace(self.root, req.limits.workspace_bytes)
        try:
            transfer.unpack(workspace, path)
            result = self.sandbox.run(req, stop, sources={**sources, req.workdir: str(path)})
            return result, transfer.pack(path, req.limits.workspace_bytes)
        finally:
            remove_workspace(path, mounted)


class RayPool:
    """Runs ExecRequests on `actors` sandbox actors (0: one per node with CPUs), `workers` at
    once in all, each actor reserving one CPU per concurrent execution.

    address: "HOST:PORT" of the cluster's head or "auto" (`ray start` on this machine).
    interpreter: the Python that runs agent code on the nodes ("" = the actors' own).
    root: where nodes put workspace copies (default: their temporary directory).
    """

    def __init__(self, address: str = "auto", workers: int = 16, actors: int = 0,
                 interpreter: str = "", root: str | None = None, ready_timeout_s: float = 60.0,
                 restart_margin_s: float = 300.0):
        self.restart_margin_s = restart_margin_s
        self._joined = connect(address)
        nodes = [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) > 0]
        count = min(workers, actors or max(1, len(nodes)))
        per_actor = math.ceil(workers / count)
        cpus = ray.cluster_resources().get("CPU", 0)
        if cpus < count * per_actor:
            self._leave()
            raise ClusterUnavailable(f"the Ray cluster has {cpus:g} CPUs; {count} sandbox actors "
                                     f"of {per_actor} need {count * per_actor}: lower the "
                                     "workers or add nodes")
        node_class = ray.remote(SandboxNode)
        self.actors = [node_class.options(
            name=f"sandbox-{socket.gethostname()}-{os.getpid()}-{id(self):x}-{i}",
            num_cpus=per_actor, max_concurrency=per_actor, max_restarts=-1,
            max_task_retries=-1, scheduling_strategy="SPREAD").remote(interpreter, per_actor, root)
            for i in range(count)]
        self.workers = count * per_actor
        try:
            self.nodes = ray.get([a.where.remote() for a in self.actors],
                                 timeout=ready_timeout_s)
        except ray.exceptions.GetTimeoutError:
            self.close()
            raise ClusterUnavailable(f"{count} sandbox actors of {per_actor} CPUs were not "
                                     f"placed within {ready_timeout_s:.0f} s") from None
        except ray.exceptions.RayError as e:
            self.close()
            raise ClusterUnavailable(f"a sandbox actor failed to start: "
                                     f"{_last_line(e)}") from None
        # At most `workers` executions are sent at once, so none waits behind another on an
        # actor and each can be given up on after its own wall limit (plus a restart).
        self._slots = threading.BoundedSemaphore(self.workers)
        self._inflight = [0] * count
        self.per_actor = [0] * count  # executions sent to each actor
        self._lock = threading.Lock()
        self._shipped: collections.OrderedDict[str, ray.ObjectRef] = collections.OrderedDict()
        self.stats = {"submitted": 0, "completed": 0, "failed": 0, "public_shipped": 0}

    @property
    def isolation(self) -> Isolation:
        return min(Isolation.parse(n["isolation"]) for n in self.nodes)

    def run(self, req: ExecRequest) -> ExecResult:
        self._slots.acquire()
        try:
            args = self._pack(req)
        except BaseException:
            self._slots.release()
            raise
        with self._in_flight(req, args) as ref:
            try:
                result, workspace = ray.get(ref, timeout=self._patience(req))
            except ray.exceptions.GetTimeoutError:
                raise self._lost(req) from None
        transfer.replace_contents(req.workdir, workspace)
        return result

    async def arun(self, req: ExecRequest) -> ExecResult:
        """asyncio version of `run`; cancelling the awaiting task kills the program's tree."""
        while not self._slots.acquire(blocking=False):
            await asyncio.sleep(0.02)  # a thread blocked on it would starve the loop's executor
        try:  # cancelled while packing: the thread finishes, the slot is given back here
            args = await asyncio.to_thread(self._pack, req)
        except BaseException:
            self._slots.release()
            raise
        with self._in_flight(req, args) as ref:
            try:
                result, workspace = await asyncio.wait_for(asyncio.wrap_future(ref.future()),
                                                           self._patience(req))
            except asyncio.TimeoutError:
                raise self._lost(req) from None
        await asyncio.to_thread(transfer.replace_contents, req.workdir, workspace)
        return result

    @contextlib.contextmanager
    def _in_flight(self, req: ExecRequest, args: tuple) -> Iterator[ray.ObjectRef]:
        """`req` sent to the least busy actor; on the way out its slot is given back, and a call
        left by an error, a timeout or cancellation is cancelled (killing the program)."""
        actor = self._pick()
        ref = self.actors[actor].execute.remote(req, *args)
        try:
            yield ref
        except BaseException:
            ray.cancel(ref)
            self._done(actor, "failed")
            raise
        self._done(actor, "completed")

    def _patience(self, req: ExecRequest) -> float:
        return req.limits.wall_s + self.restart_margin_s

    def _lost(self, req: ExecRequest) -> ExecutionLost:
        return ExecutionLost(f"no result within {self._patience(req):.0f} s (wall limit "
                             f"{req.limits.wall_s:g} s + {self.restart_margin_s:g} s for Ray to "
                             "restart a lost actor): is the cluster short of CPUs?")

    def _pack(self, req: ExecRequest) -> tuple[bytes, list]:
        """`execute`'s arguments after the request: its workspace packed now, and its
        read-only directories as (path, digest, object) shipped once per content."""
        workspace = transfer.pack(req.workdir, req.limits.workspace_bytes)
        return workspace, [(path, *self._public(path)) for path in req.readonly_mounts]

    def _pick(self) -> int:
        """The actor with the fewest executions in flight (a slot is held for this one)."""
        with self._lock:
            actor = min(range(len(self.actors)), key=self._inflight.__getitem__)
            self._inflight[actor] += 1
            self.per_actor[actor] += 1
            self.stats["submitted"] += 1
        return actor

    def _public(self, path: str) -> tuple[str, ray.ObjectRef]:
        digest = directory_digest(path)
        with self._lock:
            ref = self._shipped.get(digest)
        if ref is None:
            ref = ray.put(transfer.pack(path, PUBLIC_MAX_BYTES))
            self.stats["public_shipped"] += 1
        with self._lock:
            self._shipped[digest] = ref
            self._shipped.move_to_end(digest)
            while len(self._shipped) > PUBLIC_COPIES_KEPT:
                self._shipped.popitem(last=False)
        return digest, ref

    def _done(self, actor: int, outcome: str) -> None:
        with self._lock:
            self._inflight[actor] -= 1
            self.stats[outcome] += 1
        self._slots.release()

    def snapshot(self) -> dict:
        with self._lock:
            return dict(self.stats, running=sum(self._inflight), per_actor=list(self.per_actor),
                        workers=self.workers,
                        actors=len(self.actors), nodes=len({n["node"] for n in self.nodes}),
                        isolation=self.isolation.name.lower())

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
        self._leave()

    def _leave(self) -> None:
        if self._joined:
            ray.shutdown()
            self._joined = False

    def __enter__(self) -> "RayPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _last_line(error: BaseException) -> str:
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
