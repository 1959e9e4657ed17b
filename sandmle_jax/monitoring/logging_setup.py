"""Send absl logging to stderr and to `<workdir>/logs/`, so a run's log lives beside its outputs."""

from __future__ import annotations

import os
import pathlib

from absl import logging


def setup_logging(workdir: str | os.PathLike | None, *, verbosity: str = "info") -> None:
    logging.set_verbosity(verbosity)
    logging.set_stderrthreshold(verbosity)
    if workdir is not None:
        log_dir = pathlib.Path(workdir) / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        logging.get_absl_handler().use_absl_log_file(log_dir=str(log_dir))
