"""The "sglang" engine: SGLang servers (or one sglang-router) behind the `Engine` contract.

Each request is one native `/generate` call with `input_ids`, `sampling_params`,
`return_logprob` and `rid` (shapes in `sglang_protocol.py`). Robustness, because rollouts run for
hours against processes that can die:
- requests go to the healthy server with the fewest requests in flight from this client;
- a connection failure, a 5xx or a timeout marks the server unhealthy for `cooldown_s` and the
  request is retried on another server (`max_attempts` in all); 4xx errors are not retried;
- each attempt sends a fresh rid (`<rid>.<attempt>` after the first): SGLang refuses a rid
  still in flight ("Duplicate request ID"), which a timed-out first attempt may be;
- a cancelled or timed-out request is aborted on its server (`/abort_request` with its rid), so
  the server frees the slot; behind a router, which has no `/abort_request`, on every worker
  (`weight_sync_urls`);
- `check_health()` probes every server's `/health` (a one-token generation in SGLang) and reads
  the weight version from `/model_info` (`/get_model_info` on servers older than 0.5.23);
- `api_key`: sent as `Authorization: Bearer <key>`, as SGLang's `--api-key` asks.
Weight sync (`update_weights(model_path, version)`): for every server in `weight_sync_urls`
(default: `urls`), `/pause_generation` -> `/update_weights_from_disk` (model_path,
weight_version, flush_cache) -> `/continue_generation`, all servers concurrently; seconds go to
`sync_seconds`. Behind an sglang-router, give the workers' URLs as `weight_sync_urls`: the
router forwards generation but weights must reach every worker.
"""

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from sandmle_jax.rollout import sglang_protocol as proto
from sandmle_jax.rollout.engine import (GenerateRequest, GenerateResult, next_version,
                                        register_engine)

log = logging.getLogger(__name__)

_RETRYABLE = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)


class SGLangError(RuntimeError):
    """A server answered with an error status (`status`), or every attempt failed (None)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@register_engine("sglang")
class SGLangEngine:
    """An `Engine` over SGLang HTTP servers; use as `async with SGLangEngine([...]) as e:`."""

    def __init__(self, urls: Sequence[str], weight_sync_urls: Sequence[str] | None = None,
                 request_timeout_s: float = 1800.0, connect_timeout_s: float = 10.0,
                 max_attempts: int | None = None, cooldown_s: float = 30.0,
                 pause_mode: str = "retract", control_timeout_s: float = 600.0,
                 abort_timeout_s: float = 5.0, weight_version: str = "default",
                 api_key: str | None = None):
        if not urls:
            raise ValueError("SGLangEngine needs at least one server URL, e.g. "
                             "['http://127.0.0.1:30000'].")
        if pause_mode not in proto.PAUSE_MODES:
            raise ValueError(f"pause_mode must be one of {proto.PAUSE_MODES}, got {pause_mode!r}.")
        self.urls = [u.rstrip("/") for u in urls]
        self.weight_sync_urls = [u.rstrip("/") for u in (weight_sync_urls or self.urls)]
        self.request_timeout_s = request_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_attempts = max_attempts or len(self.urls) + 1
        self.cooldown_s = cooldown_s
        self.pause_mode = pause_mode
        self.control_timeout_s = control_timeout_s
        self.abort_timeout_s = abort_timeout_s
        self.sync_seconds: list[float] = []
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._weight_version = weight_version
        self._in_flight = {u: 0 for u in self.urls}
        self._down_until = {u: 0.0 for u in self.urls}
        self._session: aiohttp.ClientSession | None = None

    # ---- session ---------------------------------------------------------------------------

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    async def close(self):
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0), headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=None, connect=self.connect_timeout_s))
        return self._session

    async def _post(self, url: str, path: str, body: dict | None, timeout_s: float) -> Any:
        """POST JSON; returns the decoded body (or text); raises SGLangError on 4xx/5xx."""
        async with self._http().post(f"{url}{path}", json=body if body is not None else {},
                                     timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            text = await resp.text()
            if resp.status >= 400:
                raise SGLangError(f"{url}{path} answered {resp.status}: {text[:500]}",
                                  resp.status)
            if resp.content_type == "application/json":
                return await resp.json()
            return text

    # ---- Engine ----------------------------------------------------------------------------

    @property
    def weight_version(self) -> str:
        return self._weight_version

    async def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        return list(await asyncio.gather(*(self._generate_one(r) for r in requests)))

    def _pick(self, tried: set[str]) -> str:
        now = time.monotonic()
        healthy = [u for u in self.urls if self._down_until[u] <= now]
        fresh = [u for u in healthy if u not in tried] or healthy or \
            [u for u in self.urls if u not in tried] or self.urls
        return min(fresh, key=lambda u: self._in_flight[u])

    async def _generate_one(self, request: GenerateRequest) -> GenerateResult:
        tried: set[str] = set()
        failures: list[str] = []
        for attempt in range(self.max_attempts):
            url = self._pick(tried)
            tried.add(url)
            rid = request.request_id if attempt == 0 else f"{request.request_id}.{attempt}"
            body = proto.generate_body(dataclasses.replace(request, request_id=rid),
                                       return_logprob=True)
            self._in_flight[url] += 1
            try:
                reply = await self._post(url, "/generate", body, self.request_timeout_s)
                result = proto.result_from_json(reply, request)
                return dataclasses.replace(result, request_id=request.request_id)
            except asyncio.CancelledError:
                await self._abort_quietly(url, rid)
                raise
            except SGLangError as e:
                if e.status is not None and e.status < 500:
                    raise
                failures.append(str(e))
            except _RETRYABLE as e:
                if isinstance(e, TimeoutError):
                    await self._abort_quietly(url, rid)
                failures.append(f"{url}: {type(e).__name__}: {e or 'timed out'}")
            finally:
                self._in_flight[url] -= 1
            self._down_until[url] = time.monotonic() + self.cooldown_s
            log.warning("request %s failed on %s, retrying elsewhere: %s",
                        request.request_id, url, failures[-1])
        if all("TimeoutError" in f for f in failures):
            raise TimeoutError(f"request {request.request_id!r} timed out on every attempt "
                               f"({self.request_timeout_s}s each): {failures}")
        raise SGLangError(f"request {request.request_id!r} failed on every attempt: {failures}")

    async def _abort_quietly(self, url: str, rid: str):
        """Best effort: a dead server needs no abort, a live one frees the slot. A URL that is
        not a worker's (a router) passes the abort to every worker."""
        targets = [url] if url in self.weight_sync_urls else self.weight_sync_urls
        for target in targets:
            try:
                await asyncio.shield(self._post(target, "/abort_request", {"rid": rid},
                                                self.abort_timeout_s))
            except (Exception, asyncio.CancelledError) as e:
                log.info("abort of %s on %s failed: %r", rid, target, e)

    async def abort(self, request_id: str) -> None:
        await asyncio.gather(*(self._abort_quietly(u, request_id)
                               for u in dict.fromkeys(self.weight_sync_urls)))

    async def update_weights(self, weights: Any, version: str | None = None) -> str:
        """Reloads every server from the HF directory `weights` (a path the servers can read)."""
        if not isinstance(weights, str):
            raise TypeError("SGLang servers load weights from disk: pass the HF directory path "
                            f"(written with models.hf.save_model), not {type(weights).__name__}.")
        version = version or next_version(self._weight_version)
        start = time.perf_counter()
        outcomes = await asyncio.gather(*(self._sync_one(u, weights, version)
                                          for u in self.weight_sync_urls), return_exceptions=True)
        errors = [f"{u}: {o}" for u, o in zip(self.weight_sync_urls, outcomes)
                  if isinstance(o, BaseException)]
        if errors:
            raise SGLangError(f"weight sync to version {version!r} failed on "
                              f"{len(errors)}/{len(outcomes)} servers: {errors}")
        self.sync_seconds.append(time.perf_counter() - start)
        self._weight_version = version
        return version

    async def _sync_one(self, url: str, model_path: str, version: str):
        await self._post(url, "/pause_generation", {"mode": self.pause_mode},
                         self.control_timeout_s)
        try:
            reply = await self._post(url, "/update_weights_from_disk", {
                "model_path": model_path, "weight_version": version, "flush_cache": True,
                "abort_all_requests": False}, self.control_timeout_s)
            if not reply.get("success"):
                raise SGLangError(f"update_weights_from_disk refused: {reply.get('message')}")
        finally:
            await self._post(url, "/continue_generation", {}, self.control_timeout_s)

    # ---- health ----------------------------------------------------------------------------

    async def check_health(self, timeout_s: float = 30.0) -> dict[str, bool]:
        """Probes every server; marks failures down for `cooldown_s`; reads the weight version."""
        async def probe(url: str) -> bool:
            try:
                async with self._http().get(f"{url}/health",
                                            timeout=aiohttp.ClientTimeout(total=timeout_s)) as r:
                    ok = r.status == 200
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            self._down_until[url] = 0.0 if ok else time.monotonic() + self.cooldown_s
            return ok

        status = dict(zip(self.urls, await asyncio.gather(*(probe(u) for u in self.urls))))
        for url in self.weight_sync_urls:
            if status.get(url, True):
                version = await self._read_weight_version(url, timeout_s)
                if version is not None:
                    self._weight_version = version
                    break
        return status

    async def _read_weight_version(self, url: str, timeout_s: float) -> str | None:
        """From /model_info, or /get_model_info where the first is missing (before 0.5.x)."""
        for path in ("/model_info", "/get_model_info"):
            try:
                async with self._http().get(f"{url}{path}",
                                            timeout=aiohttp.ClientTimeout(total=timeout_s)) as r:
                    if r.status == 404:
                        continue
                    return str((await r.json())["weight_version"])
            except (aiohttp.ClientError, TimeoutError, KeyError, ValueError):
                return None
        return None
