"""A scripted OpenAI-compatible endpoint: the four roles' replies, canned, for CI and benchmarks.

No model that runs on this machine can write a data script, so the `llm` backend is driven by
replies written here, told apart by the `ROLE:` line of each system prompt. A reply is a string,
or a function of the system prompt (to copy numbers from it, as a model would). The replies
build one finance task from the `tabular_binary_auc` seed; some are broken on purpose (a
misspelt import, an out-of-range knob, an evaluator that scores the wrong metric), so the
execute-debug loop has something to fix.
"""

from __future__ import annotations

import contextlib
import http.server
import importlib.util
import json
import pathlib
import re
import threading

ROOT = pathlib.Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def json_endpoint(respond):
    """A local HTTP server answering each POST with `respond(path, body) -> (status, payload)`,
    both JSON; yields its base URL. A stand-in for hosted model endpoints, which this machine
    cannot reach."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, payload = respond(self.path, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


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
        content = self.reply(role, body["messages"])
        if callable(content):  # a reply written from the request, as a model would
            content = content(body["messages"][0]["content"])
        return 200, {"choices": [{"message": {"role": "assistant", "content": content}}]}

    def reply(self, role: str, messages: list[dict]):
        """The role's next canned reply (a subclass may choose by the conversation)."""
        replies = self.script[role]
        return replies.pop(0) if len(replies) > 1 else replies[0]

    def __enter__(self):
        self.base_url = self._server.__enter__() + "/v1"
        return self

    def __exit__(self, *exc):
        self._server.__exit__(*exc)


def synth_config(base_url):
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
