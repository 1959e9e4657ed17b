"""`request_info`: what MLE-Dojo's environment tells an agent about its competition, read from one
of our task directories. Only public/ and task.json's public fields are read: answers, baselines
and the leaderboard never reach an agent through here."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pandas as pd

from sandmle_jax.tasks import task as task_lib
from sandmle_jax.tasks.task import Task

INFO_TYPES = ("overview", "sample_submission", "data_structure", "data_path", "output_path",
              "name", "metadata")
ALL = "all"
_MAX_TREE_ENTRIES = 200


def data_structure(public_dir: pathlib.Path) -> str:
    """The public folder as an indented tree with file sizes."""
    lines = [f"{public_dir.name}/"]
    entries = sorted(public_dir.rglob("*"))
    for path in entries[:_MAX_TREE_ENTRIES]:
        rel = path.relative_to(public_dir)
        indent = "    " * len(rel.parts)
        size = f" ({path.stat().st_size} bytes)" if path.is_file() else "/"
        lines.append(f"{indent}{rel.name}{size}")
    if len(entries) > _MAX_TREE_ENTRIES:
        lines.append(f"    ... and {len(entries) - _MAX_TREE_ENTRIES} more entries")
    return "\n".join(lines)


def metadata(task: Task) -> dict[str, Any]:
    """task.json's public fields: what is predicted and how it is scored."""
    spec = task.spec
    return {"title": spec.title, "modality": spec.modality, "task_type": spec.task_type,
            "metric": spec.metric, "lower_is_better": spec.lower_is_better,
            "id_column": spec.id_column, "target_columns": list(spec.target_columns)}


def provide(task: Task, info_type: str, *, data_path: str, output_path: str) -> Any:
    """One info type's value; ValueError naming the known types for an unknown one."""
    if info_type == "overview":
        return (task.public_dir / task_lib.DESCRIPTION).read_text(errors="replace")
    if info_type == "sample_submission":
        head = pd.read_csv(task.public_dir / task_lib.SAMPLE_SUBMISSION, nrows=3)
        return head.to_csv(index=False)  # its first rows, as the file holds them
    if info_type == "data_structure":
        return data_structure(task.public_dir)
    if info_type == "data_path":
        return data_path
    if info_type == "output_path":
        return output_path
    if info_type == "name":
        return task.id
    if info_type == "metadata":
        return metadata(task)
    raise ValueError(f"unknown info_type {info_type!r}; known: {list(INFO_TYPES) + [ALL]}")


def request(task: Task, info_type: str, *, data_path: str, output_path: str) -> dict[str, Any]:
    """{type: value} for one type or, for "all", every type."""
    types = INFO_TYPES if info_type == ALL else (info_type,)
    return {t: provide(task, t, data_path=data_path, output_path=output_path) for t in types}


def render(values: dict[str, Any]) -> str:
    """The feedback text: each type under its own heading, structured values as JSON."""
    parts = []
    for key, value in values.items():
        text = value if isinstance(value, str) else json.dumps(value, indent=1, default=str)
        parts.append(f"## {key}\n{text}")
    return "\n\n".join(parts)
