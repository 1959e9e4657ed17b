"""The `llm` backend driven by a scripted OpenAI-compatible endpoint (how CI runs it).

A tiny local HTTP server replays canned role outputs, told apart by the `ROLE:` line of each
system prompt. The first Strategist and Developer replies are broken on purpose, so the tests
see the execute-debug loop feed the failure back and recover; the task that comes out passes
the same gates as a procedural one and grades through `sandmle_jax.tasks`.
"""

import importlib.util
import json
import pathlib
import re

import pytest

from benchmarks.real_competitions import write
from conftest import json_endpoint
from benchmarks.real_seeds import SEEDS
from sandmle_jax.rollout import openai_chat
from sandmle_jax.rollout.engine import FinishReason, GenerateResult
from sandmle_jax.rollout.server import SGLangServer, serve_in_thread
from sandmle_jax.synth.baselines import SUBMISSION_FORMATS
from sandmle_jax.synth import chat as chat_lib
from sandmle_jax.synth import llm, pipeline, seed_dirs
from sandmle_jax.tasks import grading, load_task

ROOT = pathlib.Path(__file__).resolve().parents[2]
REAL_SEEDS = {c.id: c for c in SEEDS}

STRATEGIST = [
    '```json\n{"domain": "finance", "n_train": 500}\n```',  # out of range: fed back
    '```json\n{"domain": "finance", "noise": 0.2, "imbalance": 0.1, "missing_rate": 0.0, '
    '"n_distractors": 1, "cat_cardinality": 4, "nonlinearity": 0.5, "interactions": 1, '
    '"outlier_rate": 0.0, "n_train": 150}\n```',
]

DEVELOPER_SCRIPT = r'''
import json
import numpy as np
import pandas as pd

rng = np.random.default_rng(7)
n_train, n_test = 150, 120  # the DNA's sizes (n_test follows n_train)
n = n_train + n_test
X = rng.standard_normal((n, 4))
logit = 1.2 * X[:, 0] - 0.8 * X[:, 1] + 0.9 * X[:, 2] ** 2 - 0.9
p = 1 / (1 + np.exp(-2.5 * logit))
y = (rng.random(n) < p).astype(int)
ids = rng.choice(900000, size=n, replace=False) + 100000
cols = ["income", "debt_ratio", "age", "savings"]
frame = pd.DataFrame(X.round(4), columns=cols)
frame.insert(0, "id", ids)
train = frame.iloc[:n_train].assign(default=y[:n_train])
test = frame.iloc[n_train:]
train.to_csv("train.csv", index=False)
test.to_csv("test.csv", index=False)
pd.DataFrame({"id": test["id"], "default": y[n_train:]}).to_csv("answers.csv", index=False)
pd.DataFrame({"id": test["id"], "default": 0.5}).to_csv("sample_submission.csv", index=False)
pd.DataFrame({"id": test["id"], "default": p[n_train:].round(6)}).to_csv(
    "gold_submission.csv", index=False)
json.dump({"feature_kind": "tabular", "feature_columns": cols, "train_targets": ["default"],
           "submission_columns": ["default"], "output": "probability", "classes": [], "k": 0,
           "non_negative": False, "rule_parameters": [1.2, -0.8, 0.9, -0.9, 2.5]},
          open("task_info.json", "w"))
'''
DEVELOPER = ["```python\nimport numpyy\n```", f"```python\n{DEVELOPER_SCRIPT}```"]

MLOPS = ['```json\n{"metric": "roc_auc"}\n```\n```python\n'
         'import os\nimport numpy as np\nimport pandas as pd\n'
         'pub = os.environ["PUBLIC_DIR"]\n'
         'train = pd.read_csv(os.path.join(pub, "train.csv"))\n'
         'gold = pd.read_csv(os.path.join(pub, "gold_submission.csv"))\n'
         'constant = gold.assign(default=train["default"].mean())\n'
         'constant.to_csv("constant_submission.csv", index=False)\n'
         'values = np.random.default_rng(0).permutation(gold["default"].to_numpy())\n'
         'gold.assign(default=values).to_csv("shuffled_submission.csv", index=False)\n```']



def _evaluator(system: str, metric_line: str = "score = roc_auc_score(truth, pred)",
               checks: bool = True) -> str:
    """evaluator.py as a model writes it: its own code, the thresholds copied from the prompt."""
    printed = re.search(r'\{"score": <float>, .*?\}', system, re.S).group(0)
    template = printed.replace("<float>", "SCORE").replace("\n", " ")
    validation = """
if sorted(sub.columns) != ["default", "id"]:
    fail(f"columns must be id,default, got {list(sub.columns)}")
if sub["id"].duplicated().any() or set(sub["id"]) != set(answers["id"]):
    fail("the ids must be the test ids, each once")
if sub["default"].isna().any() or not sub["default"].between(0, 1).all():
    fail("default must be a probability in [0, 1] in every row")
""" if checks else ""
    return f"""```python
import argparse, json, sys
import pandas as pd
from sklearn.metrics import accuracy_score, roc_auc_score

parser = argparse.ArgumentParser()
parser.add_argument("--submission_path", required=True)
path = parser.parse_args().submission_path
answers = pd.read_csv("answer.csv")


def fail(why):
    print(why, file=sys.stderr)
    sys.exit(1)


try:
    sub = pd.read_csv(path)
    sub["default"] = pd.to_numeric(sub["default"], errors="coerce")
except Exception as e:
    fail(f"cannot read the submission: {{e}}")
{validation}
merged = answers.merge(sub, on="id", suffixes=("", "_pred"))
truth, pred = merged["default"], merged["default_pred"]
{metric_line}
print({template!r}.replace("SCORE", repr(float(score))))
```"""


EVALUATOR = [_evaluator]
WRONG_EVALUATOR = [lambda system: _evaluator(
    system, "score = accuracy_score(truth, (pred > 0.5).astype(int))", checks=False)]

WRITER = ["# Finance: predict default for each loan application\n\n"
          "Each row is a loan application. Predict the probability that `default` is 1.\n"
          "Files: train.csv, test.csv, sample_submission.csv. Metric: roc_auc (higher is "
          "better). Submit `id,default` for every test id.\n"]


class ScriptedEndpoint:
    """Replays canned replies per role; the last reply of a role repeats. `reasoning`: refuses
    temperature and max_tokens with OpenAI's 400, as reasoning models do."""

    def __init__(self, script: dict[str, list[str]], fail_first: int = 0,
                 reasoning: bool = False):
        self.script = {role: list(replies) for role, replies in script.items()}
        self.requests: list[dict] = []
        self.fail_first, self.reasoning = fail_first, reasoning
        self.base_url = None
        self._server = json_endpoint(self._respond)

    def _respond(self, path, body):
        self.requests.append(body)
        if self.fail_first > 0:
            self.fail_first -= 1
            return 503, {"error": "warming up"}
        if path != "/v1/chat/completions":
            return 404, {"error": f"no route {path}"}
        if self.reasoning and ("temperature" in body or "max_tokens" in body):
            return 400, {"error": {
                "message": "Unsupported parameter: 'max_tokens' is not supported with "
                           "this model. Use 'max_completion_tokens' instead.",
                "type": "invalid_request_error", "param": "max_tokens",
                "code": "unsupported_parameter"}}
        role = body["messages"][0]["content"].splitlines()[0].removeprefix("ROLE: ")
        replies = self.script[role]
        content = replies.pop(0) if len(replies) > 1 else replies[0]
        if callable(content):  # a reply written from the request, as a model would
            content = content(body["messages"][0]["content"])
        return 200, {"choices": [{"message": {"role": "assistant", "content": content}}]}

    def __enter__(self):
        self.base_url = self._server.__enter__() + "/v1"
        return self

    def __exit__(self, *exc):
        self._server.__exit__(*exc)


def _config(base_url):
    spec = importlib.util.spec_from_file_location("synth_config", ROOT / "configs" / "synth.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    config.backend = "llm"
    config.seeds = "tabular_binary_auc"
    config.max_candidates_factor = 1.0
    config.llm.base_url = base_url
    config.llm.model = "scripted"
    return config


def test_llm_backend_recovers_through_the_debug_loop_and_passes_the_gates(tmp_path):
    script = {"data_strategist": STRATEGIST, "ml_developer": DEVELOPER,
              "mlops_engineer": MLOPS, "mlops_evaluator": EVALUATOR,
              "technical_writer": WRITER}
    with ScriptedEndpoint(script) as endpoint:
        report = pipeline.generate(_config(endpoint.base_url), tmp_path, num_tasks=1,
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
        report = pipeline.generate(_config(endpoint.base_url), tmp_path, num_tasks=1,
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
        report = pipeline.generate(_config(endpoint.base_url), tmp_path, num_tasks=1,
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
        report = pipeline.generate(_config(endpoint.base_url), tmp_path, num_tasks=1,
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
        report = pipeline.generate(_config(endpoint.base_url), tmp_path, num_tasks=1,
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
        report = pipeline.generate(_config(endpoint.base_url), tmp_path, num_tasks=1,
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
        report = pipeline.generate(_config(endpoint.base_url), tmp_path, num_tasks=1,
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
        chat = openai_chat.ChatClient.from_options(_config(endpoint.base_url).llm)
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
        report = pipeline.generate(_config(f"{url}/v1"), tmp_path, num_tasks=1, progress=False)
    assert report["kept"] == 1, report["rejections"]
    developer = [p for p in engine.prompts if "ROLE: ml_developer" in p]
    assert len(developer) == 2 and "No module named 'numpyy'" in developer[1]
    assert all(p.startswith("<|im_start|>system\nROLE: ") for p in engine.prompts)
    assert all(p.endswith("<|im_start|>assistant\n") for p in engine.prompts)
