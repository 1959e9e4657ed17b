"""`launch.evaluate` on a folder of tasks, run as a user runs it (a subprocess, relative paths):
the embedded policy (a tiny random Qwen3 saved by transformers, with the real Qwen3 tokenizer),
an HTTP chat policy in both scaffolds, and the set-up errors a user meets first. The reference
policy on a folder of imported competitions is tests/launch/test_launch_mlebench.py."""

import json
import pathlib
import shutil
import subprocess
import sys

import torch
import transformers
from conftest import qwen_tokenizer_dir, require_bwrap, write_tabular_task

from benchmarks.scripted_llm import json_endpoint

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIG = f"--config={ROOT / 'configs' / 'tiny_cpu.py'}"


def _evaluate(cwd: pathlib.Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "launch.evaluate", CONFIG, *flags], cwd=cwd,
                          capture_output=True, text=True, timeout=900)


def _tiny_qwen3(directory: pathlib.Path) -> None:
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(qwen_tokenizer_dir()))
    torch.manual_seed(0)
    config = transformers.Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=4096,
        tie_word_embeddings=True, eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"))
    transformers.Qwen3ForCausalLM(config).save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))


def test_embedded_policy_on_a_folder_of_tasks(tmp_path):
    for i in range(2):
        write_tabular_task(tmp_path / "tasks" / f"churn-{i}", seed=i, task_id=f"churn-{i}")
    _tiny_qwen3(tmp_path / "model")
    done = _evaluate(tmp_path, "--tasks=tasks", "--policy=embedded", "--model_dir=model",
                     "--out=eval", "--seeds=2", "--config.agent.max_turns=2",
                     "--config.agent.max_new_tokens=24")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    summary = report["summary"]
    assert summary["tasks"] == 2 and summary["seeds"] == 2 and summary["episodes"] == 4
    assert summary["failed_episodes"] == 0, summary["terminations"]
    assert summary["terminations"] == {"turn_limit": 4}  # a random policy never answers
    assert {e["task_id"] for e in report["episodes"]} == {"churn-0", "churn-1"}
    assert all(e["turns"] == 2 for e in report["episodes"])
    assert (tmp_path / "eval" / "plots" / "rates.png").is_file()
    assert "report: " in done.stdout


def test_set_up_errors_are_one_line_and_exit_two(tmp_path):
    write_tabular_task(tmp_path / "tasks" / "churn", task_id="churn")
    shutil.copytree(tmp_path / "tasks", tmp_path / "broken")
    (tmp_path / "broken" / "churn" / "public" / "train.csv").write_text("id\n1\n")
    for flags, says in ((["--tasks=tasks", "--policy=embedded"], "needs --model_dir"),
                        (["--tasks=nowhere"], "--tasks"),
                        (["--tasks=tasks", "--seeds=0"], "--seeds"),
                        (["--tasks=tasks", "--scaffold=sandmle,gym"], "--scaffold"),
                        (["--tasks=broken"], "checksum mismatch")):
        done = _evaluate(tmp_path, *flags, "--out=eval")
        assert done.returncode == 2, (flags, done.stderr[-2000:])
        assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
        assert says in done.stderr, (says, done.stderr)


WRITE_SAMPLE = ("import pandas as pd\n"
                "pd.read_csv('data/sample_submission.csv').to_csv('submission.csv', index=False)")


def _scripted_reply(messages: list[dict]) -> str:
    """What a chat model would answer next in whichever scaffold the prompt is from."""
    turn = sum(m["role"] == "assistant" for m in messages)
    if "Kaggle competitor" in messages[0]["content"]:  # the Dojo scaffold's system message
        actions = [{"action": "request_info", "params": {"info_type": "all"}},
                   {"action": "execute_code", "params": {"code": WRITE_SAMPLE}},
                   {"action": "end", "params": {}}]
        return json.dumps(actions[min(turn, 2)])
    calls = [json.dumps({"name": "run_python", "arguments": {"code": WRITE_SAMPLE}}),
             json.dumps({"name": "score", "arguments": {}})]
    if turn >= 2:
        return "<think>done</think><answer>wrote the sample</answer>"
    return f"<think>step</think><tool_call>\n{calls[turn]}\n</tool_call>"


def test_an_http_chat_policy_plays_both_scaffolds(tmp_path):
    """`--policy=openai` over real HTTP (a scripted endpoint stands in for a hosted model, which
    this machine cannot reach) in both scaffolds: each reply format is parsed, each scaffold's
    results come back to the model as its messages, and both episodes submit."""
    write_tabular_task(tmp_path / "tasks" / "churn", task_id="churn")
    received = []

    def respond(path, body):
        received.append(body["messages"])
        return 200, {"choices": [{"message": {
            "role": "assistant", "content": _scripted_reply(body["messages"])},
            "finish_reason": "stop"}]}

    with json_endpoint(respond) as url:
        done = _evaluate(tmp_path, "--tasks=tasks", "--policy=openai", "--out=eval",
                         f"--openai_base_url={url}/v1", "--scaffold=dojo,sandmle")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    by = {e["scaffold"]: e for e in report["episodes"]}
    for scaffold in ("dojo", "sandmle"):
        assert by[scaffold]["valid_submission"] and by[scaffold]["termination"] == "answer"
        assert by[scaffold]["format_rate"] == 1.0
    assert by["dojo"]["score"] == by["sandmle"]["score"] == 0.5  # the sample's constant
    dojo_calls = [m for m in received if "Kaggle" in m[0]["content"]]
    last = dojo_calls[-1]
    assert [m["role"] for m in last] == ["system", "user", "assistant", "user", "assistant",
                                        "user"]
    assert last[3]["content"].startswith("request_info: SUCCESS\n## overview")
    assert last[5]["content"].startswith("execute_code: SUCCESS")
    assert "<tool_response>" not in json.dumps(last)


def test_the_reference_policy_plays_through_sandboxes_on_a_ray_cluster(tmp_path, ray_cluster):
    """`sandbox.backend=ray`: every execution runs on an actor of the local test cluster, the
    workspace travelling both ways; the grader reads the submission that came back."""
    require_bwrap()
    for i in range(2):
        write_tabular_task(tmp_path / "tasks" / f"churn-{i}", seed=i, task_id=f"churn-{i}")
    done = _evaluate(tmp_path, "--tasks=tasks", "--policy=reference", "--out=eval",
                     "--config.sandbox.backend=ray",
                     f"--config.sandbox.ray_address={ray_cluster.address}")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "eval" / "report.json").read_text())["summary"]
    assert summary["episodes"] == 2 and summary["failed_episodes"] == 0
    assert summary["overall"]["valid_submission"]["mean"] == 1.0
