"""`python -m sandbox_runner.serve --host=127.0.0.1 --port=P --workers=N [--token=T]`

HTTP+JSON service for a dedicated CPU host next to accelerator jobs:
  POST /run     body: ExecRequest.to_dict()  -> 200 ExecResult.to_dict()
                429 when the queue is full (Retry-After), 503 while shutting down,
                400 for a malformed request, 401 without the token, 403 for paths outside --root
  GET  /health  -> {"ok": true, "isolation": ...}
  GET  /stats   -> pool counters
Loopback by default. Workspaces are host paths: the client and the service must share them.

Kept beside `ray_pool.RayPool` (how the training and evaluation jobs scale out) for what Ray does
not cover: clients without Ray or not in Python (any HTTP client, another language's agent
harness), and a sandbox host that must not join a Ray cluster.
"""

import argparse
import http.server
import json
import os
import secrets
import signal
import sys

from sandbox_runner.contracts import ExecRequest, Isolation
from sandbox_runner.pool import Pool, PoolClosed, PoolFull
from sandbox_runner.sandbox import Sandbox

MAX_BODY_BYTES = 16 << 20
# Hosts that only this machine reaches: serving on any other needs a token.
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


class Service:
    """The state behind the handler: a pool, an optional token, the allowed path root."""

    def __init__(self, pool: Pool, token: str | None = None, root: str | None = None):
        self.pool, self.token = pool, token
        self.root = os.path.realpath(root) if root else None

    def check_paths(self, req: ExecRequest) -> str | None:
        if self.root is None:
            return None
        for path in (req.workdir, *req.readonly_mounts):
            real = os.path.realpath(path)
            if real != self.root and not real.startswith(self.root + os.sep):
                return f"{path} is outside the service root {self.root}"
        return None


def make_handler(service: Service) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # quiet: one line per request is noise at scale
            pass

        def _reply(self, code: int, payload: dict, headers: dict[str, str] | None = None) -> None:
            body = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _authorised(self) -> bool:
            if service.token is None:
                return True
            given = self.headers.get("Authorization", "")
            if secrets.compare_digest(given.encode(), f"Bearer {service.token}".encode()):
                return True
            self._reply(401, {"error": "missing or wrong `Authorization: Bearer <token>`"})
            return False

        def do_GET(self):
            if not self._authorised():
                return
            if self.path == "/health":
                sandbox = service.pool.sandbox
                self._reply(200, {"ok": True, "isolation": sandbox.isolation.name.lower(),
                                  "backend": sandbox.setup.backend.name})
            elif self.path == "/stats":
                self._reply(200, service.pool.snapshot())
            else:
                self._reply(404, {"error": f"no route {self.path}; use /run, /health or /stats"})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._reply(413, {"error": f"body over {MAX_BODY_BYTES} bytes"})
                self.close_connection = True
                return
            body = self.rfile.read(length)
            if not self._authorised():
                return
            if self.path != "/run":
                self._reply(404, {"error": f"no route {self.path}; POST /run"})
                return
            try:
                req = ExecRequest.from_dict(json.loads(body))
            except (ValueError, TypeError) as e:
                self._reply(400, {"error": f"bad ExecRequest: {e}"})
                return
            if (problem := service.check_paths(req)) is not None:
                self._reply(403, {"error": problem})
                return
            try:
                job = service.pool.submit(req)
            except PoolFull as e:
                self._reply(429, {"error": str(e)}, {"Retry-After": "1"})
                return
            except PoolClosed as e:
                self._reply(503, {"error": str(e)})
                return
            try:
                result = job.result()
            except ValueError as e:
                self._reply(400, {"error": str(e)})
                return
            self._reply(200, result.to_dict())

    return Handler


def make_server(pool: Pool, host: str = "127.0.0.1", port: int = 0, token: str | None = None,
                root: str | None = None) -> http.server.ThreadingHTTPServer:
    """A ready server (port 0 picks a free one: see `server.server_address`)."""
    server = http.server.ThreadingHTTPServer((host, port), make_handler(Service(pool, token, root)))
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m sandbox_runner.serve", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="bind address (loopback by default)")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--queue-size", type=int, default=None, help="waiting requests before 429")
    p.add_argument("--token", default=os.environ.get("SANDBOX_RUNNER_TOKEN"),
                   help="require `Authorization: Bearer TOKEN` (env SANDBOX_RUNNER_TOKEN)")
    p.add_argument("--root", default=None, help="only serve workspaces and mounts under this dir")
    p.add_argument("--backend", default="auto")
    p.add_argument("--min-isolation", default=Isolation.RLIMITS.name.lower())
    p.add_argument("--interpreter", default=sys.executable)
    args = p.parse_args(argv)
    if args.host not in LOOPBACK_HOSTS and not args.token:
        p.error("a non-loopback --host needs --token (anyone who reaches the port runs code)")
    sandbox = Sandbox(args.backend, args.min_isolation, args.interpreter)
    pool = Pool(sandbox, args.workers, args.queue_size)
    server = make_server(pool, args.host, args.port, args.token, args.root)
    host, port = server.server_address[:2]
    print(f"sandbox_runner serving on http://{host}:{port} with {args.workers} workers, "
          f"backend {sandbox.setup.backend.name}", flush=True)
    # Python leaves SIGINT ignored when the parent ignored it (background jobs of a script,
    # nohup): the service must still stop on Ctrl-C / SIGINT and close its pool.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        pool.close()


if __name__ == "__main__":
    main()
