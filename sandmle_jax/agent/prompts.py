"""What the agent is told: the scaffold's rules, the tools, and the task with its data listing.

Tools are passed to the chat template as JSON schemas, so Qwen3's template renders them in the
`<tools>` block its models were trained on; the system message adds the scaffold's rules.
"""

from __future__ import annotations

import dataclasses
import pathlib

from sandmle_jax.agent import actions
from sandmle_jax.tasks import metrics

# Where the task's read-only files appear, relative to the working directory (a link that
# tools.new_episode makes in every workspace).
DATA_DIR = "data"

TOOL_SCHEMAS = (
    {"type": "function", "function": {
        "name": actions.RUN_PYTHON,
        "description": ("Write the code to a fresh file and run it as a new Python process in "
                        "the working directory. No Python state carries over between calls; "
                        "files in the working directory do. Returns the exit code, the last "
                        "lines of stdout/stderr, and whether submission.csv exists."),
        "parameters": {"type": "object", "properties": {
            "code": {"type": "string", "description": "Complete Python source to run."}},
            "required": ["code"]}}},
    {"type": "function", "function": {
        "name": actions.SCORE,
        "description": ("Grade ./submission.csv on the hidden test labels: returns the score "
                        "and which thresholds (median, bronze, silver, gold) it reaches."),
        "parameters": {"type": "object", "properties": {}}}},
    {"type": "function", "function": {
        "name": actions.VALIDATE,
        "description": "Check that ./submission.csv has the right format, without scoring it.",
        "parameters": {"type": "object", "properties": {}}}},
)


# What every agent program may import (the sandbox's start-up probe proves it), and the
# gradient-boosting libraries the release's agents have, listed where the sandbox's interpreter
# imports them (an interpreter of the user's choosing may lack them).
REQUIRED_LIBRARIES = ("numpy", "pandas", "scikit-learn", "scipy")
OPTIONAL_LIBRARIES = ("xgboost", "lightgbm", "catboost")


@dataclasses.dataclass(frozen=True)
class PromptLimits:
    max_turns: int
    exec_timeout_s: float
    libraries: tuple[str, ...] = REQUIRED_LIBRARIES


_TOOLS_INLINE = (
    "Tools: run_python {\"code\": str} runs a fresh Python process in the working directory; "
    "score {} grades ./submission.csv; validate_submission {} checks its format.\n")


def system_prompt(limits: PromptLimits, *, tools_inline: bool = False) -> str:
    """The scaffold's rules; `tools_inline` lists the tools in one line instead of relying on
    the chat template's JSON tool block (a much shorter prompt, for tiny models)."""
    return (_TOOLS_INLINE if tools_inline else "") + (
        "You are an expert machine-learning engineer solving a small prediction task.\n"
        "Each turn: reason inside <think>...</think>, then make exactly one tool call "
        "(<tool_call>{\"name\": ..., \"arguments\": {...}}</tool_call>). When you are done, "
        "give <answer>a one-line summary</answer> instead of a tool call.\n"
        "Write predictions for every test id to ./submission.csv in the format of "
        "sample_submission.csv. Use `score` to see how well the submission does.\n"
        f"Limits: {limits.max_turns} turns in all; each run_python call may take at most "
        f"{limits.exec_timeout_s:g} seconds. There is no network access; the data directory is "
        "read-only; only the working directory is writable.\n"
        f"Available libraries: {', '.join(limits.libraries)} (and the Python standard "
        "library).")


def _csv_summary(path: pathlib.Path, max_chars: int) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        head = [next(f, "") for _ in range(3)]
        rows = sum(1 for _ in f) + sum(1 for line in head[1:] if line)
    lines = [line.rstrip("\n")[:max_chars] for line in head if line]
    return f"{rows} rows; first lines:\n" + "\n".join(f"    {line}" for line in lines)


def describe_data(public_dir: pathlib.Path, *, max_files: int = 40, max_chars: int = 300) -> str:
    """A listing of the task's files, with the header and first rows of each CSV."""
    files = sorted(p for p in public_dir.rglob("*") if p.is_file())
    out = []
    for path in files[:max_files]:
        rel = path.relative_to(public_dir).as_posix()
        if rel == "description.md":
            continue
        line = f"- {rel} ({path.stat().st_size} bytes)"
        if path.suffix == ".csv":
            line += ": " + _csv_summary(path, max_chars)
        out.append(line)
    if len(files) > max_files:
        out.append(f"- ... and {len(files) - max_files} more files")
    return "\n".join(out)


# What one test row's prediction is, by the kind of submission a metric reads; each names the
# kind in the word the reference programs use for it (strategies.solution_code's KIND line).
_PREDICTION = {
    metrics.Kind.LABEL: "a label",
    metrics.Kind.ORDINAL: "an ordinal grade (an integer)",
    metrics.Kind.PROBABILITY: "a probability",
    metrics.Kind.CLASS_PROBABILITIES: "a probability for each class",
    metrics.Kind.MULTILABEL_PROBABILITIES: "a probability for each label",
    metrics.Kind.VALUE: "a value",
    metrics.Kind.RANKED_LIST: "a ranked list of item ids",
    metrics.Kind.ITEM_SCORES: "a score for each item",
}


def grading_line(metric: str, lower_is_better: bool) -> str:
    """How the task is graded, in the same words for every task: descriptions others wrote
    name their metric in their own words or not at all (a grader's name in MLE-bench's). For a
    registered metric it also says what one prediction is (what the grader reads, as a sample
    submission shows it): a tiny policy copies that word where it fails to map seven metric
    names to their kinds (benchmarks/RESULTS.md, "rl: one tiny policy over three task
    families")."""
    direction = "lower" if lower_is_better else "higher"
    line = f"Graded by {metric} on the hidden test labels ({direction} is better)"
    try:
        kind = metrics.get_metric(metric).kind
    except KeyError:  # the task's own grader: what it reads is the task's to say
        return line + "."
    return f"{line}, one prediction per test row: {_PREDICTION[kind]}."


def task_prompt(description: str, public_dir: pathlib.Path, *, max_chars: int,
                grading: str) -> str:
    """The first user message; the description is cut to fit `max_chars` in all. `public_dir`
    is listed; the agent sees it as ./data/. `grading` (a `grading_line`) closes the listing."""
    listing = describe_data(public_dir)
    frame = (f"# Task\n{{description}}\n\n# Data (read-only) in ./{DATA_DIR}/\n{listing}\n\n"
             f"{grading}\nYour working directory is writable (./{DATA_DIR}/ is a read-only link). "
             "Begin.")
    room = max(0, max_chars - len(frame) + len("{description}"))
    if len(description) > room:
        description = description[:max(0, room - 20)] + "\n[... cut ...]"
    return frame.replace("{description}", description)
