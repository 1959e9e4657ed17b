"""The procedural Developer's data: DNA -> train/test/answers/sample/gold, byte-deterministic.

`synthesize(dna)` draws everything from `dna.seed` (one independent stream per part: inputs,
rule, targets, ids), so the same DNA gives the same bytes, and the full-scale twin (the same DNA
at 50k+ rows) keeps the rule and the noise process. Ids are random distinct integers, so no
ordering of rows or ids tells anything about the target.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from sandmle_jax.synth import domains as domains_lib
from sandmle_jax.synth import generators as generators_lib
from sandmle_jax.synth import rules as rules_lib
from sandmle_jax.synth import targets as targets_lib
from sandmle_jax.synth.baselines import BaselineSpec
from sandmle_jax.synth.dna import TaskDNA
from sandmle_jax.synth.inputs import EDGES_FILE

ID_COLUMN = "id"


@dataclasses.dataclass(frozen=True)
class TaskData:
    """A task's data before thresholds and description exist."""

    train: pd.DataFrame  # id, features, train targets
    test: pd.DataFrame  # id, features
    answers: pd.DataFrame  # id, submission target columns (hidden)
    sample: pd.DataFrame  # id, constant sample predictions
    gold: pd.DataFrame  # id, the gold reference predictions (hidden)
    files: Mapping[str, bytes]  # extra public inputs by path under public/ (images/, edges.csv)
    baseline: BaselineSpec
    rule: Mapping[str, Any]  # the hidden rule, for the record (never published)
    rule_parameters: tuple[float, ...]  # its numbers, for the description gate

    @property
    def id_column(self) -> str:
        return self.baseline.id_column

    @property
    def target_columns(self) -> tuple[str, ...]:
        return self.baseline.submission_columns

    def public_files(self) -> dict[str, Any]:
        return {"train.csv": self.train, "test.csv": self.test,
                "sample_submission.csv": self.sample, **self.files}

    def private_files(self) -> dict[str, Any]:
        return {"answers.csv": self.answers}

    def digest(self) -> str:
        """sha256 over every data file's bytes as written: equal digests, equal tasks."""
        h = hashlib.sha256()
        files = {**self.public_files(), **self.private_files()}
        for name in sorted(files):
            content = files[name]
            if isinstance(content, pd.DataFrame):
                buffer = io.StringIO()
                content.to_csv(buffer, index=False)
                content = buffer.getvalue().encode()
            h.update(name.encode() + b"\0" + content + b"\0")
        return h.hexdigest()


def synthesize(dna: TaskDNA) -> TaskData:
    inputs_rng, rule_rng, target_rng, id_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(dna.seed).spawn(4))
    domain = domains_lib.get_domain(dna.domain)
    n = dna.n_train + dna.n_test
    inputs = generators_lib.GENERATORS[dna.modality](dna, domain, n, inputs_rng)
    width = targets_lib.signal_width(dna)
    rule = None
    signals = np.zeros((n, 0))
    if width:
        rule = rules_lib.sample_rule(rule_rng, inputs.latent.shape[1], width,
                                     nonlinearity=dna.nonlinearity,
                                     interactions=dna.interactions,
                                     informative=inputs.informative,
                                     inputs_per_output=dna.rule_inputs)
        signals = rule.apply(inputs.latent)
    made = targets_lib.make_targets(dna, domain, signals, target_rng, forecast=inputs.forecast)

    ids = id_rng.choice(900_000, size=n, replace=False) + 100_000
    features = inputs.features.copy()
    files: dict[str, bytes] = {}
    if inputs.file_column:
        paths = [f"{inputs.file_folder}/{i}{inputs.file_suffix}" for i in ids]
        features[inputs.file_column] = paths
        files = dict(zip(paths, inputs.files))
    if inputs.edges is not None:
        edges = pd.DataFrame({"source": ids[inputs.edges[:, 0]], "target": ids[inputs.edges[:, 1]]})
        files[EDGES_FILE] = edges.to_csv(index=False).encode()
    train_slice, test_slice = slice(0, dna.n_train), slice(dna.n_train, n)
    id_frame = pd.DataFrame({ID_COLUMN: ids})
    everything = pd.concat([id_frame, features.reset_index(drop=True)], axis=1)
    train = pd.concat([everything.iloc[train_slice].reset_index(drop=True),
                       made.train_columns.iloc[train_slice].reset_index(drop=True)], axis=1)
    test = everything.iloc[test_slice].reset_index(drop=True)

    def test_part(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.concat([id_frame.iloc[test_slice].reset_index(drop=True),
                          frame.iloc[test_slice].reset_index(drop=True)], axis=1)

    sample = pd.DataFrame({ID_COLUMN: test[ID_COLUMN]})
    for column, value in made.sample.items():
        sample[column] = value
    baseline = BaselineSpec(
        id_column=ID_COLUMN, feature_kind=inputs.feature_kind,
        feature_columns=tuple(features.columns), train_targets=tuple(made.train_columns.columns),
        submission_columns=tuple(made.answers.columns), output=made.output, classes=made.classes,
        k=made.k, non_negative=made.non_negative)
    return TaskData(
        train=train, test=test, answers=test_part(made.answers), sample=sample,
        gold=test_part(made.gold), files=files, baseline=baseline,
        rule=rule.to_dict() if rule else {"forecast": "noise-free continuation of each series"},
        rule_parameters=tuple(rule.parameters()) if rule else ())
