"""Our SGLang client against our SGLang-protocol server over real HTTP on loopback."""

import asyncio
import socket
import threading

import pytest

from sandmle_jax.rollout.engine import FinishReason, GenerateRequest, GenerateResult, SamplingParams
from sandmle_jax.rollout.server import SGLangServer, serve_in_thread
from sandmle_jax.rollout.sglang_client import SGLangEngine


class CountingEngine:
    """Deterministic stand-in: token i = (sum(prompt) + i + version) % 50, slow on purpose."""

    def __init__(self, delay_s=0.0):
        self._version = "0"
        self.delay_s = delay_s
        self.aborted: set[str] = set()

    @property
    def weight_version(self):
        return self._version

    async def generate(self, requests):
        return list(await asyncio.gather(*(self._one(r) for r in requests)))

    async def _one(self, r):
        out = []
        for i in range(r.sampling_params.max_new_tokens):
            if r.request_id in self.aborted:
                return GenerateResult(r.request_id, tuple(out), tuple(-0.5 for _ in out),
                                      FinishReason("abort", message="aborted"), self._version,
                                      len(r.input_ids))
            await asyncio.sleep(self.delay_s)
            out.append((sum(r.input_ids) + i + int(self._version)) % 50)
        return GenerateResult(r.request_id, tuple(out), tuple(-0.5 for _ in out),
                              FinishReason("length", length=len(out)), self._version,
                              len(r.input_ids))

    async def update_weights(self, weights, version=None):
        self._version = version or str(int(self._version) + 1)
        return self._version

    async def abort(self, request_id):
        self.aborted.add(request_id)


def _run(coro):
    return asyncio.run(coro)


def test_generate_with_logprobs_and_weight_update():
    engine = CountingEngine()
    with serve_in_thread(SGLangServer(engine, "dummy")) as url:
        async def go():
            async with SGLangEngine([url]) as client:
                req = GenerateRequest("a", (1, 2), SamplingParams(max_new_tokens=3))
                [before] = await client.generate([req])
                version = await client.update_weights("/some/dir", "5")
                [after] = await client.generate([GenerateRequest("b", (1, 2),
                                                                 SamplingParams(max_new_tokens=3))])
                health = await client.check_health()
                return before, version, after, health, client
        before, version, after, health, client = _run(go())
    assert before.output_ids == (3, 4, 5) and before.output_logprobs == (-0.5,) * 3
    assert before.weight_version == "0" and before.finish_reason.type == "length"
    assert version == "5" and after.weight_version == "5" and after.output_ids == (8, 9, 10)
    assert health == {url: True} and len(client.sync_seconds) == 1


def test_server_killed_mid_request_is_retried_on_second_server():
    slow, fast = CountingEngine(delay_s=0.05), CountingEngine()
    with serve_in_thread(SGLangServer(fast, "fast")) as good_url:
        dying = serve_in_thread(SGLangServer(slow, "slow"))
        bad_url = dying.__enter__()

        async def go():
            async with SGLangEngine([bad_url, good_url], cooldown_s=60) as client:
                task = asyncio.create_task(client.generate(
                    [GenerateRequest("k", (1,), SamplingParams(max_new_tokens=40))]))
                await asyncio.sleep(0.5)
                await asyncio.to_thread(dying.__exit__, None, None, None)
                return await task
        [res] = _run(go())
    assert res.output_ids == tuple((1 + i) % 50 for i in range(40))


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


def test_hung_server_times_out():
    sock, url = _hung_server()
    try:
        async def go():
            async with SGLangEngine([url], request_timeout_s=0.5, max_attempts=1,
                                    abort_timeout_s=0.2) as client:
                await client.generate([GenerateRequest("h", (1,))])
        with pytest.raises(TimeoutError):
            _run(go())
    finally:
        sock.close()
