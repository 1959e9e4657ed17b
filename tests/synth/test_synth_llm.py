"""The `llm` backend driven by a scripted OpenAI-compatible endpoint (how CI runs it).

A tiny local HTTP server replays canned role outputs, told apart by the `ROLE:` line of each
system prompt. The first Strategist and Developer replies are broken on purpose, so the tests
see the execute-debug loop feed the failure back and recover; the task that comes out passes
the same gates as a procedural one and grades through `sandmle_jax.tasks`.
"""

import json

import pytest

from benchmarks.real_competitions import write
from benchmarks.real_seeds import SEEDS
from benchmarks.scripted_llm import (DEVELOPER, DEVELOPER_SCRIPT, EVALUATOR, MLOPS, STRATEGIST,
                                     WRITER, WRONG_EVALUATOR, ScriptedEndpoint, synth_config)
from sandmle_jax.rollout import openai_chat
from sandmle_jax.rollout.engine import FinishReason, GenerateResult
from sandmle_jax.rollout.server import SGLangServer, serve_in_thread
from sandmle_jax.synth.baselines import SUBMISSION_FORMATS
from sandmle_jax.synth import chat as chat_lib
from sandmle_jax.synth import llm, pipeline, seed_dirs
from sandmle_jax.tasks import grading, load_task

REAL_SEEDS = {c.id: c for c in SEEDS}


def test_llm_backend_recovers_through_the_debug_loop_and_passes_the_gates(tmp_path):
    script = {"data_strategist": STRATEGIST, "ml_developer": DEVELOPER,
              "mlops_engineer": MLOPS, "mlops_evaluator": EVALUATOR,
              "technical_writer": WRITER}
    with ScriptedEndpoint(script) as endpoint:
        report = pipeline.generate(synth_config(endpoint.base_url), tmp_path, num_tasks=1,
                                   progress=False)
    assert report["kept"] == 1, report["rejections"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    task = load_task(tmp_path / manifest["tasks"][0]["path"])
    assert task.spec.generator["backend"] == "llm" and task.spec.metric == "roc_auc"
    assert task.spec.dna["domain"] == "finance" and task.spec.dna["n_train"] == 150
    assert (task.public_dir / "description.md").read_text().startswith("# Finance")
    # The broken replies were fed back: the second Developer request carries the traceback.
    developer = [r for r in endpoint.requests
                 if r["messages"][0]["content"].startswith("ROLE: ml_developer")]
    assert len(developer) == 2
    assert "No module named 'numpyy'" in developer[1]["messages"][-1]["content"]
    strategist = [r for r in endpoint.requests
                  if r["messages"][0]["content"].startswith("ROLE: data_strategist")]
    assert "n_train=500" in strategist[1]["messages"][-1]["content"]
    gold = tmp_path / "gold.csv"
    (tmp_path / "gold.csv").write_text(
        (task.public_dir / "sample_submission.csv").read_text())
    assert not grading.grade(task, gold).above_median


def test_roles_are_shown_the_submission_format(tmp_path):
    """The Developer sees every output kind's format with an example row; the Writer sees its
    task's format and the sample's first row (a constant guess, never an answer)."""
    script = {"data_strategist": STRATEGIST[1:], "ml_developer": DEVELOPER[1:],
              "mlops_engineer": MLOPS, "mlops_evaluator": EVALUATOR,
              "technical_writer": WRITER}
    with ScriptedEndpoint(script) as endpoint:
        report = pipeline.generate(synth_config(endpoint.base_url), tmp_path, num_tasks=1,
                                   progress=False)
    assert report["kept"] == 1, report["rejections"]
    system = next(r["messages"][0]["content"] for r in endpoint.requests
                  if r["messages"][0]["content"].startswith("ROLE: ml_developer"))
    for kind, (what, example) in SUBMISSION_FORMATS.items():
        assert f"- {kind}: {what}, e.g.\n    " + example.replace("\n", "\n    ") in system
    writer = next(r for r in endpoint.requests
                  if r["messages"][0]["content"].startswith("ROLE: technical_writer"))
    asked = json.loads(writer["messages"][1]["content"])
    assert asked["submission_format"] == SUBMISSION_FORMATS["probability"][0]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    task = load_task(tmp_path / manifest["tasks"][0]["path"])
    first = task.sample_submission.head(1).to_csv(index=False)
    assert asked["submission_example"] == first and first.startswith("id,default\n")


def test_llm_backend_works_with_a_reasoning_model(tmp_path):
    """Such a model refuses temperature and max_tokens: once refused, every role asks it the
    reasoning way (max_completion_tokens only), and the task is kept."""
    script = {"data_strategist": STRATEGIST[1:], "ml_developer": DEVELOPER[1:],
              "mlops_engineer": MLOPS, "mlops_evaluator": EVALUATOR,
              "technical_writer": WRITER}
    with ScriptedEndpoint(script, reasoning=True) as endpoint:
        report = pipeline.generate(synth_config(endpoint.base_url), tmp_path, num_tasks=1,
                                   progress=False)
    assert report["kept"] == 1, report["rejections"]
    refused = [r for r in endpoint.requests if "max_tokens" in r]
    answered = [r for r in endpoint.requests if "max_tokens" not in r]
    assert len(refused) == 1 and refused[0] is endpoint.requests[0]
    assert all("temperature" not in r and r["max_completion_tokens"] == 4096 for r in answered)


def test_a_data_script_that_ignores_the_dna_goes_back_with_the_reasons(tmp_path):
    """Wrong test size and labels without the DNA's noise (answers = the rule's own labels):
    the Developer is told both, and its next script, which follows the DNA, is kept."""
    ignoring = DEVELOPER_SCRIPT.replace("n_train, n_test = 150, 120", "n_train, n_test = 150, 90")
    ignoring = ignoring.replace('"default": y[n_train:]', '"default": (p[n_train:] > 0.5) * 1')
    ignoring = ignoring.replace('"default": p[n_train:].round(6)',
                                '"default": (p[n_train:] > 0.5) * 1')
    script = {"data_strategist": STRATEGIST[1:],
              "ml_developer": [f"```python\n{ignoring}```", f"```python\n{DEVELOPER_SCRIPT}```"],
              "mlops_engineer": MLOPS, "mlops_evaluator": EVALUATOR,
              "technical_writer": WRITER}
    with ScriptedEndpoint(script) as endpoint:
        report = pipeline.generate(synth_config(endpoint.base_url), tmp_path, num_tasks=1,
                                   progress=False)
    assert report["kept"] == 1, report["rejections"]
    developer = [r for r in endpoint.requests
                 if r["messages"][0]["content"].startswith("ROLE: ml_developer")]
    feedback = developer[1]["messages"][-1]["content"]
    assert "the data do not match the task DNA" in feedback
    assert "test.csv has 90 rows; the DNA asks for 120" in feedback
    assert "carry none of the DNA's noise" in feedback


def test_a_wrong_evaluator_goes_back_with_the_disagreements_and_the_fix_is_kept(tmp_path):
    """An evaluator scoring accuracy of rounded probabilities (the metric is roc_auc) and
    accepting malformed files is told where it disagrees; the corrected one lands in private/."""
    script = {"data_strategist": STRATEGIST[1:], "ml_developer": DEVELOPER[1:],
              "mlops_engineer": MLOPS, "mlops_evaluator": WRONG_EVALUATOR + EVALUATOR,
              "technical_writer": WRITER}
    with ScriptedEndpoint(script) as endpoint:
        report = pipeline.generate(synth_config(endpoint.base_url), tmp_path, num_tasks=1,
                                   progress=False)
    assert report["kept"] == 1, report["rejections"]
    asked = [r for r in endpoint.requests
             if r["messages"][0]["content"].startswith("ROLE: mlops_evaluator")]
    assert len(asked) == 2
    feedback = asked[1]["messages"][-1]["content"]
    assert "the evaluator disagrees with the reference grader" in feedback
    assert "on the gold submission the evaluator says" in feedback and "roc_auc is" in feedback
    for malformed in ("dropped_row", "duplicated_id"):
        assert f"the {malformed} submission is malformed" in feedback
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    task = load_task(tmp_path / manifest["tasks"][0]["path"])
    kept = (task.private_dir / "evaluator.py").read_text()
    assert "roc_auc_score(truth, pred)" in kept and "accuracy_score(truth, (pred" not in kept
    assert not (task.public_dir / "evaluator.py").exists()


def test_an_evaluator_that_never_agrees_rejects_the_candidate(tmp_path):
    script = {"data_strategist": STRATEGIST[1:], "ml_developer": DEVELOPER[1:],
              "mlops_engineer": MLOPS, "mlops_evaluator": WRONG_EVALUATOR,
              "technical_writer": WRITER}
    with ScriptedEndpoint(script) as endpoint:
        report = pipeline.generate(synth_config(endpoint.base_url), tmp_path, num_tasks=1,
                                   progress=False)
    assert report["kept"] == 0
    record = json.loads(next((tmp_path / "records").glob("*.json")).read_text())
    failed = {g["name"]: g["reason"] for g in record["gates"] if not g["passed"]}
    assert list(failed) == ["evaluator_agrees"], failed
    assert "no usable output in 3 attempts" in failed["evaluator_agrees"]
    assert len([r for r in endpoint.requests
                if r["messages"][0]["content"].startswith("ROLE: mlops_evaluator")]) == 3


def test_llm_developer_that_never_works_is_rejected_with_the_reason(tmp_path):
    script = {"data_strategist": STRATEGIST[1:], "ml_developer": DEVELOPER[:1],
              "mlops_engineer": MLOPS, "mlops_evaluator": EVALUATOR,
              "technical_writer": WRITER}
    with ScriptedEndpoint(script) as endpoint:
        report = pipeline.generate(synth_config(endpoint.base_url), tmp_path, num_tasks=1,
                                   progress=False)
    assert report["kept"] == 0
    (reason,) = next(iter(report["rejections"].values()))
    assert "no usable output in 3 attempts" in reason and "numpyy" in reason


def test_chat_client_retries_transient_errors_and_names_permanent_ones():
    with ScriptedEndpoint({"x": ["hello"]}, fail_first=1) as endpoint:
        client = openai_chat.ChatClient(endpoint.base_url, "m", retries=2)
        assert client.complete([{"role": "system", "content": "ROLE: x"}]) == "hello"
        assert len(endpoint.requests) == 2
        broken = openai_chat.ChatClient(endpoint.base_url.replace("/v1", "/v2"), "m", retries=0)
        with pytest.raises(openai_chat.ChatError, match="answered 404"):
            broken.complete([{"role": "system", "content": "ROLE: x"}])


def test_fenced_blocks():
    reply = "text\n```json\n{\"a\": 1}\n```\nmore\n```python\nprint(1)\n```\n"
    assert chat_lib.fenced(reply, "python") == "print(1)\n"
    assert chat_lib.fenced(reply, "json") == "{\"a\": 1}\n"
    assert chat_lib.fenced("no fences") == "no fences"


def _plan(features, domain="agriculture"):
    return "```json\n" + json.dumps({
        "domain": domain, "story": "Each row is a field plot; predict its growth stage.",
        "features": features, "mutations": ["heavier class imbalance", "noisy labels"],
        "knobs": {"noise": 0.2, "imbalance": 0.3}}) + "\n```"


def test_strategist_reads_a_real_seed_and_plans_in_free_form_within_its_dna(tmp_path):
    """The real seed's description, rows and DNA reach the Strategist; a plan whose columns do
    not keep the seed's counts goes back as feedback; the accepted brief lands in the DNA."""
    root = tmp_path / "seeds"
    write(REAL_SEEDS["penguin-species"], root, root)
    seeds, _ = seed_dirs.load_seed_dir(root, tmp_path / "run")
    numeric = [{"name": f"n{i}", "type": "numeric", "meaning": "a soil reading"}
               for i in range(5)]
    categorical = [{"name": c, "type": "categorical", "meaning": "a plot label"}
                   for c in ("crop", "soil_type")]
    script = {"data_strategist": [_plan(numeric[:3] + categorical), _plan(numeric + categorical)]}
    with ScriptedEndpoint(script) as endpoint:
        chat = openai_chat.ChatClient.from_options(synth_config(endpoint.base_url).llm)
        dna = llm.Strategist(chat, max_attempts=3).plan(seeds[0], task_seed=5)
    asked = endpoint.requests[0]["messages"][1]["content"]
    assert "# penguin-species" in asked and "bill_length_mm" in asked
    assert '"n_categorical": 2' in asked and '"class_shares"' in asked
    feedback = endpoint.requests[1]["messages"][-1]["content"]
    assert "numeric: 3 proposed, 5 kept" in feedback
    assert dna.brief["story"].startswith("Each row is a field plot")
    assert dna.brief["mutations"] == ["heavier class imbalance", "noisy labels"]
    assert (dna.domain, dna.noise, dna.imbalance, dna.seed) == ("agriculture", 0.2, 0.3, 5)
    assert dna.seed_dna == seeds[0].dna and (dna.task_type, dna.n_classes) == ("multiclass", 3)


class _ScriptedEngine:
    """An Engine that answers each chat with the next scripted reply of the role its system
    message names: the tiny models this machine can run cannot write data scripts, so the
    replies are scripted, while everything between the roles and the engine is real."""

    weight_version = "scripted"

    def __init__(self, tokenizer, script: dict[str, list[str]]):
        self.tokenizer = tokenizer
        self.script = {role: list(replies) for role, replies in script.items()}
        self.prompts: list[str] = []

    async def generate(self, requests):
        results = []
        for request in requests:
            prompt = self.tokenizer.decode(list(request.input_ids))
            self.prompts.append(prompt)
            role = prompt.split("ROLE: ", 1)[1].split("\n", 1)[0]
            replies = self.script[role]
            text = replies.pop(0) if len(replies) > 1 else replies[0]
            if callable(text):
                text = text(prompt)
            ids = self.tokenizer.encode(text, add_special_tokens=False)
            ids.append(self.tokenizer.convert_tokens_to_ids("<|im_end|>"))
            results.append(GenerateResult(
                request.request_id, tuple(ids), (0.0,) * len(ids),
                FinishReason("stop", matched=ids[-1]), self.weight_version,
                len(request.input_ids)))
        return results

    async def update_weights(self, weights, version=None):
        raise NotImplementedError

    async def abort(self, request_id):
        pass


def test_llm_backend_over_http_against_our_sglang_protocol_server(tmp_path, qwen_tokenizer):
    """The LLM backend end to end over real HTTP: the official openai client -> our
    SGLang-protocol server's /v1/chat/completions (Qwen3's chat template) -> an engine -> the
    reply decoded back; the task is kept and the debug loop's feedback reached the engine."""
    script = {"data_strategist": STRATEGIST, "ml_developer": DEVELOPER,
              "mlops_engineer": MLOPS, "mlops_evaluator": EVALUATOR,
              "technical_writer": WRITER}
    engine = _ScriptedEngine(qwen_tokenizer, script)
    server = SGLangServer(engine, "scripted", tokenizer=qwen_tokenizer)
    with serve_in_thread(server) as url:
        report = pipeline.generate(synth_config(f"{url}/v1"), tmp_path, num_tasks=1, progress=False)
    assert report["kept"] == 1, report["rejections"]
    developer = [p for p in engine.prompts if "ROLE: ml_developer" in p]
    assert len(developer) == 2 and "No module named 'numpyy'" in developer[1]
    assert all(p.startswith("<|im_start|>system\nROLE: ") for p in engine.prompts)
    assert all(p.endswith("<|im_start|>assistant\n") for p in engine.prompts)
