"""Train an agent: `python -m launch.train --config=configs/tiny_cpu.py --workdir=DIR`.

The workdir holds everything the run writes; the same command resumes an interrupted run.
"""

import json

from absl import app, flags
from ml_collections import config_flags

from sandmle_jax.monitoring.logging_setup import setup_logging
from sandmle_jax.parallel import distributed
from sandmle_jax.parallel import host_memory
from sandmle_jax.rl import trainer

_CONFIG = config_flags.DEFINE_config_file("config", None, "Recipe (configs/*.py).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where the run writes and resumes.",
                               required=True)


def main(argv):
    del argv
    host_memory.keep_freed_memory_from_flags()
    distributed.initialize_from_flags()
    setup_logging(_WORKDIR.value)
    report = trainer.train(_CONFIG.value, _WORKDIR.value)
    summary = {k: report[k] for k in ("hf_export", "checkpoints", "metrics", "plots") if k in report}
    for name in ("reference", "before", "after"):
        if name in report:
            summary[name] = {k: round(v["mean"], 3) for k, v in report[name]["overall"].items()}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    flags.mark_flag_as_required("config")
    app.run(main)
