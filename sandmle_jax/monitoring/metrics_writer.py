"""Scalar metrics to `metrics.jsonl` (for scripts and plots) and TensorBoard event files.

JSONL is the source of truth: one object per write, `{"step": s, "time": t, ...}`, appended and
flushed, so a killed run keeps everything it logged and a resumed run appends to the same file.
Only one process of a multi-host job should write (pass `enabled=jax.process_index() == 0`).
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import time
from collections.abc import Iterator, Mapping

from tensorboardX import SummaryWriter

METRICS_FILE = "metrics.jsonl"


class MetricsWriter:
    def __init__(self, logdir: str | os.PathLike, *, tensorboard: bool = True,
                 enabled: bool = True):
        self.logdir = pathlib.Path(logdir)
        self.enabled = enabled
        self._jsonl = None
        self._tb = None
        if enabled:
            self.logdir.mkdir(parents=True, exist_ok=True)
            path = self.logdir / METRICS_FILE
            torn = path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n")
            self._jsonl = open(path, "a", encoding="utf-8")
            if torn:  # end a line cut short by a killed run, so the next row parses
                self._jsonl.write("\n")
            if tensorboard:
                self._tb = SummaryWriter(logdir=str(self.logdir / "tensorboard"))

    def write(self, step: int, metrics: Mapping[str, float | int | bool]) -> None:
        """Logs numbers at `step`; non-finite values are kept in JSONL as null, and noted."""
        if not self.enabled:
            return
        row = {"step": int(step), "time": time.time()}
        for key, value in metrics.items():
            value = float(value)
            row[key] = value if math.isfinite(value) else None
            if self._tb is not None and math.isfinite(value):
                self._tb.add_scalar(key, value, global_step=int(step))
        self._jsonl.write(json.dumps(row) + "\n")
        self._jsonl.flush()
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def __enter__(self) -> MetricsWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_metrics(logdir: str | os.PathLike) -> Iterator[dict]:
    """The rows a MetricsWriter wrote, in order; a torn last line (killed mid-write) is skipped."""
    path = pathlib.Path(logdir) / METRICS_FILE
    if not path.exists():
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue
