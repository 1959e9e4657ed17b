"""Yield per gate of `launch.generate --config.backend=llm` against a scripted endpoint.

    PYTHONPATH=. python benchmarks/synth_llm_scripted.py [--num_tasks 10] [--out DIR]

No model that runs here can write a data script, so each candidate's conversations follow one of
five scripted behaviours, in turn: every role right first time; a Developer whose first script
ignores the DNA (wrong test size, labels without noise), then follows it; an MLOps evaluator
that first scores the wrong metric and accepts malformed files, then agrees; an evaluator that
never agrees; a Developer whose script never runs. It runs `launch.generate` as a user does (a
subprocess, the endpoint on a local port) and prints the kept share, the failures per gate, the
requests per role and the seconds per candidate. What it measures is the pipeline around the
model (the debug loop, the gates, the wiring), not a model's ability: with these scripts three
of every five candidates should be kept and each failure should land on its own gate.
"""

import argparse
import collections
import json
import pathlib
import re
import subprocess
import sys
import tempfile
import threading
import time

from benchmarks.scripted_llm import (DEVELOPER, DEVELOPER_SCRIPT, EVALUATOR, MLOPS, STRATEGIST,
                                     WRITER, WRONG_EVALUATOR, ScriptedEndpoint)
import run_facts

ROOT = pathlib.Path(__file__).resolve().parents[1]
_IGNORING = (DEVELOPER_SCRIPT.replace("n_train, n_test = 150, 120", "n_train, n_test = 150, 90")
             .replace('"default": y[n_train:]', '"default": (p[n_train:] > 0.5) * 1'))
_GOOD = {"data_strategist": STRATEGIST[1:], "ml_developer": DEVELOPER[1:],
         "mlops_engineer": MLOPS, "mlops_evaluator": EVALUATOR, "technical_writer": WRITER}
BEHAVIOURS = {
    "right first time": {},
    "developer ignores the DNA once": {
        "ml_developer": [f"```python\n{_IGNORING}```", *DEVELOPER[1:]]},
    "evaluator wrong once": {"mlops_evaluator": WRONG_EVALUATOR + EVALUATOR},
    "evaluator never agrees": {"mlops_evaluator": WRONG_EVALUATOR},
    "developer never runs": {"ml_developer": DEVELOPER[:1]},
}


class Behaviours(ScriptedEndpoint):
    """Chooses each conversation's replies by its candidate (told by the task seed in its
    first user message) and its attempt (how many replies it already holds)."""

    def __init__(self):
        super().__init__({})
        self.candidates: dict[str, int] = {}
        self.by_role: collections.Counter = collections.Counter()
        self._lock = threading.Lock()

    def behaviour(self, messages: list[dict]) -> str:
        found = re.search(r'Task seed: (\d+)|"seed": (\d+)', messages[1]["content"])
        key = next(g for g in found.groups() if g)
        with self._lock:
            ordinal = self.candidates.setdefault(key, len(self.candidates))
        return list(BEHAVIOURS)[ordinal % len(BEHAVIOURS)]

    def reply(self, role: str, messages: list[dict]):
        self.by_role[role] += 1
        replies = {**_GOOD, **BEHAVIOURS[self.behaviour(messages)]}[role]
        attempt = (len(messages) - 2) // 2
        return replies[min(attempt, len(replies) - 1)]


def main():
    print(run_facts.header())
    parser = argparse.ArgumentParser()
    parser.add_argument("--num_tasks", type=int, default=10)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    out = pathlib.Path(args.out or tempfile.mkdtemp(prefix="synth-llm-bench-"))
    with Behaviours() as endpoint:
        start = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "launch.generate", f"--config={ROOT / 'configs' / 'synth.py'}",
             f"--out={out}", f"--num_tasks={args.num_tasks}", "--config.backend=llm",
             f"--config.llm.base_url={endpoint.base_url}", "--config.llm.model=scripted",
             "--config.seeds=tabular_binary_auc", "--config.max_candidates_factor=1.0"],
            cwd=ROOT, capture_output=True, text=True)
        wall = time.monotonic() - start
    report = json.loads((out / "report.json").read_text())
    records = [json.loads(p.read_text()) for p in sorted((out / "records").glob("*.json"))]
    failed = collections.Counter(g["name"] for r in records for g in r["gates"] if not g["passed"])
    print(f"launch.generate exit {done.returncode}; {wall:.0f} s for {len(records)} candidates "
          f"({wall / max(len(records), 1):.1f} s each)")
    print(f"kept {report['kept']} of {len(records)} candidates")
    print("candidates by behaviour:", dict(collections.Counter(
        list(BEHAVIOURS)[i % len(BEHAVIOURS)] for i in range(len(endpoint.candidates)))))
    print("failures per gate:", dict(failed))
    print("requests per role:", dict(endpoint.by_role))


if __name__ == "__main__":
    main()
