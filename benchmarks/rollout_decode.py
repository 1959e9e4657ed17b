"""Embedded-engine generation throughput vs transformers `generate`, and weight-update seconds.

    python benchmarks/rollout_decode.py                 # CPU: tiny model, ours vs transformers
    python benchmarks/rollout_decode.py --mode=gpu      # accelerator: Qwen3-0.6B shape, bf16

CPU mode builds one random tiny Qwen3 with transformers, saves it, and loads the same weights
into our engine. Both generate greedily for the same batch of prompts with no EOS, so both emit
exactly batch * new_tokens tokens; tokens/s counts prefill + decode wall time after a warm-up
(compilation excluded for JAX, the first call excluded for torch). It also times weight updates:
an in-memory swap of the learner's params and a reload from an HF directory, per model size, and
the same reload through our SGLang-protocol server (pause -> update_weights_from_disk ->
continue), which is what a trainer pays against SGLang servers.
GPU mode: a random Qwen3-0.6B-shaped model in bf16, batch 64, ours vs transformers on the same
accelerator and weights; prints the device name.
"""

import argparse
import asyncio
import json
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sandmle_jax.models import hf
from sandmle_jax.models.qwen3 import Qwen3, Qwen3Config
from sandmle_jax.parallel import host_memory
from sandmle_jax.rollout.embedded import EmbeddedEngine
from sandmle_jax.rollout.engine import GenerateRequest, SamplingParams
from sandmle_jax.rollout.server import SGLangServer, serve_in_thread
from sandmle_jax.rollout.sglang_client import SGLangEngine
from timing import best_time
import run_facts

CPU_SHAPE = dict(vocab_size=4096, hidden_size=128, intermediate_size=384, num_hidden_layers=4,
                 num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                 max_position_embeddings=1024)
SIZES = {  # for weight-update timing on CPU
    "tiny": CPU_SHAPE,
    "small": dict(vocab_size=32768, hidden_size=512, intermediate_size=1536,
                        num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=4,
                        head_dim=64, max_position_embeddings=1024),
}


def _prompts(batch: int, prompt_len: int, vocab: int, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(4, vocab, prompt_len).tolist() for _ in range(batch)]


def _requests(prompts, new_tokens, tag):
    params = SamplingParams(temperature=0.0, max_new_tokens=new_tokens)
    return [GenerateRequest(f"{tag}{i}", tuple(p), params) for i, p in enumerate(prompts)]


def _engine_run(engine, prompts, new_tokens):
    tag = f"{time.monotonic_ns()}-"
    results = asyncio.run(engine.generate(_requests(prompts, new_tokens, tag)))
    assert all(len(x.output_ids) == new_tokens for x in results)


def cpu_throughput(batch: int, prompt_len: int, new_tokens: int, repeats: int) -> dict:
    """Ours and transformers timed in alternation (the machine is shared, load drifts); torch
    gets its better thread count (1 or all cores: oversubscribed cores punish spinning threads)."""
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.Qwen3Config(**CPU_SHAPE, tie_word_embeddings=False,
                                      eos_token_id=None, bos_token_id=None, pad_token_id=0)
    reference = transformers.Qwen3ForCausalLM(config).eval()
    prompts = _prompts(batch, prompt_len, CPU_SHAPE["vocab_size"])
    ids = torch.tensor(prompts)
    kwargs = dict(do_sample=False, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                  pad_token_id=0, attention_mask=torch.ones_like(ids))
    thread_counts = sorted({1, torch.get_num_threads()})

    def theirs(threads):
        torch.set_num_threads(threads)
        with torch.no_grad():
            out = reference.generate(ids, **kwargs)
        assert out.shape == (batch, prompt_len + new_tokens)

    with tempfile.TemporaryDirectory() as model_dir:
        reference.save_pretrained(model_dir)
        engine = EmbeddedEngine.from_dir(model_dir, num_slots=batch,
                                         max_len=prompt_len + new_tokens, decode_chunk=16,
                                         eos_token_ids=())
    ours_s, theirs_s = float("inf"), {t: float("inf") for t in thread_counts}
    _engine_run(engine, prompts, new_tokens)  # compiles
    for t in thread_counts:
        theirs(t)  # warm-up
    for _ in range(repeats):
        ours_s = min(ours_s, best_time(lambda: _engine_run(engine, prompts, new_tokens), 1))
        for t in thread_counts:
            theirs_s[t] = min(theirs_s[t], best_time(lambda: theirs(t), 1))
    engine.close()
    best_threads = min(theirs_s, key=theirs_s.get)
    tokens = batch * new_tokens
    return {"batch": batch, "prompt_len": prompt_len, "new_tokens": new_tokens,
            "ours_tokens_per_s": tokens / ours_s,
            "transformers_tokens_per_s": tokens / theirs_s[best_threads],
            "transformers_tokens_per_s_by_threads": {t: tokens / s for t, s in theirs_s.items()},
            "ratio": theirs_s[best_threads] / ours_s}


def weight_updates(repeats: int) -> list[dict]:
    rows = []
    for name, shape in SIZES.items():
        config = Qwen3Config(**shape)
        params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(
            nnx.state(Qwen3(config, rngs=nnx.Rngs(0)))))
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            hf.save_model(Qwen3(config, rngs=nnx.Rngs(0)), a)
            hf.save_model(Qwen3(config, rngs=nnx.Rngs(1)), b)
            engine = EmbeddedEngine.from_dir(a, num_slots=2, max_len=64, decode_chunk=4)
            learner = hf.load_model(b)
            in_memory = best_time(lambda: asyncio.run(engine.update_weights(learner)), repeats)
            from_disk = best_time(lambda: asyncio.run(engine.update_weights(b)), repeats)
            with serve_in_thread(SGLangServer(engine, a)) as url:
                async def sync():
                    async with SGLangEngine([url]) as client:
                        for _ in range(repeats):
                            await client.update_weights(a)
                        return min(client.sync_seconds)
                over_http = asyncio.run(sync())
            engine.close()
        rows.append({"model": name, "params": params, "in_memory_s": in_memory,
                     "from_disk_s": from_disk, "http_sync_s": over_http})
    return rows


def gpu_throughput(batch: int, prompt_len: int, new_tokens: int, repeats: int,
                   smoke: bool) -> dict:
    """Ours vs transformers `generate` (torch, bf16, SDPA attention) on the same accelerator with
    the same weights: transformers runs first and frees its memory before JAX allocates."""
    import torch
    import transformers

    device = jax.devices()[0]
    shape = Qwen3Config(**CPU_SHAPE) if smoke else Qwen3Config.qwen3_0_6b()
    torch_device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    config = transformers.AutoConfig.for_model(**(shape.to_hf_dict("bfloat16") | dict(
        eos_token_id=None, bos_token_id=None, pad_token_id=0)))
    reference = transformers.Qwen3ForCausalLM(config).to(torch.bfloat16).to(torch_device).eval()
    prompts = _prompts(batch, prompt_len, shape.vocab_size)
    ids = torch.tensor(prompts, device=torch_device)

    def theirs(tokens):
        with torch.no_grad():
            out = reference.generate(ids, do_sample=False, max_new_tokens=tokens,
                                     min_new_tokens=tokens, pad_token_id=0,
                                     attention_mask=torch.ones_like(ids))
        if torch_device == "cuda":
            torch.cuda.synchronize()
        assert out.shape == (batch, prompt_len + tokens)

    theirs(8)  # warm-up
    theirs_s = best_time(lambda: theirs(new_tokens), repeats)
    with tempfile.TemporaryDirectory() as model_dir:
        reference.save_pretrained(model_dir)
        del reference
        if torch_device == "cuda":
            torch.cuda.empty_cache()
        engine = EmbeddedEngine.from_dir(model_dir, param_dtype=jnp.bfloat16, num_slots=batch,
                                         max_len=prompt_len + new_tokens, decode_chunk=16,
                                         eos_token_ids=())
        learner = hf.load_model(model_dir, param_dtype=jnp.bfloat16)
    start = time.perf_counter()
    _engine_run(engine, prompts, new_tokens)  # compiles
    compile_s = time.perf_counter() - start
    ours_s = best_time(lambda: _engine_run(engine, prompts, new_tokens), repeats)
    swap = best_time(lambda: asyncio.run(engine.update_weights(learner)), 1)
    engine.close()
    tokens = batch * new_tokens
    return {"device": f"{device.platform}:{device.device_kind}",
            "model": "tiny (smoke)" if smoke else "Qwen3-0.6B shape, bf16",
            "batch": batch, "prompt_len": prompt_len, "new_tokens": new_tokens,
            "ours_tokens_per_s": tokens / ours_s,
            "transformers_tokens_per_s": tokens / theirs_s,
            "transformers": f"{transformers.__version__}, torch {torch.__version__} on "
                            f"{torch_device}, sdpa",
            "ratio": theirs_s / ours_s, "first_call_s": compile_s,
            "in_memory_weight_swap_s": swap}


def main():
    print(run_facts.header())
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--batch", type=int, default=None, help="cpu: 8, gpu: 64")
    parser.add_argument("--prompt_len", type=int, default=None, help="cpu: 32, gpu: 128")
    parser.add_argument("--new_tokens", type=int, default=None, help="cpu: 128, gpu: 512")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true",
                        help="gpu mode with the tiny CPU model: checks the script anywhere")
    args = parser.parse_args()
    host_memory.keep_freed_memory_on_cpu()
    if args.mode == "cpu":
        result = cpu_throughput(args.batch or 8, args.prompt_len or 32, args.new_tokens or 128,
                                args.repeats)
        print(f"CPU generate, batch {result['batch']}, {result['prompt_len']}+"
              f"{result['new_tokens']} tokens: ours {result['ours_tokens_per_s']:.0f} tok/s, "
              f"transformers {result['transformers_tokens_per_s']:.0f} tok/s, "
              f"ratio {result['ratio']:.2f}x")
        updates = weight_updates(args.repeats)
        for row in updates:
            print(f"weight update, {row['model']} ({row['params'] / 1e6:.1f}M params): "
                  f"in-memory {row['in_memory_s']:.4f}s, "
                  f"from HF dir {row['from_disk_s']:.3f}s, over HTTP {row['http_sync_s']:.3f}s")
        print(json.dumps({"throughput": result, "weight_updates": updates}, indent=2))
    else:
        result = gpu_throughput(args.batch or 64, args.prompt_len or 128, args.new_tokens or 512,
                                args.repeats, args.smoke)
        print(f"{result['device']}: {result['model']}, batch {result['batch']}, "
              f"{result['prompt_len']}+{result['new_tokens']} tokens: ours "
              f"{result['ours_tokens_per_s']:.0f} tok/s, transformers "
              f"{result['transformers_tokens_per_s']:.0f} tok/s, ratio {result['ratio']:.2f}x; "
              f"in-memory weight swap {result['in_memory_weight_swap_s']:.4f}s")
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
