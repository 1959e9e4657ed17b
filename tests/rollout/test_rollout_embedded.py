"""The embedded engine on a random tiny Qwen3: parity with transformers and with a full forward,
continuous batching, stops, determinism, abort, weight swap, no recompiles."""

import asyncio
import time

import jax
import numpy as np
import pytest
import torch
import transformers
from flax import nnx

from sandmle_jax.models import hf
from sandmle_jax.models.qwen3 import Qwen3
from sandmle_jax.rollout.embedded import EmbeddedEngine
from sandmle_jax.rollout.engine import GenerateRequest, GenerateResult, SamplingParams

EOS = 3
# One shape for most engines here: compiled functions are shared by engines of equal shapes.
ENGINE_ARGS = dict(num_slots=3, max_len=96, decode_chunk=4)
PROMPTS = [(5, 17, 42), (7, 8, 9, 10, 11, 12, 13), (99,), tuple(range(20, 45))]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A random tiny HF Qwen3 (large init so greedy paths are not constant), saved to disk."""
    torch.manual_seed(0)
    config = transformers.Qwen3Config(
        vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
        tie_word_embeddings=False, initializer_range=0.4, eos_token_id=EOS, bos_token_id=None,
        pad_token_id=0)
    model = transformers.Qwen3ForCausalLM(config).eval()
    out = tmp_path_factory.mktemp("tiny_qwen3")
    model.save_pretrained(out)
    return str(out)


@pytest.fixture(scope="module")
def engine(model_dir):
    eng = EmbeddedEngine.from_dir(model_dir, seed=0, **ENGINE_ARGS)
    yield eng
    eng.close()


def run(engine, requests):
    return asyncio.run(engine.generate(requests))


def test_greedy_equals_transformers_generate(engine, model_dir):
    reference = transformers.Qwen3ForCausalLM.from_pretrained(model_dir).eval()
    requests = [GenerateRequest(f"g{i}", p, SamplingParams(temperature=0.0, max_new_tokens=24))
                for i, p in enumerate(PROMPTS)]
    results = run(engine, requests)
    for prompt, res in zip(PROMPTS, results):
        with torch.no_grad():
            out = reference.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=24,
                                     eos_token_id=EOS, pad_token_id=0)
        expected = out[0, len(prompt):].tolist()
        assert list(res.output_ids) == expected
        if expected[-1] == EOS:
            assert res.finish_reason.type == "stop" and res.finish_reason.matched == EOS
        else:
            assert res.finish_reason.type == "length" and res.finish_reason.length == 24


@pytest.mark.parametrize("params", [
    SamplingParams(temperature=0.0, max_new_tokens=12),
    SamplingParams(temperature=0.7, top_k=5, max_new_tokens=12, seed=1),
    SamplingParams(temperature=1.3, top_p=0.8, max_new_tokens=12, seed=2)])
def test_logprobs_equal_full_forward(engine, model_dir, params):
    model = hf.load_model(model_dir)
    # Right padding to one length leaves earlier positions' causal logits unchanged: one compile.
    forward = nnx.jit(lambda m, tokens: m(tokens))
    requests = [GenerateRequest(f"l{i}", p, params) for i, p in enumerate(PROMPTS)]
    for prompt, res in zip(PROMPTS, run(engine, requests)):
        tokens = np.zeros((1, 64), np.int32)
        tokens[0, :len(prompt) + len(res.output_ids)] = list(prompt) + list(res.output_ids)
        logits = np.asarray(forward(model, tokens), np.float64)[0]
        scaled = logits / (params.temperature or 1.0)
        logp = scaled - np.log(np.exp(scaled - scaled.max(-1, keepdims=True)).sum(-1,
                                                                                 keepdims=True))
        logp -= scaled.max(-1, keepdims=True)
        n = len(prompt)
        expected = [logp[n - 1 + j, t] for j, t in enumerate(res.output_ids)]
        np.testing.assert_allclose(res.output_logprobs, expected, atol=1e-5, rtol=0)
        if params.top_k > 0:  # every sampled token is among the top-k of its position
            top = np.argsort(-logits[n - 1:n - 1 + len(res.output_ids)], axis=-1)[:, :params.top_k]
            assert all(t in row for t, row in zip(res.output_ids, top))


def test_chunked_prefill_matches_whole_prompt_prefill(engine, model_dir):
    """8-token prefill pieces (the long prompt spans 4) give the same tokens and log-probs."""
    chunked = EmbeddedEngine.from_dir(model_dir, prefill_tokens=8, min_prefill_len=8,
                                      **ENGINE_ARGS)
    requests = [GenerateRequest(f"p{i}", p, SamplingParams(temperature=0.0, max_new_tokens=10))
                for i, p in enumerate(PROMPTS)]
    try:
        pieces = run(chunked, requests)
    finally:
        chunked.close()
    for a, b in zip(pieces, run(engine, requests)):
        assert a.output_ids == b.output_ids
        np.testing.assert_allclose(a.output_logprobs, b.output_logprobs, atol=1e-5, rtol=0)


def test_continuous_batching_matches_solo_runs_and_is_deterministic(engine):
    """7 requests through 3 slots: slots are reused, and each result equals running it alone."""
    requests = [GenerateRequest(f"c{i}", PROMPTS[i % 4],
                                SamplingParams(temperature=1.0, max_new_tokens=4 + 3 * i, seed=i))
                for i in range(7)]
    together = run(engine, requests)
    alone = [run(engine, [r])[0] for r in requests]
    assert [r.output_ids for r in together] == [r.output_ids for r in alone]
    assert [len(r.output_ids) for r in together if r.finish_reason.type == "length"] == \
        [4 + 3 * i for i, r in enumerate(together) if r.finish_reason.type == "length"]
    seeded = [run(engine, [GenerateRequest(f"d{seed}", PROMPTS[3], SamplingParams(
        temperature=1.0, max_new_tokens=13, seed=seed))])[0] for seed in (3, 99)]
    assert seeded[0].output_ids == together[3].output_ids
    assert seeded[0].output_ids != seeded[1].output_ids


def test_identical_prompts_share_one_prefill_and_sample_apart(engine):
    """Three requests on one prompt (n samples) admitted together prefill it once; each still
    samples with its own key, and each result equals running it alone."""
    requests = [GenerateRequest(f"n{seed}", PROMPTS[3], SamplingParams(
        temperature=1.0, max_new_tokens=6, seed=seed)) for seed in (11, 12, 13)]
    before = engine.prefill_rows
    together = run(engine, requests)
    assert engine.prefill_rows - before == 1
    alone = [run(engine, [r])[0] for r in requests]
    assert [r.output_ids for r in together] == [r.output_ids for r in alone]
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a.output_logprobs, b.output_logprobs, atol=1e-5, rtol=0)
    assert len({r.output_ids for r in together}) > 1  # different keys, different samples


def test_stream_grows_by_decode_chunks_and_ends_with_the_result(engine):
    request = GenerateRequest("st", PROMPTS[1], SamplingParams(temperature=1.0, seed=4,
                                                               max_new_tokens=11))

    async def collect():
        return [item async for item in engine.stream(request)]
    items = asyncio.run(collect())
    [whole] = run(engine, [GenerateRequest("st2", request.input_ids, request.sampling_params)])
    *partial, final = items
    assert final.output_ids == whole.output_ids and final.finish_reason.type == "length"
    lengths = [len(ids) for ids, _ in partial]
    assert lengths[0] == 1 and lengths == sorted(lengths) and len(partial) >= 3
    for ids, logprobs in partial:
        assert ids == whole.output_ids[:len(ids)] and len(logprobs) == len(ids)


def test_a_stream_whose_loop_was_busy_still_yields_every_chunk_before_the_result(engine):
    """The event loop is blocked (as by a busy server) until the engine has finished the request:
    the chunks queued before the result still come, in order (CI once saw none of them)."""
    request = GenerateRequest("busy", PROMPTS[1], SamplingParams(temperature=1.0, seed=4,
                                                                 max_new_tokens=11))

    async def collect_slowly():
        stream = engine.stream(request)
        items = [await stream.__anext__()]
        deadline = time.monotonic() + 60
        while any(slot is not None for slot in engine._slots) and time.monotonic() < deadline:
            time.sleep(0.05)  # blocks the loop on purpose
        return items + [item async for item in stream]
    *partial, final = asyncio.run(collect_slowly())
    assert isinstance(final, GenerateResult) and len(final.output_ids) == 11
    lengths = [len(ids) for ids, _ in partial]
    assert lengths == sorted(set(lengths)) and len(partial) >= 3, lengths
    for ids, _ in partial:
        assert ids == final.output_ids[:len(ids)]


def test_leaving_a_stream_early_aborts_its_request(engine):
    request = GenerateRequest("st3", PROMPTS[1], SamplingParams(max_new_tokens=60, seed=1))

    async def first_only():
        stream = engine.stream(request)
        first = await stream.__anext__()
        await stream.aclose()
        return first
    assert len(asyncio.run(first_only())[0]) >= 1
    # The slot is free again: a full batch still fits.
    assert len(run(engine, [GenerateRequest(f"f{i}", (1, 2), SamplingParams(max_new_tokens=2))
                            for i in range(ENGINE_ARGS["num_slots"])])) == 3


def test_stop_token_id_and_max_new_tokens(engine):
    [free] = run(engine, [GenerateRequest("s0", PROMPTS[1], SamplingParams(temperature=0.0,
                                                                          max_new_tokens=10))])
    cut = [t for t in free.output_ids[2:] if t != EOS][0]
    first = free.output_ids.index(cut)
    [stopped] = run(engine, [GenerateRequest("s1", PROMPTS[1], SamplingParams(
        temperature=0.0, max_new_tokens=10, stop_token_ids=(cut,)))])
    assert stopped.output_ids == free.output_ids[:first + 1]
    assert stopped.finish_reason.type == "stop" and stopped.finish_reason.matched == cut
    [short] = run(engine, [GenerateRequest("s2", PROMPTS[1], SamplingParams(temperature=0.0,
                                                                           max_new_tokens=1))])
    assert short.output_ids == free.output_ids[:1]


class CharTokenizer:
    """Token t decodes to one letter, so stop strings are easy to place."""

    def decode(self, ids, **_):
        return "".join(chr(ord("a") + t % 26) for t in ids)


def test_stop_string(model_dir):
    eng = EmbeddedEngine.from_dir(model_dir, tokenizer=CharTokenizer(), eos_token_ids=(),
                                  **ENGINE_ARGS)
    try:
        [free] = run(eng, [GenerateRequest("t0", PROMPTS[0], SamplingParams(
            temperature=1.0, seed=5, max_new_tokens=12))])
        text = CharTokenizer().decode(free.output_ids)
        stop = text[5:7]
        [cut] = run(eng, [GenerateRequest("t1", PROMPTS[0], SamplingParams(
            temperature=1.0, seed=5, max_new_tokens=12, stop=(stop,)))])
        end = text.index(stop) + len(stop)
        assert cut.output_ids == free.output_ids[:end]
        assert cut.finish_reason.type == "stop" and cut.finish_reason.matched == stop
    finally:
        eng.close()


def test_no_recompiles_across_requests_of_one_bucket(engine):
    run(engine, [GenerateRequest("w", (1, 2, 3), SamplingParams(max_new_tokens=5, seed=0))])
    sizes = (engine._prefill._cache_size(), engine._decode._cache_size())
    for i, n in enumerate((2, 7, 11, 16)):
        run(engine, [GenerateRequest(f"n{i}", tuple(range(1, n + 1)),
                                     SamplingParams(max_new_tokens=3 + i, temperature=0.5))])
    assert (engine._prefill._cache_size(), engine._decode._cache_size()) == sizes


def test_abort_returns_partial_output(model_dir):
    eng = EmbeddedEngine.from_dir(model_dir, eos_token_ids=(), **ENGINE_ARGS)
    try:
        async def go():
            task = asyncio.create_task(eng.generate([GenerateRequest(
                "ab", PROMPTS[0], SamplingParams(temperature=1.0, max_new_tokens=90, seed=3))]))
            while not any(p is not None and len(p.output_ids) > 2 for p in eng._slots):
                await asyncio.sleep(0.001)
            await eng.abort("ab")
            return await task
        [res] = asyncio.run(go())
    finally:
        eng.close()
    assert res.finish_reason.type == "abort" and 2 < len(res.output_ids) < 90
    assert len(res.output_logprobs) == len(res.output_ids)


def test_cancelled_generate_frees_its_slot(model_dir):
    eng = EmbeddedEngine.from_dir(model_dir, num_slots=1, max_len=96, decode_chunk=1,
                                  eos_token_ids=())
    try:
        async def go():
            task = asyncio.create_task(eng.generate([GenerateRequest(
                "cx", PROMPTS[0], SamplingParams(temperature=1.0, max_new_tokens=90, seed=1))]))
            while eng._slots[0] is None:
                await asyncio.sleep(0.001)
            cancelled = eng._slots[0]
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The only slot must come free for the next request.
            [res] = await asyncio.wait_for(eng.generate([GenerateRequest(
                "next", PROMPTS[1], SamplingParams(temperature=0.0, max_new_tokens=3))]), 60)
            return res, len(cancelled.output_ids)
        res, cancelled_tokens = asyncio.run(go())
    finally:
        eng.close()
    assert len(res.output_ids) == 3 and res.finish_reason.type == "length"
    assert cancelled_tokens < 90  # aborted, not run to its end


def test_weight_swap_in_memory_and_from_disk(model_dir):
    eng = EmbeddedEngine.from_dir(model_dir, **ENGINE_ARGS)
    try:
        req = GenerateRequest("u", PROMPTS[1], SamplingParams(temperature=0.0, max_new_tokens=8))
        [before] = run(eng, [req])
        other = Qwen3(eng.config, rngs=nnx.Rngs(7))
        version = asyncio.run(eng.update_weights(other))
        [after] = run(eng, [req])
        assert version == "1" and after.weight_version == "1" and before.weight_version == "0"
        expected = int(np.argmax(np.asarray(other(np.array([list(PROMPTS[1])])))[0, -1]))
        assert after.output_ids[0] == expected and after.output_ids != before.output_ids
        # No copy when the arrays already sit where the engine's do.
        leaf = jax.tree.leaves(nnx.state(other))[0]
        assert jax.tree.leaves(eng._state)[0] is leaf
        asyncio.run(eng.update_weights(model_dir, version="back"))
        [again] = run(eng, [req])
        assert again.output_ids == before.output_ids and again.weight_version == "back"
    finally:
        eng.close()


def test_bad_requests_name_the_problem(engine):
    with pytest.raises(ValueError, match="max_len"):
        run(engine, [GenerateRequest("x", PROMPTS[0], SamplingParams(max_new_tokens=500))])
    with pytest.raises(ValueError, match="tokenizer"):
        run(engine, [GenerateRequest("y", PROMPTS[0], SamplingParams(max_new_tokens=4,
                                                                      stop=("a",)))])
    with pytest.raises(ValueError, match="vocabulary"):
        run(engine, [GenerateRequest("z", (1000,), SamplingParams(max_new_tokens=4))])
