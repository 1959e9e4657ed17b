"""launch.collect: a teacher's episodes become SFT data a student with another tokenizer learns
from (its NLL on held-out collected turns falls), resumably; the teacher is the scripted
reference agent or a model behind an OpenAI-compatible endpoint (our launch.serve, over HTTP,
with the official `openai` package as the client)."""

import asyncio
import json
import pathlib
import runpy
import subprocess
import sys

import numpy as np
import pytest
from benchmarks.local_cluster import free_port, wait_until_served
from conftest import write_tabular_task

from sandmle_jax.agent.chat import ChatFormat
from sandmle_jax.eval import cli
from sandmle_jax.models import hf, tokenizer as tokenizer_lib
from sandmle_jax.rl import (base_model, batching, collect, episodes, learner as learner_lib,
                            optim, sft, sft_data)
from sandmle_jax.tasks import task_set

ROOT = pathlib.Path(__file__).resolve().parents[2]
TASKS = 3


def _config(**agent):
    c = runpy.run_path(str(ROOT / "configs" / "tiny_cpu.py"))["get_config"]("smoke")
    c.agent.max_turns = agent.get("max_turns", 3)
    c.agent.max_new_tokens = agent.get("max_new_tokens", c.agent.max_new_tokens)
    return c


def _store(root):
    ids = [f"toy-{i}" for i in range(TASKS)]
    for i, task_id in enumerate(ids):
        write_tabular_task(root / "tasks" / task_id, seed=i, task_id=task_id)
    (root / "manifest.json").write_text(json.dumps({
        "tasks": [{"task_id": t, "path": f"tasks/{t}"} for t in ids],
        "train": ids[:2], "validation": ids[2:]}))
    return root


def _collect(store, out, keep="valid", **request):
    request = cli.EvalRequest(tasks=store, out=out, split=None, **request)
    return asyncio.run(collect.collect(_config(), request, keep))


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    root = tmp_path_factory.mktemp("collect")
    store = _store(root / "store")
    out = root / "data"
    return store, out, _collect(store, out, policy="reference", tier="linear", seeds=2)


def test_reference_episodes_become_conversations_with_provenance(collected):
    store, out, summary = collected
    assert summary | {"episodes": 6, "kept": 6, "failed": 0, "played_now": 6} == summary
    lines = sft_data.read_lines(out / sft_data.FILE)
    assert len(lines) == summary["rows"] == 6  # no pruning here: one sequence per episode
    assert {(r["provenance"]["task_id"], r["provenance"]["seed"]) for r in lines} == {
        (f"toy-{i}", s) for i in range(TASKS) for s in (0, 1)}
    first = lines[0]
    assert first["provenance"] | {"policy": "reference", "model": "reference:linear",
                                  "valid_submission": True, "sequence": 0} == first["provenance"]
    assert first["messages"][0]["role"] == "system"
    assert "LogisticRegression" in "".join(m["content"] for m in first["messages"]
                                           if m["role"] == "assistant")
    rows = sft_data.read_lines(out / collect.ROWS)
    assert all(len(r["ids"]) == len(r["loss_mask"]) and any(r["loss_mask"]) for r in rows)


def test_a_rerun_plays_only_what_is_missing_or_failed(collected, tmp_path):
    store, out, _ = collected
    copy = tmp_path / "data"
    copy.mkdir()
    ledger = sft_data.read_lines(out / collect.LEDGER)
    # The first episode failed (say the sandbox broke): recorded, not kept, played again.
    ledger[0] |= {"termination": "sandbox_error", "kept": False}
    sft_data.write_lines(copy / collect.LEDGER, ledger)
    sft_data.write_lines(copy / sft_data.FILE, [
        r for r in sft_data.read_lines(out / sft_data.FILE)
        if r["provenance"]["episode_id"] != ledger[0]["episode_id"]])
    summary = _collect(store, copy, policy="reference", tier="linear", seeds=2)
    assert summary | {"played_now": 1, "episodes": 6, "kept": 6, "failed": 0} == summary
    assert len(sft_data.read_lines(copy / collect.LEDGER)) == 7  # the failure stays recorded
    again = _collect(store, copy, policy="reference", tier="linear", seeds=2)
    assert again["played_now"] == 0 and again["rows"] == 6


def test_the_filter_decides_what_is_kept(tmp_path):
    store = _store(tmp_path / "store")
    summary = _collect(store, tmp_path / "data", keep="medal", policy="reference",
                       tier="constant")
    assert summary["episodes"] == TASKS and summary["kept"] == 0 and summary["rows"] == 0
    assert all(not r["kept"] for r in sft_data.read_lines(tmp_path / "data" / collect.LEDGER))


def test_a_student_with_its_own_tokenizer_learns_the_collected_turns(collected, tmp_path):
    """SFT on two tasks' conversations lowers the NLL of the third task's held-out ones."""
    store, out, _ = collected
    tasks = task_set.load_task_set(store, None)
    student_dir = base_model.build_tiny_base_model(
        tmp_path / "student", tasks, vocab_size=700, hidden_size=64, intermediate_size=128,
        num_layers=1, num_heads=2, num_kv_heads=1, head_dim=32, max_positions=8192, seed=0)
    chat = ChatFormat.from_tokenizer(tokenizer_lib.load_tokenizer(str(student_dir)))
    lines = sft_data.read_lines(out / sft_data.FILE)
    held_out = [r for r in lines if r["provenance"]["task_id"] == "toy-2"]
    (tmp_path / "train").mkdir()
    sft_data.write_lines(tmp_path / "train" / sft_data.FILE,
                         [r for r in lines if r not in held_out])
    train_rows, too_long = sft_data.load_rows(tmp_path / "train", chat, max_tokens=8192)
    assert too_long == 0 and len(train_rows) == 4
    test_rows = [sft_data.render(r["messages"], chat) for r in held_out]
    config = batching.BatchingConfig(bucket_lengths=(1024, 2048, 4096, 8192), rows=2)
    test_batch = batching.pack([episodes.Row(tuple(ids), tuple(mask), (0.0,) * len(ids))
                                for ids, mask in test_rows],
                               [1.0] * len(test_rows), config)

    model = hf.load_model(str(student_dir))
    apply_fn, params = learner_lib.nnx_apply_fn(model)
    learner = learner_lib.Learner(apply_fn, optim.make_optimizer(optim.OptimizerConfig(
        learning_rate=3e-3, warmup_steps=2, total_steps=30)), sft.SFT_LOSS)
    state = learner.init_state(params, 0)
    before = sft.mean_nll(learner, state.params, test_batch)
    stream = sft.sft_batches(train_rows, 2, config, seed=0)
    for _ in range(30):
        state, _ = learner.train_step(state, next(stream))
    after = sft.mean_nll(learner, state.params, test_batch)
    assert after < 0.5 * before, (before, after)


def test_a_model_behind_an_openai_endpoint_is_collected(chat_model_dir, tmp_path):
    """The endpoint is our launch.serve (SGLang's server needs CUDA) serving a random tiny
    model: its turns are nonsense, so `--filter=all` keeps them; what is checked is that each
    reply travels into the conversations as the assistant's content."""
    store = _store(tmp_path / "store")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "launch.serve", f"--model_dir={chat_model_dir}",
         f"--port={port}", "--num_slots=4", "--max_len=8192", "--decode_chunk=8"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_served(url, "/health", proc)
        request = cli.EvalRequest(tasks=store, out=tmp_path / "data", split="train",
                                  policy="openai", openai_base_url=f"{url}/v1",
                                  model_dir=chat_model_dir)
        summary = asyncio.run(collect.collect(_config(max_turns=2, max_new_tokens=24),
                                              request, "all"))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert summary | {"episodes": 2, "kept": 2, "failed": 0, "policy": "openai"} == summary
    assert summary["model"] == f"{url}/v1 default"
    lines = sft_data.read_lines(tmp_path / "data" / sft_data.FILE)
    replies = [m for r in lines for m in r["messages"] if m["role"] == "assistant"]
    assert len(replies) >= 2 and all(m["content"] for m in replies)
    turns = np.array([r["provenance"]["termination"] for r in lines])
    assert set(turns) <= {"turn_limit", "answer", "context_limit"}
