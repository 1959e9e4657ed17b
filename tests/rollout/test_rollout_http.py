"""Our SGLang client against our SGLang-protocol server (embedded engine, tiny Qwen3) over real
HTTP on loopback: generation with log-probs, weight sync, a killed server, a hung server,
abort on cancellation, OpenAI chat, and token-id-only serving."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import openai
import pytest
from flax import nnx

from benchmarks.scripted_llm import json_endpoint
from benchmarks.local_cluster import free_port, http_json
from sandmle_jax.models import hf
from sandmle_jax.models import tokenizer as tokenizer_lib
from sandmle_jax.models.qwen3 import Qwen3, Qwen3Config
from sandmle_jax.rollout import factory
from sandmle_jax.rollout.embedded import EmbeddedEngine
from sandmle_jax.rollout.engine import GenerateRequest, SamplingParams
from sandmle_jax.rollout.server import SGLangServer, serve_in_thread
from sandmle_jax.rollout.sglang_client import SGLangEngine

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENGINE_ARGS = dict(num_slots=4, max_len=128, decode_chunk=4)
SGLANG_META_KEYS = {"id", "finish_reason", "prompt_tokens", "weight_version", "completion_tokens",
                    "cached_tokens", "e2e_latency", "output_token_logprobs"}


def _save_random_model(path, seed):
    config = Qwen3Config.tiny(initializer_range=0.4)
    hf.save_model(Qwen3(config, rngs=nnx.Rngs(seed)), str(path))
    return str(path)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("http_models")
    return _save_random_model(root / "v0", 0), _save_random_model(root / "v1", 1)


@pytest.fixture(scope="module")
def served(model_dirs):
    """One in-process server over the embedded engine; yields (url, engine, server)."""
    engine = EmbeddedEngine.from_dir(model_dirs[0], **ENGINE_ARGS)
    server = SGLangServer(engine, model_dirs[0])
    with serve_in_thread(server) as url:
        yield url, engine, server
    engine.close()


def _requests(n, temperature=1.0, max_new_tokens=12):
    return [GenerateRequest(f"q{i}-{time.monotonic_ns()}", tuple(range(5 + i, 12 + 2 * i)),
                            SamplingParams(temperature=temperature, top_k=20,
                                           max_new_tokens=max_new_tokens, seed=i))
            for i in range(n)]


def test_generate_with_logprobs_matches_the_engine(served):
    url, engine, _ = served
    requests = _requests(5)
    twins = [GenerateRequest(r.request_id + "-direct", r.input_ids, r.sampling_params)
             for r in requests]

    async def go():
        async with SGLangEngine([url]) as client:
            return await client.generate(requests), await engine.generate(twins)
    over_http, direct = asyncio.run(go())
    for a, b in zip(over_http, direct):
        assert a.output_ids == b.output_ids and a.finish_reason == b.finish_reason
        np.testing.assert_allclose(a.output_logprobs, b.output_logprobs, atol=1e-5, rtol=0)
        assert len(a.output_ids) == 12 and all(lp <= 0 for lp in a.output_logprobs)
    # The raw reply has SGLang's shape, batch form included.
    status, replies = http_json(url, "/generate", {"input_ids": [[5, 6, 7], [8, 9]], "rid": "raw",
                                               "sampling_params": {"max_new_tokens": 3,
                                                                   "temperature": 0},
                                               "return_logprob": True, "unknown_field": 1})
    assert status == 200 and [r["meta_info"]["id"] for r in replies] == ["raw_0", "raw_1"]
    meta = replies[0]["meta_info"]
    assert set(meta) == SGLANG_META_KEYS and meta["completion_tokens"] == 3
    assert [t[1] for t in meta["output_token_logprobs"]] == replies[0]["output_ids"]
    assert meta["output_token_logprobs"][0][2] is None


def test_weight_update_bumps_version_and_changes_outputs(served, model_dirs):
    url, engine, _ = served
    greedy = [GenerateRequest("w", (5, 6, 7, 8), SamplingParams(temperature=0.0,
                                                               max_new_tokens=8))]

    async def go():
        async with SGLangEngine([url]) as client:
            [before] = await client.generate(greedy)
            version = await client.update_weights(model_dirs[1], "step-1")
            [after] = await client.generate(greedy)
            version_back = await client.update_weights(model_dirs[0])
            [back] = await client.generate(greedy)
            return before, version, after, version_back, back, client.sync_seconds
    before, version, after, version_back, back, seconds = asyncio.run(go())
    assert version == "step-1" and after.weight_version == "step-1"
    assert after.output_ids != before.output_ids
    other = hf.load_model(model_dirs[1])
    assert after.output_ids[0] == int(np.argmax(np.asarray(other(np.array([[5, 6, 7, 8]])))[0, -1]))
    assert version_back == "step-1+1" and back.output_ids == before.output_ids
    assert http_json(url, "/get_model_info")[1]["weight_version"] == "step-1+1"
    assert len(seconds) == 2 and all(s > 0 for s in seconds)


def test_server_killed_mid_request_is_retried_on_second_server(served, model_dirs):
    url_b, engine_b, _ = served
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "launch.serve", f"--model_dir={model_dirs[0]}", f"--port={port}",
         "--num_slots=4", "--max_len=128", "--decode_chunk=4"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url_a = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if http_json(url_a, "/get_model_info")[0] == 200:
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        # Paused in place, A holds the request without answering until it dies.
        assert http_json(url_a, "/pause_generation", {"mode": "in_place"})[0] == 200
        [request] = _requests(1)

        async def go():
            async with SGLangEngine([url_a, url_b], cooldown_s=60) as client:
                task = asyncio.create_task(client.generate([request]))
                await asyncio.sleep(1.0)
                assert client._in_flight[url_a] == 1
                proc.send_signal(signal.SIGKILL)
                [result] = await task
                return result, client._down_until[url_a] > time.monotonic()
        result, a_marked_down = asyncio.run(go())
    finally:
        proc.kill()
        proc.wait()
    [direct] = asyncio.run(engine_b.generate([GenerateRequest("direct", request.input_ids,
                                                              request.sampling_params)]))
    assert a_marked_down and result.output_ids == direct.output_ids


def _hung_server():
    """Accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    conns = []

    def accept():
        while True:
            try:
                conns.append(sock.accept()[0])
            except OSError:
                return
    threading.Thread(target=accept, daemon=True).start()
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_hung_server_times_out_and_the_next_server_answers(served):
    url, _, _ = served
    sock, hung = _hung_server()
    try:
        async def alone():
            async with SGLangEngine([hung], request_timeout_s=0.5, max_attempts=1,
                                    abort_timeout_s=0.2) as client:
                await client.generate(_requests(1))
        with pytest.raises(TimeoutError, match="timed out"):
            asyncio.run(alone())

        async def with_backup():
            async with SGLangEngine([hung, url], request_timeout_s=2, abort_timeout_s=0.2) as c:
                start = time.monotonic()
                [res] = await c.generate(_requests(1))
                return res, time.monotonic() - start, await c.check_health(timeout_s=0.5)
        res, seconds, health = asyncio.run(with_backup())
        assert len(res.output_ids) == 12 and 2 <= seconds < 30
        assert health == {hung: False, url: True}
    finally:
        sock.close()


def test_cancelled_request_is_aborted_on_the_server(served):
    url, _, server = served
    assert http_json(url, "/pause_generation", {"mode": "retract"})[0] == 200
    try:
        [request] = _requests(1)

        async def go():
            async with SGLangEngine([url]) as client:
                task = asyncio.create_task(client.generate([request]))
                while request.request_id not in server._in_flight:
                    await asyncio.sleep(0.01)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
        asyncio.run(go())
        deadline = time.monotonic() + 10
        while request.request_id in server._in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        assert request.request_id not in server._in_flight
    finally:
        http_json(url, "/continue_generation", {})


def test_pause_with_abort_mode_ends_requests_in_flight(served):
    url, _, server = served
    assert http_json(url, "/pause_generation", {"mode": "in_place"})[0] == 200
    replies = {}
    thread = threading.Thread(target=lambda: replies.update(r=http_json(url, "/generate", {
        "input_ids": [5, 6], "rid": "held", "sampling_params": {"max_new_tokens": 4}})))
    thread.start()
    while "held" not in server._in_flight:
        time.sleep(0.01)
    assert http_json(url, "/pause_generation", {"mode": "abort"})[0] == 200
    thread.join(timeout=30)
    http_json(url, "/continue_generation", {})
    status, reply = replies["r"]
    assert status == 200 and reply["meta_info"]["finish_reason"]["type"] == "abort"
    assert http_json(url, "/pause_generation", {"mode": "bogus"})[0] == 400


def test_native_control_endpoints(served):
    url, _, _ = served
    assert http_json(url, "/health")[0] == 200 and http_json(url, "/health_generate")[0] == 200
    assert http_json(url, "/flush_cache", {})[0] == 200
    info = http_json(url, "/get_model_info")[1]
    assert set(info) == {"model_path", "tokenizer_path", "is_generation",
                         "preferred_sampling_params", "weight_version"}
    assert info["tokenizer_path"] is None and info["is_generation"] is True
    status, err = http_json(url, "/update_weights_from_disk", {"model_path": "/no/such/dir"})
    assert status == 400 and err["success"] is False
    # Token ids only, as with --skip-tokenizer-init.
    status, err = http_json(url, "/generate", {"text": "hello"})
    assert status == 400 and "input_ids" in err["message"]
    status, err = http_json(url, "/v1/chat/completions", {"messages": [{"role": "user",
                                                                    "content": "hi"}]})
    assert status == 400 and "tokenizer" in err["message"] and err["object"] == "error"


def test_openai_chat_completions(chat_model_dir):
    tokenizer = tokenizer_lib.load_tokenizer(chat_model_dir)
    engine = EmbeddedEngine.from_dir(chat_model_dir, tokenizer=tokenizer, num_slots=2,
                                     max_len=128, decode_chunk=4)
    try:
        with serve_in_thread(SGLangServer(engine, chat_model_dir, tokenizer)) as url:
            messages = [{"role": "user", "content": "Say hi."}]
            status, reply = http_json(url, "/v1/chat/completions", {
                "model": "m", "messages": messages, "max_tokens": 5, "temperature": 0,
                "logprobs": True})
            status_text, native = http_json(url, "/generate", {
                "text": tokenizer.apply_chat_template(messages, tokenize=False,
                                                      add_generation_prompt=True),
                "sampling_params": {"max_new_tokens": 5, "temperature": 0}})
    finally:
        engine.close()
    assert status == 200 and reply["object"] == "chat.completion"
    choice = reply["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] in ("stop",
                                                                                    "length")
    prompt_ids = tokenizer_lib.chat_token_ids(tokenizer, messages)
    assert reply["usage"]["prompt_tokens"] == len(prompt_ids)
    assert reply["usage"]["completion_tokens"] == len(choice["logprobs"]["content"]) <= 5
    assert status_text == 200 and native["meta_info"]["prompt_tokens"] == len(prompt_ids)
    assert choice["message"]["content"] == native["text"]


class _HeldEngine:
    """The real embedded engine, its generate held until `release` is set: a request stays
    'running' for as long as a test needs (nothing else here can pin a tiny model's decode)."""

    def __init__(self, engine):
        self.engine, self.release = engine, threading.Event()

    @property
    def weight_version(self):
        return self.engine.weight_version

    async def generate(self, requests):
        await asyncio.get_running_loop().run_in_executor(None, self.release.wait)
        return await self.engine.generate(requests)

    async def update_weights(self, weights, version=None):
        return await self.engine.update_weights(weights, version)

    async def abort(self, request_id):
        await self.engine.abort(request_id)


def test_server_refuses_what_sglang_refuses(served):
    """SGLang 0.5.23's contract gate: an unknown sampling key is a 400 with serde's text; a rid
    used twice in one batch is refused; /model_info is served beside the deprecated name."""
    url, _, _ = served
    status, err = http_json(url, "/generate", {"input_ids": [5, 6], "sampling_params": {
        "max_new_tokens": 2, "temprature": 0.5}})
    assert status == 400 and set(err) == {"error"}
    assert err["error"].startswith("unknown field `temprature`, expected one of "
                                   "`max_new_tokens`, `stop`, `stop_token_ids`")
    status, err = http_json(url, "/generate", {"input_ids": [[5], [6]], "rid": ["a", "a"]})
    assert status == 400 and "Duplicate request ID" in err["message"]
    assert http_json(url, "/model_info") == http_json(url, "/get_model_info")


def test_health_is_503_while_paused_and_flush_waits_for_idleness(model_dirs):
    held = _HeldEngine(EmbeddedEngine.from_dir(model_dirs[0], **ENGINE_ARGS))
    server = SGLangServer(held, model_dirs[0])
    try:
        with serve_in_thread(server) as url:
            assert http_json(url, "/pause_generation", {"mode": "in_place"})[0] == 200
            assert http_json(url, "/health")[0] == 503 and http_json(url, "/health_generate")[0] == 503
            assert http_json(url, "/flush_cache", {})[0] == 200  # waiting while paused: idle
            http_json(url, "/continue_generation", {})
            replies = {}
            thread = threading.Thread(target=lambda: replies.update(r=http_json(url, "/generate", {
                "input_ids": [5, 6], "rid": "busy", "sampling_params": {"max_new_tokens": 2}})))
            thread.start()
            while server._in_flight.get("busy") != "running":
                time.sleep(0.01)
            status, text = http_json(url, "/flush_cache", {})
            assert (status, text) == (400, "Flush cache failed.\n")
            assert http_json(url, "/flush_cache?timeout=0.2", {}) == (
                400, "Timed out waiting for idle state.")
            threading.Timer(0.3, held.release.set).start()
            status, text = http_json(url, "/flush_cache?timeout=30", {})
            assert status == 200 and text.startswith("Cache flushed.")
            thread.join(timeout=30)
            assert replies["r"][0] == 200 and http_json(url, "/health")[0] == 200
    finally:
        held.release.set()
        held.engine.close()


def test_generate_with_n_samples_and_streaming(served):
    url, _, _ = served
    params = {"max_new_tokens": 4, "temperature": 0}
    status, single = http_json(url, "/generate", {"input_ids": [5, 6, 7], "sampling_params": params})
    status_n, many = http_json(url, "/generate", {"input_ids": [5, 6, 7],
                                              "sampling_params": {**params, "n": 3}})
    assert status == status_n == 200 and isinstance(many, list) and len(many) == 3
    assert len({m["meta_info"]["id"] for m in many}) == 3
    assert all(m["output_ids"] == single["output_ids"] for m in many)  # greedy: equal
    # Two prompts x n=2: prompt-major, as SGLang orders parallel samples.
    _, grid = http_json(url, "/generate", {"input_ids": [[5, 6, 7], [9, 8]],
                                       "sampling_params": {**params, "n": 2}})
    assert [g["output_ids"] == single["output_ids"] for g in grid] == [True, True, False, False]
    # stream=true: server-sent events, each request's output so far after each decode chunk
    # (finish_reason null), its final object, then [DONE].
    longer = {**params, "max_new_tokens": 10}
    _, whole = http_json(url, "/generate", {"input_ids": [[5, 6, 7], [9, 8]],
                                            "sampling_params": longer})
    req = urllib.request.Request(url + "/generate", data=json.dumps({
        "input_ids": [[5, 6, 7], [9, 8]], "stream": True, "sampling_params": longer}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        events = [line[len("data: "):] for line in resp.read().decode().split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    for index in (0, 1):
        mine = [c for c in chunks if c["index"] == index]
        assert len(mine) >= 3 and all(c["meta_info"]["finish_reason"] is None
                                      for c in mine[:-1])
        assert mine[-1]["meta_info"]["finish_reason"]["type"] == "length"
        assert mine[-1]["output_ids"] == whole[index]["output_ids"]
        grows = [len(c["output_ids"]) for c in mine]
        assert grows == sorted(grows) and grows[-1] == 10  # cumulative, as SGLang's default
        assert all(whole[index]["output_ids"][:len(c["output_ids"])] == c["output_ids"]
                   for c in mine)


def test_api_key_guards_every_endpoint_but_health(served, model_dirs):
    _, engine, _ = served
    server = SGLangServer(engine, model_dirs[0], api_key="s3cret")
    with serve_in_thread(server) as url:
        assert http_json(url, "/health")[0] == 200
        assert http_json(url, "/model_info") == (401, {"error": "Unauthorized"})
        assert http_json(url, "/generate", {"input_ids": [5]})[0] == 401

        async def go(key):
            async with SGLangEngine([url], api_key=key) as client:
                return await client.generate(_requests(1, max_new_tokens=2))
        assert len(asyncio.run(go("s3cret"))[0].output_ids) == 2
        with pytest.raises(Exception, match="401"):
            asyncio.run(go("wrong"))


def test_openai_client_n_and_stream(chat_model_dir):
    """The official `openai` package as SGLang's users call it: n choices, stream=True with
    usage, against our server with an api key."""
    tokenizer = tokenizer_lib.load_tokenizer(chat_model_dir)
    engine = EmbeddedEngine.from_dir(chat_model_dir, tokenizer=tokenizer, num_slots=4,
                                     max_len=128, decode_chunk=4)
    try:
        with serve_in_thread(SGLangServer(engine, chat_model_dir, tokenizer,
                                          api_key="k")) as url:
            client = openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0)
            messages = [{"role": "user", "content": "Say hi."}]
            whole = client.chat.completions.create(model="m", messages=messages, max_tokens=5,
                                                   temperature=0, n=2)
            stream = client.chat.completions.create(
                model="m", messages=messages, max_tokens=5, temperature=0, stream=True,
                stream_options={"include_usage": True})
            chunks = list(stream)
            with pytest.raises(openai.AuthenticationError):
                openai.OpenAI(base_url=url + "/v1", api_key="nope", max_retries=0
                              ).chat.completions.create(model="m", messages=messages)
    finally:
        engine.close()
    assert [c.index for c in whole.choices] == [0, 1]
    text = whole.choices[0].message.content
    assert whole.choices[1].message.content == text  # greedy
    streamed = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(streamed) == text and sum(bool(piece) for piece in streamed) >= 2
    finish = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finish[-1] in ("stop", "length")
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens // 2


def test_launch_serve_off_loopback_needs_an_api_key(model_dirs):
    done = subprocess.run([sys.executable, "-m", "launch.serve", f"--model_dir={model_dirs[0]}",
                           "--host=0.0.0.0"], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "SANDMLE_SERVE_API_KEY": ""})
    assert done.returncode == 2
    assert "is not loopback: give --api_key" in done.stdout + done.stderr


def test_a_retry_sends_a_fresh_rid():
    """SGLang refuses a rid still in flight (400 "Duplicate request ID"), which a first attempt
    that timed out or died may be; each retry names itself afresh and the result keeps the
    caller's rid. The server is a recording stand-in that fails the first attempt with a 503."""
    seen = []

    def respond(path, body):
        seen.append(body["rid"])
        if len(seen) == 1:
            return 503, {"error": "overloaded"}
        return 200, {"output_ids": [7], "meta_info": {
            "id": body["rid"], "finish_reason": {"type": "length", "length": 1},
            "prompt_tokens": 2, "weight_version": "0", "output_token_logprobs": [[-0.5, 7, None]]}}

    with json_endpoint(respond) as url:
        async def go():
            async with SGLangEngine([url], max_attempts=2, cooldown_s=0.0) as client:
                return await client.generate([GenerateRequest("mine", (1, 2), SamplingParams())])
        [result] = asyncio.run(go())
    assert seen == ["mine", "mine.1"] and result.request_id == "mine"


def test_close_engine_closes_the_sglang_clients_session(served):
    """The trainer and launch.evaluate close their engine with factory.close_engine; for the
    SGLang client that is a coroutine, which used to be called and never awaited."""
    url, _, _ = served

    async def go():
        client = SGLangEngine([url])
        await client.generate(_requests(1, max_new_tokens=1))
        session = client._session
        await factory.close_engine(client)
        return session.closed
    assert asyncio.run(go())
