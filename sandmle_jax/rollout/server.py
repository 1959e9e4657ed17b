"""An SGLang-protocol HTTP server over any `Engine`, so external tools can use our policy.

Serves SGLang's native endpoints with SGLang's request and response shapes (the field list is in
`sglang_protocol.py`) plus OpenAI-compatible `/v1/chat/completions` and `/v1/models` when the
model directory has a tokenizer. Without one, token-id endpoints work as with SGLang's
`--skip-tokenizer-init`.

Deviations from SGLang, on purpose:
- No prefix cache, so `/flush_cache` always succeeds and `cached_tokens` is 0.
- `/pause_generation` with mode "abort" aborts every request in flight (as SGLang does); with
  "retract" or "in_place" running requests go on and new ones wait for `/continue_generation`.
  The embedded engine swaps weights between decode steps, so a request that spans a swap reports
  the version it finished under (SGLang reports the version at finish time too).
- `/health` and `/health_generate` generate one greedy token from input_ids [0] within
  `health_timeout_s` (as SGLang does); while paused they answer 200 without generating.
- `/abort_request` matches `rid` exactly (SGLang's scheduler also aborts rids it prefixes).
"""

import asyncio
import contextlib
import functools
import logging
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
                 health_timeout_s: float = 20.0):
        self.engine = engine
        self.model_path = model_path
        self.tokenizer = tokenizer
        self.served_model_name = served_model_name or model_path
        self.default_max_tokens = default_max_tokens
        self.health_timeout_s = health_timeout_s
        self._in_flight: dict[str, str] = {}  # rid -> "waiting" | "running" | "aborted"
        self._unpaused: asyncio.Event | None = None
        self._state_changed: asyncio.Event | None = None
        self.app = web.Application(client_max_size=64 * 2**20)
        routes = [
            ("POST", "/generate", self.generate), ("PUT", "/generate", self.generate),
            ("GET", "/health", self.health), ("GET", "/health_generate", self.health),
            ("GET", "/get_model_info", self.get_model_info),
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

    def _gate(self) -> asyncio.Event:
        """Set while generation may proceed; created lazily inside the serving event loop."""
        if self._unpaused is None:
            self._unpaused = asyncio.Event()
            self._unpaused.set()
        return self._unpaused

    @staticmethod
    def _error(message: str, status: int = 400) -> web.Response:
        return web.json_response(proto.error_body(message, status), status=status)

    @staticmethod
    async def _json(request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        body = await request.json()
        if not isinstance(body, dict):
            raise proto.ProtocolError("the request body must be a JSON object.")
        return body

    async def _run(self, requests: list[GenerateRequest]) -> list[GenerateResult]:
        """Generates after any pause; tracks rids so /abort_request reaches waiting ones too."""
        clash = [r.request_id for r in requests if r.request_id in self._in_flight]
        if clash:
            raise proto.ProtocolError(f"rid {clash[0]!r} is already in flight; "
                                      "rids must be unique.")
        for r in requests:
            self._in_flight[r.request_id] = "waiting"
        try:
            await self._wait_unpaused([r.request_id for r in requests])
            live = [r for r in requests if self._in_flight[r.request_id] != "aborted"]
            for r in live:
                self._in_flight[r.request_id] = "running"
            done = dict(zip((r.request_id for r in live), await self.engine.generate(live)))
            return [done.get(r.request_id) or GenerateResult(
                r.request_id, (), (), FinishReason("abort", message="Aborted while paused."),
                self.engine.weight_version, len(r.input_ids)) for r in requests]
        finally:
            for r in requests:
                self._in_flight.pop(r.request_id, None)

    async def _wait_unpaused(self, rids: list[str]):
        """Until generation continues, or until every one of `rids` is aborted."""
        while not self._gate().is_set():
            if all(self._in_flight[r] == "aborted" for r in rids):
                return
            if self._state_changed is None:
                self._state_changed = asyncio.Event()
            await self._state_changed.wait()

    def _notify(self):
        if self._state_changed is not None:
            self._state_changed.set()
            self._state_changed = None

    def _decode(self, ids) -> str | None:
        if self.tokenizer is None:
            return None
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    # ---- native endpoints -----------------------------------------------------------------

    async def generate(self, request: web.Request) -> web.Response:
        start = time.perf_counter()
        try:
            body = await self._json(request)
            encode = None if self.tokenizer is None else functools.partial(
                self.tokenizer.encode, add_special_tokens=False)
            requests, is_batch = proto.parse_generate_body(body, encode)
            results = await self._run(requests)
        except (proto.ProtocolError, ValueError) as e:
            return self._error(str(e))
        return_logprob = bool(body.get("return_logprob"))
        with_text = bool(body.get("return_text_in_logprobs")) and self.tokenizer is not None
        latency = time.perf_counter() - start
        outs = []
        for res in results:
            token_texts = None
            if return_logprob and with_text:
                token_texts = [self.tokenizer.decode([t]) for t in res.output_ids]
            outs.append(proto.result_to_json(res, return_logprob, latency,
                                             self._decode(res.output_ids), token_texts))
        return web.json_response(outs if is_batch else outs[0])

    async def health(self, request: web.Request) -> web.Response:
        if not self._gate().is_set():
            return web.Response(status=200)
        probe = GenerateRequest(f"HEALTH_CHECK_{uuid.uuid4().hex}", (0,),
                                SamplingParams(temperature=0.0, max_new_tokens=1))
        try:
            await asyncio.wait_for(self.engine.generate([probe]), self.health_timeout_s)
        except Exception:  # any failure or timeout means unhealthy; the log keeps the cause
            log.exception("health check generation failed")
            return web.Response(status=503)
        return web.Response(status=200)

    async def get_model_info(self, request: web.Request) -> web.Response:
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
        return web.Response(text="Cache flushed.\n", status=200)

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

    async def chat_completions(self, request: web.Request) -> web.Response:
        if self.tokenizer is None:
            return self._error("/v1/chat/completions needs a tokenizer and chat template in the "
                               "model directory; this server has none. Use /generate with "
                               "input_ids.")
        try:
            body = await self._json(request)
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                raise proto.ProtocolError("messages must be a non-empty list.")
            if body.get("stream"):
                raise proto.ProtocolError("stream=true is not supported by this server.")
            if body.get("n", 1) != 1:
                raise proto.ProtocolError("only n=1 is supported by this server.")
            template_kwargs = dict(body.get("chat_template_kwargs") or {})
            prompt_text = self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False, **template_kwargs)
            prompt_ids = self.tokenizer.encode(prompt_text, add_special_tokens=False)
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
            rid = f"chatcmpl-{uuid.uuid4().hex}"
            [result] = await self._run([GenerateRequest(rid, tuple(prompt_ids), params)])
        except (proto.ProtocolError, ValueError, TypeError) as e:
            return self._error(str(e))
        finish = result.finish_reason
        finish_name = {"stop": "stop", "length": "length"}.get(finish.type, "abort")
        message: dict[str, Any] = {"role": "assistant", "content": self._decode(result.output_ids)}
        choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish_name,
                                  "matched_stop": finish.matched}
        if body.get("logprobs"):
            choice["logprobs"] = {"content": [
                {"token": self.tokenizer.decode([t]), "logprob": lp, "top_logprobs": []}
                for t, lp in zip(result.output_ids, result.output_logprobs)]}
        n_prompt, n_out = result.prompt_tokens, len(result.output_ids)
        return web.json_response({
            "id": rid, "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model") or self.served_model_name, "choices": [choice],
            "usage": {"prompt_tokens": n_prompt, "completion_tokens": n_out,
                      "total_tokens": n_prompt + n_out},
        })


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
