"""The procedural Technical Writer: description.md from the DNA and the domain's vocabulary.

It states what a row is, the files and columns, what the target means, the metric and its
direction, and the submission format. It never sees the hidden rule, and it prints no test id
and no answer, so the description gate has nothing to catch in its output.
"""

from __future__ import annotations

import pandas as pd

from sandmle_jax.synth.domains import Domain
from sandmle_jax.synth.dna import TaskDNA
from sandmle_jax.synth.synthesis import TaskData


def title(dna: TaskDNA, domain: Domain, data: TaskData) -> str:
    target = ", ".join(data.baseline.train_targets)
    return f"{domain.name.replace('_', ' ').title()}: predict {target} for each {domain.entity}"


def _ticked(names) -> str:
    """Column names as code, comma-separated."""
    return ", ".join(f"`{name}`" for name in names)


def _target_text(dna: TaskDNA, domain: Domain, data: TaskData) -> str:
    spec = data.baseline
    target = spec.train_targets[0]
    if dna.task_type == "binary":
        values = sorted(data.train[target].astype(str).unique())
        meaning = (f"1 for {domain.binary[2]}, 0 for {domain.binary[1]}"
                   if spec.output == "probability" else f"one of {values}")
        return f"`{target}`: {meaning}."
    if dna.task_type == "multiclass":
        classes = spec.classes or tuple(sorted(data.train[target].astype(str).unique()))
        return f"`{target}`: the {domain.entity}'s class, one of {', '.join(classes)}."
    if dna.task_type == "multilabel":
        return (f"{_ticked(spec.train_targets)}: independent 0/1 flags; a "
                f"{domain.entity} can have any number of them.")
    if dna.task_type == "ordinal":
        return (f"`{target}`: an integer grade from 0 (lowest) to {dna.n_classes - 1} "
                f"(highest).")
    if dna.task_type == "ranking":
        items = sorted({i for cell in data.train[target] for i in str(cell).split()})
        return (f"`{target}`: the space-separated {domain.items[0]}s that turned out relevant for "
                f"the {domain.entity}. Candidate {domain.items[0]}s: {', '.join(items)}. Rank up "
                f"to {spec.k} of them, most relevant first.")
    if dna.task_type == "forecasting":
        return (f"{_ticked(spec.train_targets)}: the next "
                f"{len(spec.train_targets)} readings of the series, in order.")
    units = dict(domain.regression)
    return ", ".join(f"`{c}` (a real number, in {units.get(c, 'its own units')})"
                     for c in spec.train_targets) + "."


def _image_line(dna: TaskDNA, domain: Domain, column: str) -> str:
    side = max(int(dna.input_shape.get("side", 32)), 32)
    return (f"- `{column}`: the path (under the data folder) of a {side}x{side} colour PNG from "
            f"the {domain.image[0]}; images show {domain.image[1]} on a textured background.")


def _table_lines(data: TaskData, columns: list[str]) -> list[str]:
    lines = []
    for column in columns:
        series = data.train[column]
        kind = "numeric" if pd.api.types.is_numeric_dtype(series) else "categorical"
        gaps = " (may be empty)" if series.isna().any() else ""
        lines.append(f"- `{column}`: {kind}{gaps}")
    return lines


def _inputs_text(dna: TaskDNA, domain: Domain, data: TaskData) -> list[str]:
    spec = data.baseline
    note = f"- `text`: a free-text note written about the {domain.entity}."
    if spec.feature_kind == "text":
        return [note]
    if spec.feature_kind == "image":
        return [_image_line(dna, domain, "image")]
    if spec.feature_kind == "audio":
        return [f"- `audio`: the path (under the data folder) of a half-second mono WAV clip "
                f"(8 kHz, 16-bit) recorded at the {domain.entity}."]
    if spec.feature_kind == "timeseries":
        first, last = spec.feature_columns[0], spec.feature_columns[-1]
        return [f"- `{first}` .. `{last}`: {len(spec.feature_columns)} consecutive readings of "
                f"the {domain.signal[0]} ({domain.signal[1]}), oldest first."]
    if spec.feature_kind == "multimodal":
        extra = [c for c in spec.feature_columns if c in ("text", "image")]
        table = [c for c in spec.feature_columns if c not in extra]
        return _table_lines(data, table) + [
            note if c == "text" else _image_line(dna, domain, c) for c in extra]
    lines = _table_lines(data, list(spec.feature_columns))
    if spec.feature_kind == "graph":
        lines.append(f"- `edges.csv`: the links between {domain.entity}s, one undirected edge "
                     "per row (`source`, `target`: ids of train or test rows).")
    return lines


_FILES = {"images/": "one PNG per row, named in the `image` column",
          "audio/": "one WAV clip per row, named in the `audio` column",
          "edges.csv": "the graph over all rows (train and test), one edge per row"}


# Descriptions come in the layouts real competitions use, so that a policy trained on generated
# tasks meets a description by what it says, not by where our one template put it.
STYLES = ("sections", "kaggle", "brief", "terse")


def describe(dna: TaskDNA, domain: Domain, data: TaskData) -> str:
    """description.md in one of STYLES, drawn from the task's seed; every style states the
    files, inputs, target, metric and direction, and the submission's columns."""
    spec = data.baseline
    direction = "lower is better" if dna.lower_is_better else "higher is better"
    header = ",".join([spec.id_column, *spec.submission_columns])
    example = ",".join(["<id>", *(["<prediction>"] * len(spec.submission_columns))])
    files = [f"- `train.csv`: {len(data.train)} rows (one per {domain.entity}) with inputs and "
             "targets.",
             f"- `test.csv`: {len(data.test)} rows with inputs only.",
             "- `sample_submission.csv`: a valid submission in the expected format."]
    for name, what in _FILES.items():
        if any(path.startswith(name) for path in data.files):
            files.append(f"- `{name}`: {what}.")
    what = {"probability": "the probability that the target is 1",
            "label": "the predicted label", "ordinal": "the predicted integer grade",
            "class_probabilities": "one probability per class (each row summing to 1)",
            "multilabel": "one probability per flag", "value": "the predicted value(s)",
            "ranked_list": f"up to {spec.k} space-separated ids, most relevant first"}[spec.output]
    setting = domain.name.replace('_', ' ')
    style = STYLES[dna.seed % len(STYLES)]
    if style == "kaggle":
        return "\n".join([
            f"# {title(dna, domain, data)}", "",
            "## Description",
            f"We collected records of {domain.entity}s from the {setting} domain. Your job is to "
            f"build a model that predicts {', '.join(spec.train_targets)} from the other fields.",
            "", "## Data", *files, "", "Columns:", *_inputs_text(dna, domain, data), "",
            f"Target: {_target_text(dna, domain, data)}", "",
            "## Evaluation",
            f"Submissions are evaluated on {dna.metric} ({direction}).", "",
            "### Submission File",
            f"For each `{spec.id_column}` in the test set, give {what}. The file should "
            "contain a header and have the following format:", "",
            "```", header, example, "```", ""])
    if style == "terse":  # a dataset's one-paragraph README: what to predict, and the grade
        inputs = _ticked(spec.feature_columns)
        # What a column of notes, media paths or readings holds, and the graph's edges file,
        # is said even here: the data listing cannot tell.
        media = [] if spec.feature_kind == "tabular" else ["", *_inputs_text(dna, domain, data)]
        return "\n".join([
            f"# {title(dna, domain, data)}", "",
            f"Goal: {_ticked(spec.train_targets)} for each "
            f"`{spec.id_column}` of test.csv, from {inputs} ({len(data.train)} training rows). "
            f"Graded by {dna.metric}, {direction}.", *media, ""])
    if style == "brief":
        return "\n".join([
            f"# {title(dna, domain, data)}", "",
            f"Predict {', '.join(spec.train_targets)} for each {domain.entity} of test.csv from "
            f"train.csv ({len(data.train)} rows); metric: {dna.metric} ({direction}).", "",
            "Inputs:", *_inputs_text(dna, domain, data), "",
            f"Target {_target_text(dna, domain, data)} Submit {what} per `{spec.id_column}`, "
            "laid out as sample_submission.csv.", ""])
    return "\n".join([
        f"# {title(dna, domain, data)}", "",
        "## Overview",
        f"Each row describes one {domain.entity} from a {setting} setting. "
        f"Learn from the training rows and predict the target for every test row.", "",
        "## Files", *files, "",
        "## Inputs", *_inputs_text(dna, domain, data), "",
        "## Target", _target_text(dna, domain, data), "",
        "## Evaluation",
        f"Submissions are scored with `{dna.metric}` on the test rows ({direction}).", "",
        "## Submission format",
        f"A CSV with a header and one row per test `{spec.id_column}`, holding {what}:", "",
        "```", header, example, "```", ""])
