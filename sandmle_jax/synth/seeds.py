"""Seed tasks: the abstract schemas new tasks are grown from.

The shipped seeds live as JSON files in `seed_data/`, one per seed, each modelled on a real
MLE-bench competition's public metadata (modality, input shape, label cardinality, task type,
metric; the direction follows from the metric). A prepared MLE-bench competition, imported with
`tasks.mlebench.import_competition`, becomes a seed through `seed_from_task`.
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
from sandmle_jax.tasks.task import Task

MODALITIES = ("tabular", "text", "image", "timeseries")
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


def seed_from_task(task: Task, input_shape: Mapping[str, int] | None = None) -> Seed:
    """A seed from a loaded task (e.g. an imported MLE-bench competition): its schema, no story.

    The task's spec must name one of MODALITIES and TASK_TYPES (`import_competition` infers
    them from the data unless given) and a registered metric. Label cardinality comes from the answers;
    the input shape defaults to the public train.csv's column count.
    """
    spec = task.spec
    if spec.modality not in MODALITIES or spec.task_type not in TASK_TYPES:
        raise SeedError(f"task {spec.id!r}: modality={spec.modality!r}, task_type="
                        f"{spec.task_type!r}; import it with modality in {MODALITIES} and "
                        f"task_type in {TASK_TYPES}")
    n_classes = 0
    if spec.task_type in ("binary", "multiclass", "ordinal"):
        targets = task.answers[list(spec.target_columns)]
        n_classes = (len(spec.target_columns) if len(spec.target_columns) > 1
                     else int(targets.iloc[:, 0].nunique()))
    if input_shape is None:
        train = task.public_dir / "train.csv"
        width = 8
        if train.is_file():
            with train.open() as f:
                width = len(f.readline().split(","))
        input_shape = {"n_features": max(2, min(width - 1 - len(spec.target_columns), 12)),
                       "n_categorical": 1}
    return Seed(id=f"mlebench_{spec.id}", modelled_on=spec.id, modality=spec.modality,
                task_type=spec.task_type, metric=spec.metric, input_shape=input_shape,
                n_classes=n_classes, n_targets=len(spec.target_columns))
