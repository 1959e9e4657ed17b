"""A pool of N concurrent executions behind a bounded queue, with sync and asyncio APIs.

Backpressure is explicit: `submit` raises PoolFull when `queue_size` requests already wait,
instead of buffering without bound. Cancelling a request kills its whole process tree.
"""

import asyncio
import concurrent.futures
import functools
import os
import queue
import threading
import time

from sandbox_runner.contracts import ExecRequest, ExecResult, Isolation
from sandbox_runner.sandbox import Sandbox


class PoolFull(RuntimeError):
    """The queue is full; retry later (the HTTP service answers 429)."""


class PoolClosed(RuntimeError):
    """The pool was shut down (the HTTP service answers 503)."""


class Execution(concurrent.futures.Future):
    """A future whose `cancel()` also stops a running execution by killing its process tree
    (the result then says killed_by="cancelled")."""

    def __init__(self, request: ExecRequest):
        super().__init__()
        self.request = request
        self.stop = threading.Event()

    def cancel(self) -> bool:
        self.stop.set()
        return super().cancel()


class Pool:
    """Runs requests on `workers` threads, each supervising one sandboxed process at a time."""

    def __init__(self, sandbox: Sandbox, workers: int | None = None, queue_size: int | None = None):
        self.sandbox = sandbox
        self.workers = workers or len(os.sched_getaffinity(0))
        self._queue: queue.Queue[Execution | None] = queue.Queue(queue_size or 4 * self.workers)
        self._closed = False
        self._lock = threading.Lock()
        self.stats = {"submitted": 0, "completed": 0, "failed": 0, "rejected": 0, "cancelled": 0,
                      "running": 0, "busy_s": 0.0}
        self._threads = [threading.Thread(target=self._work, name=f"sandbox-pool-{i}", daemon=True)
                         for i in range(self.workers)]
        for thread in self._threads:
            thread.start()

    @property
    def isolation(self) -> Isolation:
        return self.sandbox.isolation

    def submit(self, req: ExecRequest, block: bool = False, timeout: float | None = None
               ) -> Execution:
        """Queue `req`; PoolFull if the queue stays full (immediately unless `block`)."""
        if self._closed:
            raise PoolClosed("the pool is shut down")
        job = Execution(req)
        try:
            self._queue.put(job, block=block, timeout=timeout)
        except queue.Full:
            self._count("rejected")
            raise PoolFull(f"{self._queue.maxsize} requests already wait for {self.workers} "
                           f"workers; retry later") from None
        self._count("submitted")
        return job

    def run(self, req: ExecRequest) -> ExecResult:
        """Run `req`, waiting for a free slot if the queue is full."""
        return self.submit(req, block=True).result()

    async def arun(self, req: ExecRequest) -> ExecResult:
        """asyncio version of `run`; cancelling the awaiting task kills the process tree."""
        loop = asyncio.get_running_loop()
        job = await loop.run_in_executor(None, functools.partial(self.submit, req, True))
        try:
            return await asyncio.wrap_future(job)
        except asyncio.CancelledError:
            job.cancel()
            raise

    def _count(self, key: str, amount: float = 1) -> None:
        with self._lock:
            self.stats[key] += amount

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            if not job.set_running_or_notify_cancel():
                self._count("cancelled")
                continue
            self._count("running")
            start = time.monotonic()
            try:
                result = self.sandbox.run(job.request, job.stop)
            except BaseException as e:  # a bad request fails its future, never the worker
                self._count("failed")
                job.set_exception(e)
            else:
                self._count("cancelled" if result.killed_by == "cancelled" else "completed")
                job.set_result(result)
            finally:
                self._count("running", -1)
                self._count("busy_s", time.monotonic() - start)

    def snapshot(self) -> dict:
        with self._lock:
            return dict(self.stats, queued=self._queue.qsize(), workers=self.workers,
                        isolation=self.sandbox.isolation.name.lower())

    def close(self) -> None:
        """Stop accepting work, finish what is queued, and join the workers."""
        self._closed = True
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
