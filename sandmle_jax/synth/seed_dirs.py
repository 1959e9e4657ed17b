"""Seeds from a user's folder: real competitions in MLE-bench's layout, or our task directories.

Each sub-folder of the seeds folder is one seed (or the folder is one seed itself): a task
directory (`task.json`) is read as it is; a competition (`config.yaml`, with its data under
`<id>/prepared/` in the same folder or in a separate data folder, as `launch.import_mlebench`
reads them) is imported into the run's `seeds/` folder first. Its DNA is then read off its files
(`seed_dna`). A seed that cannot be read is refused with its file and field, and the others go
on.
"""

from __future__ import annotations

import collections
import json
import os
import pathlib
import re
from collections.abc import Sequence

from sandmle_jax import paths
from sandmle_jax.errors import UserError
from sandmle_jax.synth.seed_dna import SeedDNA, micro_expectation, seed_from_task
from sandmle_jax.synth.seeds import MODALITIES, Seed, SeedError
from sandmle_jax.tasks import mlebench
from sandmle_jax.tasks.task import Task, load_task


def _task_of(entry: pathlib.Path, data_dir: pathlib.Path, imported: pathlib.Path) -> Task:
    if (entry / "task.json").is_file():
        return load_task(entry)
    if (entry / "config.yaml").is_file():
        target = imported / entry.name
        if (target / "task.json").is_file():  # imported by an earlier run
            return load_task(target)
        return mlebench.import_competition(entry, data_dir, target)
    raise SeedError(f"{entry}: neither task.json (a task) nor config.yaml (an MLE-bench "
                    "competition)")


def load_seed_dir(seeds_dir: str | os.PathLike, run_dir: str | os.PathLike,
                  data_dir: str | os.PathLike | None = None) -> tuple[list[Seed], dict[str, str]]:
    """(seeds in folder order, {folder name: why refused}); imports and seed records go to
    `run_dir/seeds/`. Competitions' prepared data is read from `data_dir` (default: the seeds
    folder itself), as `launch.import_mlebench --data_dir` does."""
    seeds_dir, out = paths.absolute(seeds_dir), paths.absolute(run_dir) / "seeds"
    single = any((seeds_dir / name).is_file() for name in ("task.json", "config.yaml"))
    entries = [seeds_dir] if single else sorted(
        p for p in seeds_dir.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    data_dir = paths.absolute(data_dir) if data_dir else (
        seeds_dir.parent if single else seeds_dir)
    seeds, refused = [], {}
    for entry in entries:
        try:
            task = _task_of(entry, data_dir, out / "imported")
            seed = seed_from_task(task, seed_id=re.sub(r"[^A-Za-z0-9_.-]", "_", entry.name))
        except (UserError, OSError) as e:
            refused[entry.name] = " ".join(str(e).split())
            continue
        except Exception as e:  # a seed our reader cannot handle: refused, the others go on
            refused[entry.name] = f"cannot read its DNA: {type(e).__name__}: " + " ".join(
                str(e).split())[:300]
            continue
        out.mkdir(parents=True, exist_ok=True)
        expected = micro_expectation(SeedDNA.from_dict(seed.dna))
        (out / f"{seed.id}.json").write_text(json.dumps(
            {"seed": seed.to_dict(), "kept_by_descendants": expected}, indent=2, sort_keys=True))
        seeds.append(seed)
    return seeds, refused


def stratified(seeds: Sequence[Seed]) -> list[Seed]:
    """Round robin over modalities, in MODALITIES' order: the first seeds are one of each
    modality, so a run of as many candidates as there are modalities already spans them all.
    Within a modality the given order is kept."""
    by_modality = collections.defaultdict(list)
    for seed in seeds:
        by_modality[seed.modality].append(seed)
    queues = [by_modality[m] for m in MODALITIES if by_modality[m]]
    order = []
    for turn in range(max((len(q) for q in queues), default=0)):
        order += [q[turn] for q in queues if turn < len(q)]
    return order
