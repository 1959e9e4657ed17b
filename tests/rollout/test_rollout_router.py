"""The real sglang-router (PyPI's Rust binary) in front of two `launch.serve` workers: generation
through it reaches both, a weight update reaches both, and an abort sent to the workers stops a
request that entered through the router (the router itself has no /abort_request)."""

import asyncio
import threading
import time

import pytest
from flax import nnx

from benchmarks import local_cluster
from benchmarks.local_cluster import http_json
from sandmle_jax.models import hf
from sandmle_jax.models.qwen3 import Qwen3, Qwen3Config
from sandmle_jax.rollout.engine import GenerateRequest, SamplingParams
from sandmle_jax.rollout.sglang_client import SGLangEngine


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two workers over one tiny model, and the router over both; yields URLs and model dirs."""
    root = tmp_path_factory.mktemp("router")
    dirs = []
    for seed in (0, 1):
        out = str(root / f"v{seed}")
        hf.save_model(Qwen3(Qwen3Config.tiny(initializer_range=0.4), rngs=nnx.Rngs(seed)), out)
        dirs.append(out)
    with local_cluster.router_over_workers(
            dirs[0], serve_args=("--num_slots=4", "--max_len=4096", "--decode_chunk=8"),
            router_args=("--policy", "round_robin")) as (url, workers):
        yield url, workers, dirs


def _request(rid, tokens=4):
    return GenerateRequest(rid, (5, 6, 7, 8), SamplingParams(temperature=0.0,
                                                              max_new_tokens=tokens))


def test_generation_through_the_router_reaches_both_workers(cluster):
    router, workers, _ = cluster

    async def go():
        async with SGLangEngine([router]) as client:
            return await client.generate([_request(f"r{i}") for i in range(8)])
    results = asyncio.run(go())
    assert len({r.output_ids for r in results}) == 1 and len(results[0].output_ids) == 4
    served = []
    for url in workers:  # each worker answered some: its health probe plus our requests
        status, direct = http_json(url, "/generate", {"input_ids": [5, 6, 7, 8], "sampling_params": {
            "temperature": 0.0, "max_new_tokens": 4}})
        served.append(direct["output_ids"])
    assert served[0] == served[1] == list(results[0].output_ids)


def test_weight_update_reaches_both_workers_behind_the_router(cluster):
    router, workers, dirs = cluster

    async def go():
        async with SGLangEngine([router], weight_sync_urls=workers) as client:
            before = await client.generate([_request("before")])
            await client.update_weights(dirs[1], "7")
            after = await client.generate([_request(f"after{i}") for i in range(4)])
            await client.update_weights(dirs[0], "8")
            return before, after
    [before], after = asyncio.run(go())
    assert all(r.weight_version == "7" for r in after)
    assert all(r.output_ids != before.output_ids for r in after)
    assert [http_json(url, "/model_info")[1]["weight_version"] for url in workers] == ["8", "8"]


def test_an_abort_stops_a_request_behind_the_router(cluster):
    """A long request enters through the router; the client's abort goes to the workers, and
    the request comes back early, finished as aborted."""
    router, workers, _ = cluster
    replies = {}
    body = {"input_ids": [5, 6, 7, 8], "rid": "long-one",
            "sampling_params": {"temperature": 0.0, "max_new_tokens": 4000}}
    thread = threading.Thread(target=lambda: replies.update(r=http_json(router, "/generate", body)))
    start = time.monotonic()
    thread.start()
    time.sleep(1.0)

    async def go():
        async with SGLangEngine([router], weight_sync_urls=workers) as client:
            await client.abort("long-one")
    asyncio.run(go())
    thread.join(timeout=120)
    status, reply = replies["r"]
    assert status == 200, reply
    assert reply["meta_info"]["finish_reason"]["type"] == "abort"
    assert len(reply["output_ids"]) < 4000 and time.monotonic() - start < 60
