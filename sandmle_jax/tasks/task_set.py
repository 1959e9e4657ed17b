"""Loading a set of tasks: one task directory, a generated store (manifest.json), or a folder.

A store written by the synth pipeline has `manifest.json` with `train` and `validation` lists of
task ids and each task under `tasks/<id>/`; a split name selects one list. Any other folder is
read as a collection of task directories (e.g. imported MLE-bench competitions).
"""

from __future__ import annotations

import json
import os
import pathlib

from sandmle_jax import paths
from sandmle_jax.tasks.task import TASK_JSON, Task, TaskError, load_task

MANIFEST = "manifest.json"


def has_manifest(root: str | os.PathLike) -> bool:
    return (pathlib.Path(root) / MANIFEST).is_file()


def task_dirs(root: pathlib.Path) -> list[pathlib.Path]:
    """`root` itself when it is a task, else its task sub-directories, sorted (not loaded)."""
    if (root / TASK_JSON).is_file():
        return [root]
    return sorted(p.parent for p in root.glob(f"*/{TASK_JSON}"))


def load_task_set(root: str | os.PathLike, split: str | None = None) -> list[Task]:
    """The tasks under `root`, sorted by id; a broken task raises TaskError naming it."""
    root = paths.absolute(root)
    if (root / TASK_JSON).is_file():
        return [load_task(root)]
    if has_manifest(root):
        manifest = json.loads((root / MANIFEST).read_text())
        entries = {t["task_id"]: t for t in manifest["tasks"]}
        if split is None:
            ids = sorted(entries)
        elif split in manifest:
            ids = sorted(manifest[split])
        else:
            raise TaskError(f"{root / MANIFEST}: no split {split!r}; it has "
                            f"{sorted(k for k in manifest if isinstance(manifest[k], list))}")
        return [load_task(root / entries[i]["path"]) for i in ids]
    if not root.is_dir():
        raise TaskError(f"{root}: no such task directory or task set")
    dirs = task_dirs(root)
    if not dirs:
        raise TaskError(f"{root}: holds no task (no task.json, no manifest.json, no task "
                        "sub-directories)")
    return [load_task(d) for d in dirs]
