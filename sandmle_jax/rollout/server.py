"""An SGLang-protocol HTTP server over any `Engine`, so external tools can use our policy.

Serves SGLang's native endpoints with SGLang's request and response shapes (the field list and
the pinned SGLang version are in `sglang_protocol.py`) plus OpenAI-compatible
`/v1/chat/completions` and `/v1/models` when the model directory has a tokenizer. Without one,
token-id endpoints work as with SGLang's `--skip-tokenizer-init`. As strict as SGLang where a
client could otherwise be fooled: an unknown sampling key is a 400, `/health` is 503 while
generation is paused, `/flush_cache` is 400 while requests run, and with `api_key` every
endpoint but `/health*` needs `Authorization: Bearer <key>` (401 otherwise), as SGLang's
`--api-key`.

Deviations from SGLang, on purpose:
- No prefix cache across requests: `cached_tokens` is 0 and a flush only checks idleness. (The
  embedded engine shares one prefill among identical prompts admitted together, which is what
  n > 1 asks for.)
- `/pause_generation` with mode "abort" aborts every request in flight (as SGLang does); with
  "retract" or "in_place" running requests go on and new ones wait for `/continue_generation`.
  The embedded engine swaps weights between decode steps, so a request that spans a swap reports
  the version it finished under (SGLang reports the version at finish time too).
- `/health` and `/health_generate` generate one greedy token from input_ids [0] within
  `health_timeout_s` (as SGLang does); while paused they answer 503 at once (SGLang's probe
  times out to 503 after 20 s).
- Streaming sends a chunk per decode chunk of the engine (`decode_chunk` tokens; SGLang's
  `stream_interval`); engines without a `stream` method send one chunk per request at its end.
- `/abort_request` matches `rid` exactly (SGLang's scheduler also aborts rids it prefixes).
"""

import asyncio
import contextlib
import functools
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from sandmle_jax.rollout import sglang_protocol as proto
from sandmle_jax.rollout.engine import (Engine, FinishReason, GenerateRequest, GenerateResult,
                                        SamplingParams)

log = logging.getLogger(__name__)


class SGLangServer:
    """Routes SGLang-protocol HTTP requests to an engine; `app` is the aiohttp application."""

    def __init__(self, engine: Engine, model_path: str, tokenizer=None,
                 served_model_name: str | None = None, default_max_tokens: int = 1024,
                 health_timeout_s: float = 20.0, api_key: str | None = None):
        self.engine = engine
        self.model_path = model_path
        self.tokenizer = tokenizer
        self.served_model_name = served_model_name or model_path
        self.default_max_tokens = default_max_tokens
        self.health_timeout_s = health_timeout_s
        self._in_flight: dict[str, str] = {}  # rid -> "waiting" | "running" | "aborted"
        self._unpaused: asyncio.Event | None = None
        self._state_changed: asyncio.Event | None = None
        self.api_key = api_key
        self.app = web.Application(client_max_size=64 * 2**20, middlewares=[self._auth])
        routes = [
            ("POST", "/generate", self.generate), ("PUT", "/generate", self.generate),
            ("GET", "/health", self.health), ("GET", "/health_generate", self.health),
            ("GET", "/model_info", self.model_info), ("GET", "/get_model_info", self.model_info),
            ("GET", "/get_weight_version", self.get_weight_version),
            ("GET", "/flush_cache", self.flush_cache), ("POST", "/flush_cache", self.flush_cache),
            ("POST", "/update_weights_from_disk", self.update_weights_from_disk),
            ("POST", "/pause_generation", self.pause_generation),
            ("POST", "/continue_generation", self.continue_generation),
            ("POST", "/abort_request", self.abort_request),
            ("POST", "/v1/chat/completions", self.chat_completions),
            ("GET", "/v1/models", self.models),
        ]
        for method, path, handler in routes:
            self.app.router.add_route(method, path, handler)

    # ---- helpers --------------------------------------------------------------------------

    @web.middleware
    async def _auth(self, request: web.Request, handler):
        """SGLang's --api-key: a Bearer token on every path but the health probes."""
        if self.api_key is None or request.path.startswith(("/health", "/ready", "/metrics")):
            return await handler(request)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.encode(),
                                                                     self.api_key.encode()):
            return web.json_response({"error": "Unauthorized"}, status=401)
        return await handler(request)

    def _gate(self) -> asyncio.Event:
        """Set while generation may proceed; created lazily inside the serving event loop."""
        if self._unpaused is None:
            self._unpaused = asyncio.Event()
            self._unpaused.set()
        return self._unpaused

    @staticmethod
    def _error(message: str | Exception, status: int = 400) -> web.Response:
        if isinstance(message, proto.ContractError):  # the contract gate's own body
            return web.json_response({"error": str(message)}, status=400)
        return web.json_response(proto.error_body(str(message), status), status=status)

    def _busy(self) -> bool:
        """Requests running, or waiting while generation is not paused (SGLang's idleness)."""
        paused = not self._gate().is_set()
        return any(state == "running" or (state == "waiting" and not paused)
                   for state in self._in_flight.values())

    @staticmethod
    async def _json(request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        body = await request.json()
        if not isinstance(body, dict):
            raise proto.ProtocolError("the request body must be a JSON object.")
        return body

    def _check_unique(self, requests: list[GenerateRequest]) -> None:
        """SGLang refuses a rid already in flight (400 "Duplicate request ID")."""
        rids = [r.request_id for r in requests]
        clash = [r for r in rids if r in self._in_flight] or [
            r for r in rids if rids.count(r) > 1]
        if clash:
            raise proto.ProtocolError(f"Duplicate request ID: {clash[0]!r}; rids must be "
                                      "unique.")

    @contextlib.asynccontextmanager
    async def _admitted(self, requests: list[GenerateRequest]):
        """Tracks the rids (so /abort_request reaches waiting ones too and /flush_cache sees
        them), waits out any pause, then yields the requests not aborted meanwhile, marked
        running; untracks them all on leaving."""
        self._check_unique(requests)
        for r in requests:
            self._in_flight[r.request_id] = "waiting"
        try:
            await self._wait_unpaused([r.request_id for r in requests])
            live = [r for r in requests if self._in_flight[r.request_id] != "aborted"]
            for r in live:
                self._in_flight[r.request_id] = "running"
            yield live
        finally:
            for r in requests:
                self._in_flight.pop(r.request_id, None)
            self._notify()

    async def _run(self, requests: list[GenerateRequest]) -> list[GenerateResult]:
        """Generates after any pause; a request aborted while waiting ends as aborted."""
        async with self._admitted(requests) as live:
            done = dict(zip((r.request_id for r in live), await self.engine.generate(live)))
        return [done.get(r.request_id) or self._aborted(r) for r in requests]

    def _aborted(self, request: GenerateRequest) -> GenerateResult:
        return GenerateResult(request.request_id, (), (),
                              FinishReason("abort", message="Aborted while paused."),
                              self.engine.weight_version, len(request.input_ids))

    async def _produce(self, request: GenerateRequest, index: int, sink) -> None:
        """One request for a stream: `sink(index, item)` for each item, the output so far as
        (ids, logprobs) after each of the engine's decode chunks (engines with `stream`), then
        its GenerateResult; paused, tracked and abortable as `_run`'s requests."""
        stream = getattr(self.engine, "stream", None)
        if stream is None:
            [result] = await self._run([request])
            await sink(index, result)
            return
        async with self._admitted([request]) as live:
            if not live:
                await sink(index, self._aborted(request))
                return
            async for item in stream(request):
                await sink(index, item)

    async def _streamed(self, requests: list[GenerateRequest]):
        """(index, item) of every request's stream as items arrive, interleaved."""
        arrived: asyncio.Queue = asyncio.Queue()

        async def sink(index, item):
            await arrived.put((index, item))
        producers = asyncio.ensure_future(asyncio.gather(
            *(self._produce(r, i, sink) for i, r in enumerate(requests))))
        try:
            while not (producers.done() and arrived.empty()):
                getter = asyncio.ensure_future(arrived.get())
                await asyncio.wait({getter, producers}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield getter.result()
                else:
                    getter.cancel()
            producers.result()  # a producer's error reaches the caller
        finally:
            producers.cancel()

    async def _wait_unpaused(self, rids: list[str]):
        """Until generation continues, or until every one of `rids` is aborted."""
        while not self._gate().is_set():
            if all(self._in_flight[r] == "aborted" for r in rids):
                return
            await self._changed()

    def _notify(self):
        if self._state_changed is not None:
            self._state_changed.set()
            self._state_changed = None

    async def _changed(self, timeout: float | None = None) -> None:
        """Until the in-flight set or the pause state changes, or `timeout` seconds."""
        if self._state_changed is None:
            self._state_changed = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._state_changed.wait(), timeout)

    @staticmethod
    async def _event_stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)
        return response

    @staticmethod
    async def _send_event(response: web.StreamResponse, payload: Any) -> None:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        await response.write(f"data: {data}\n\n".encode())

    def _decode(self, ids) -> str | None:
        if self.tokenizer is None:
            return None
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    # ---- native endpoints -----------------------------------------------------------------

    async def generate(self, request: web.Request) -> web.StreamResponse:
        start = time.perf_counter()
        try:
            body = await self._json(request)
            encode = None if self.tokenizer is None else functools.partial(
                self.tokenizer.encode, add_special_tokens=False)
            requests, is_batch = proto.parse_generate_body(body, encode)
            self._check_unique(requests)
        except (proto.ProtocolError, ValueError) as e:
            return self._error(e)
        return_logprob = bool(body.get("return_logprob"))
        with_text = bool(body.get("return_text_in_logprobs")) and self.tokenizer is not None

        def output(res: GenerateResult) -> dict[str, Any]:
            token_texts = None
            if return_logprob and with_text:
                token_texts = [self.tokenizer.decode([t]) for t in res.output_ids]
            return proto.result_to_json(res, return_logprob, time.perf_counter() - start,
                                        self._decode(res.output_ids), token_texts)

        if body.get("stream"):
            return await self._stream_generate(request, requests, is_batch, output,
                                               return_logprob, start)
        try:
            results = await self._run(requests)
        except (proto.ProtocolError, ValueError) as e:
            return self._error(e)
        outs = [output(res) for res in results]
        return web.json_response(outs if is_batch else outs[0])

    async def _stream_generate(self, request, requests, is_batch, output, return_logprob,
                               start) -> web.StreamResponse:
        """Server-sent events: each request's output so far after each decode chunk, then its
        final object (batches carry `index`), then [DONE]."""
        response = await self._event_stream(request)
        try:
            async for index, item in self._streamed(requests):
                if isinstance(item, GenerateResult):
                    out = output(item)
                else:
                    ids, logprobs = item
                    r = requests[index]
                    out = proto.output_to_json(
                        r.request_id, ids, logprobs, None, len(r.input_ids),
                        self.engine.weight_version, return_logprob,
                        time.perf_counter() - start, self._decode(ids))
                if is_batch:
                    out["index"] = index
                await self._send_event(response, out)
        except (proto.ProtocolError, ValueError) as e:
            await self._send_event(response, {"error": {"message": str(e),
                                                        "type": "invalid_request_error",
                                                        "code": 400}})
        await self._send_event(response, "[DONE]")
        return response

    async def health(self, request: web.Request) -> web.Response:
        if not self._gate().is_set():  # no generation can answer the probe
            return web.Response(status=503)
        probe = GenerateRequest(f"HEALTH_CHECK_{uuid.uuid4().hex}", (0,),
                                SamplingParams(temperature=0.0, max_new_tokens=1))
        try:
            await asyncio.wait_for(self.engine.generate([probe]), self.health_timeout_s)
        except Exception:  # any failure or timeout means unhealthy; the log keeps the cause
            log.exception("health check generation failed")
            return web.Response(status=503)
        return web.Response(status=200)

    async def model_info(self, request: web.Request) -> web.Response:
        return web.json_response({
            "model_path": self.model_path,
            "tokenizer_path": self.model_path if self.tokenizer is not None else None,
            "is_generation": True,
            "preferred_sampling_params": None,
            "weight_version": self.engine.weight_version,
        })

    async def get_weight_version(self, request: web.Request) -> web.Response:
        return web.json_response({"weight_version": self.engine.weight_version})

    async def flush_cache(self, request: web.Request) -> web.Response:
        """SGLang's rule: only when idle; `?timeout=s` waits that long for idleness."""
        try:
            timeout = float(request.query.get("timeout", 0.0))
        except ValueError:
            return self._error("timeout must be a number of seconds >= 0")
        deadline = time.monotonic() + max(timeout, 0.0)
        while self._busy() and time.monotonic() < deadline:
            await self._changed(deadline - time.monotonic())
        if self._busy():
            message = ("Timed out waiting for idle state." if timeout > 0
                       else "Flush cache failed.\n")
            return web.Response(text=message, status=400)
        return web.Response(text="Cache flushed.\nPlease check backend logs for more details. "
                                 "(When there are running or waiting requests, the operation "
                                 "will not be performed.)\n", status=200)

    async def update_weights_from_disk(self, request: web.Request) -> web.Response:
        try:
            body = await self._json(request)
        except (proto.ProtocolError, ValueError) as e:
            return self._error(str(e))
        model_path = body.get("model_path")
        if not model_path:
            return web.json_response({"success": False, "message": "model_path is required.",
                                      "num_paused_requests": 0}, status=400)
        if body.get("abort_all_requests"):
            await self._abort_all("weights update with abort_all_requests")
        version = body.get("weight_version")
        try:
            new_version = await self.engine.update_weights(
                str(model_path), None if version is None else str(version))
        except Exception as e:  # reported to the caller as SGLang does: success false, 400
            log.exception("update_weights_from_disk failed")
            return web.json_response({"success": False, "message": f"{type(e).__name__}: {e}",
                                      "num_paused_requests": 0}, status=400)
        return web.json_response({
            "success": True,
            "message": ("Succeeded to update model weights. "
                        f"Weight version updated to {new_version}."),
            "num_paused_requests": 0,
        })

    async def pause_generation(self, request: web.Request) -> web.Response:
        try:
            body = await self._json(request)
        except (proto.ProtocolError, ValueError) as e:
            return self._error(str(e))
        mode = body.get("mode", "abort")
        if mode not in proto.PAUSE_MODES:
            return self._error(f"Invalid mode: {mode!r}. "
                               f"Expected one of {list(proto.PAUSE_MODES)}.")
        self._gate().clear()
        if mode == "abort":
            await self._abort_all("generation paused with mode=abort")
        return web.json_response({"message": "Generation paused successfully.", "status": "ok"})

    async def continue_generation(self, request: web.Request) -> web.Response:
        self._gate().set()
        self._notify()
        return web.json_response({"message": "Generation continued successfully.", "status": "ok"})

    async def abort_request(self, request: web.Request) -> web.Response:
        try:
            body = await self._json(request)
        except (proto.ProtocolError, ValueError) as e:
            return self._error(str(e))
        if body.get("abort_all"):
            await self._abort_all("abort_all")
        elif body.get("rid"):
            await self._abort(str(body["rid"]))
        return web.Response(status=200)

    async def _abort(self, rid: str):
        state = self._in_flight.get(rid)
        if state == "waiting":
            self._in_flight[rid] = "aborted"
            self._notify()
        elif state == "running":
            await self.engine.abort(rid)

    async def _abort_all(self, why: str):
        log.info("aborting %d requests: %s", len(self._in_flight), why)
        for rid in list(self._in_flight):
            await self._abort(rid)

    # ---- OpenAI-compatible endpoints ------------------------------------------------------

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": self.served_model_name, "object": "model", "created": 0,
             "owned_by": "sandmle_jax", "root": self.served_model_name}]})

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        if self.tokenizer is None:
            return self._error("/v1/chat/completions needs a tokenizer and chat template in the "
                               "model directory; this server has none. Use /generate with "
                               "input_ids.")
        try:
            body = await self._json(request)
            requests = self._chat_requests(body)
            self._check_unique(requests)
        except (proto.ProtocolError, ValueError, TypeError) as e:
            return self._error(e)
        created, model = int(time.time()), body.get("model") or self.served_model_name
        cid = requests[0].request_id.rsplit("-", 1)[0]
        if body.get("stream"):
            return await self._stream_chat(request, body, requests, cid, created, model)
        try:
            results = await self._run(requests)
        except (proto.ProtocolError, ValueError) as e:
            return self._error(e)
        choices = [self._choice(i, res, body.get("logprobs")) for i, res in enumerate(results)]
        return web.json_response({
            "id": cid, "object": "chat.completion", "created": created, "model": model,
            "choices": choices, "usage": self._usage(results)})

    def _chat_requests(self, body: dict[str, Any]) -> list[GenerateRequest]:
        """One request per choice (`n`), all on the chat-templated prompt."""
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise proto.ProtocolError("messages must be a non-empty list.")
        n = int(body.get("n") or 1)
        if n < 1:
            raise proto.ProtocolError("n must be at least 1.")
        template_kwargs = dict(body.get("chat_template_kwargs") or {})
        prompt_text = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False, **template_kwargs)
        prompt_ids = tuple(self.tokenizer.encode(prompt_text, add_special_tokens=False))
        stop = body.get("stop") or ()
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        params = SamplingParams(
            temperature=1.0 if body.get("temperature") is None else float(body["temperature"]),
            top_p=1.0 if body.get("top_p") is None else float(body["top_p"]),
            top_k=-1 if body.get("top_k") is None else int(body["top_k"]),
            max_new_tokens=int(max_tokens or self.default_max_tokens),
            stop=(stop,) if isinstance(stop, str) else tuple(stop),
            stop_token_ids=tuple(body.get("stop_token_ids") or ()),
            seed=None if body.get("seed") is None else int(body["seed"]))
        cid = f"chatcmpl-{uuid.uuid4().hex}"
        return [GenerateRequest(f"{cid}-{i}", prompt_ids, params) for i in range(n)]

    def _choice(self, index: int, result: GenerateResult, logprobs: bool) -> dict[str, Any]:
        finish = result.finish_reason
        choice: dict[str, Any] = {
            "index": index,
            "message": {"role": "assistant", "content": self._decode(result.output_ids)},
            "finish_reason": {"stop": "stop", "length": "length"}.get(finish.type, "abort"),
            "matched_stop": finish.matched}
        if logprobs:
            choice["logprobs"] = {"content": [
                {"token": self.tokenizer.decode([t]), "logprob": lp, "top_logprobs": []}
                for t, lp in zip(result.output_ids, result.output_logprobs)]}
        return choice

    @staticmethod
    def _usage(results: list[GenerateResult]) -> dict[str, int]:
        prompt = results[0].prompt_tokens if results else 0
        completion = sum(len(r.output_ids) for r in results)
        return {"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion}

    async def _stream_chat(self, request, body, requests, cid, created,
                           model) -> web.StreamResponse:
        """chat.completion.chunk events: per choice, the text added since its last chunk after
        each decode chunk, then its finish_reason; usage last when stream_options.include_usage;
        then [DONE]."""
        response = await self._event_stream(request)
        head = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
        sent = [""] * len(requests)
        results = []

        async def delta(index: int, text: str, **extra):
            added = text[len(sent[index]):] if text.startswith(sent[index]) else text
            sent[index] = text
            if added or extra:
                await self._send_event(response, {**head, "choices": [{
                    "index": index, "delta": {"role": "assistant", "content": added},
                    "finish_reason": None, **extra}]})
        try:
            async for index, item in self._streamed(requests):
                if not isinstance(item, GenerateResult):
                    await delta(index, self._decode(item[0]))
                    continue
                results.append(item)
                choice = self._choice(index, item, body.get("logprobs"))
                await delta(index, choice["message"]["content"],
                            **({"logprobs": choice["logprobs"]} if "logprobs" in choice else {}))
                await self._send_event(response, {**head, "choices": [{
                    "index": index, "delta": {}, "finish_reason": choice["finish_reason"],
                    "matched_stop": choice["matched_stop"]}]})
            if (body.get("stream_options") or {}).get("include_usage"):
                await self._send_event(response, {**head, "choices": [],
                                                  "usage": self._usage(results)})
        except (proto.ProtocolError, ValueError) as e:
            await self._send_event(response, {"error": {"message": str(e), "code": 400}})
        await self._send_event(response, "[DONE]")
        return response


@contextlib.contextmanager
def serve_in_thread(server: SGLangServer, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Runs `server` on its own event loop in a daemon thread; yields its base URL; stops on exit.

    Port 0 picks a free port. Client disconnects cancel their handlers, so a client that gives
    up frees its engine slot.
    """
    loop = asyncio.new_event_loop()
    started: dict[str, Any] = {}
    ready = threading.Event()

    async def start():
        runner = web.AppRunner(server.app, handler_cancellation=True, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        started["runner"] = runner
        started["port"] = runner.addresses[0][1]

    def run():
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        except BaseException as e:  # surfaced to the caller below
            started["error"] = e
        ready.set()
        if "error" not in started:
            loop.run_forever()

    thread = threading.Thread(target=run, name="sglang-protocol-server", daemon=True)
    thread.start()
    ready.wait()
    if "error" in started:
        raise RuntimeError(f"could not start the server on {host}:{port}") from started["error"]
    try:
        yield f"http://{host}:{started['port']}"
    finally:
        asyncio.run_coroutine_threadsafe(started["runner"].cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()
