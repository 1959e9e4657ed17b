"""Seed tasks: the abstract schemas new tasks are grown from.

The shipped seeds live as JSON files in `seed_data/`, one per seed, each modelled on a real
MLE-bench competition's public metadata (modality, input shape, label cardinality, task type,
metric; the direction follows from the metric). A real task (one of ours, or a prepared MLE-bench
competition imported with `tasks.mlebench`) becomes a seed through `seed_dna.seed_from_task`,
which reads its DNA off its files and keeps it in `Seed.dna`.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
from collections.abc import Mapping
from typing import Any

from sandmle_jax import dataclass_keys
from sandmle_jax.errors import UserError
from sandmle_jax.tasks import metrics as metrics_lib

MODALITIES = ("tabular", "text", "image", "timeseries", "multimodal", "graph", "audio")
TASK_TYPES = ("binary", "multiclass", "multilabel", "regression", "ordinal", "ranking",
              "forecasting")


class SeedError(UserError, ValueError):
    """A seed spec is inconsistent; the message names the seed and the field."""


@dataclasses.dataclass(frozen=True)
class Seed:
    id: str
    modelled_on: str  # the competition whose public metadata this seed copies
    modality: str
    task_type: str
    metric: str  # a name in tasks.metrics' registry
    input_shape: Mapping[str, int]
    n_classes: int  # classes or grades; 0 where the target is not categorical
    n_targets: int  # submission target columns
    note: str = ""  # how the micro twin departs from the original, if it does
    dna: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # a real seed's SeedDNA
    source: str = ""  # a real seed's task directory (its description.md and rows)

    def __post_init__(self):
        where = f"seed {self.id!r}"
        if self.modality not in MODALITIES:
            raise SeedError(f"{where}: modality {self.modality!r} not in {MODALITIES}")
        if self.task_type not in TASK_TYPES:
            raise SeedError(f"{where}: task_type {self.task_type!r} not in {TASK_TYPES}")
        try:
            metrics_lib.get_metric(self.metric)
        except KeyError as e:
            raise SeedError(f"{where}: {e.args[0]}") from None
        if self.task_type in ("binary", "multiclass", "ordinal") and self.n_classes < 2:
            raise SeedError(f"{where}: a {self.task_type} seed needs n_classes >= 2")
        if self.n_targets < 1:
            raise SeedError(f"{where}: n_targets must be >= 1")
        object.__setattr__(self, "input_shape", dict(self.input_shape))
        object.__setattr__(self, "dna", dict(self.dna))

    @property
    def lower_is_better(self) -> bool:
        return metrics_lib.get_metric(self.metric).lower_is_better

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Seed:
        dataclass_keys.check_keys(cls, raw, f"seed {raw.get('id')!r}", error=SeedError)
        return cls(**raw)


def load_seeds() -> dict[str, Seed]:
    """Every shipped seed, by id, in sorted order."""
    seeds = {}
    for entry in sorted(importlib.resources.files("sandmle_jax.synth").joinpath("seed_data")
                        .iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".json"):
            seed = Seed.from_dict(json.loads(entry.read_text()))
            seeds[seed.id] = seed
    return seeds
