"""Client for one or more `sandbox_runner.serve` endpoints.

Spreads requests round-robin, skips an endpoint that stops answering (for `dead_cooldown_s`)
and retries the request on the next one, and surfaces backpressure: when every live endpoint
answers 429/503 for longer than `max_wait_s`, `run` raises Backpressure instead of queueing
without bound. A request retried after its endpoint died mid-run may execute twice.
"""

import http.client
import itertools
import json
import threading
import time
import urllib.error
import urllib.request

from sandbox_runner.contracts import ExecRequest, ExecResult


class Backpressure(RuntimeError):
    """Every endpoint is saturated; slow down (retry_after_s is the servers' hint)."""

    def __init__(self, message: str, retry_after_s: float):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class NoLiveEndpoint(ConnectionError):
    """Every endpoint failed to answer."""


class Client:
    def __init__(self, endpoints: list[str] | str, token: str | None = None,
                 dead_cooldown_s: float = 30.0, max_wait_s: float = 0.0,
                 connect_margin_s: float = 30.0):
        self.endpoints = [endpoints] if isinstance(endpoints, str) else list(endpoints)
        if not self.endpoints:
            raise ValueError("Client needs at least one endpoint like http://127.0.0.1:8765")
        self.token, self.dead_cooldown_s = token, dead_cooldown_s
        self.max_wait_s, self.connect_margin_s = max_wait_s, connect_margin_s
        self._dead_until = {e: 0.0 for e in self.endpoints}
        self._next = itertools.count()
        self._lock = threading.Lock()

    def _order(self) -> list[str]:
        with self._lock:
            start = next(self._next) % len(self.endpoints)
        ring = self.endpoints[start:] + self.endpoints[:start]
        now = time.monotonic()
        live = [e for e in ring if self._dead_until[e] <= now]
        return live or ring  # all marked dead: try them all again rather than give up unasked

    def _call(self, endpoint: str, method: str, path: str, payload: dict | None,
              timeout: float) -> tuple[int, dict, dict]:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(endpoint.rstrip("/") + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read()), dict(response.headers)
        except urllib.error.HTTPError as e:
            body = e.read()
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = {"error": body.decode("utf-8", "replace")}
            return e.code, parsed, dict(e.headers)

    def run(self, req: ExecRequest) -> ExecResult:
        timeout = req.limits.wall_s + self.connect_margin_s
        give_up = time.monotonic() + self.max_wait_s
        failures: dict[str, str] = {}
        while True:
            busy, retry_after = [], 1.0
            for endpoint in self._order():
                try:
                    code, body, headers = self._call(endpoint, "POST", "/run", req.to_dict(),
                                                     timeout)
                except (OSError, http.client.HTTPException) as e:
                    failures[endpoint] = repr(e)
                    self._dead_until[endpoint] = time.monotonic() + self.dead_cooldown_s
                    continue
                if code == 200:
                    self._dead_until[endpoint] = 0.0
                    return ExecResult.from_dict(body)
                if code in (429, 503):
                    busy.append(endpoint)
                    retry_after = max(retry_after, float(headers.get("Retry-After", 1)))
                    continue
                if code in (400, 403, 413):
                    raise ValueError(f"{endpoint} rejected the request ({code}): "
                                     f"{body.get('error')}")
                if code == 401:
                    raise PermissionError(f"{endpoint}: {body.get('error')}")
                failures[endpoint] = f"HTTP {code}: {body.get('error')}"
                self._dead_until[endpoint] = time.monotonic() + self.dead_cooldown_s
            if not busy:
                raise NoLiveEndpoint(f"no endpoint answered: {failures}")
            if time.monotonic() + retry_after > give_up:
                raise Backpressure(f"all live endpoints are saturated: {busy}", retry_after)
            time.sleep(retry_after)

    def health(self) -> dict[str, dict | str]:
        """Each endpoint's /health answer, or the error reaching it."""
        found = {}
        for endpoint in self.endpoints:
            try:
                found[endpoint] = self._call(endpoint, "GET", "/health", None, 5.0)[1]
            except (OSError, http.client.HTTPException) as e:
                found[endpoint] = repr(e)
        return found

    def stats(self, endpoint: str) -> dict:
        return self._call(endpoint, "GET", "/stats", None, 5.0)[1]
