"""Generate verified synthetic tasks.

    python -m launch.generate --config=configs/synth.py --out=DIR [--num_tasks=N]

Prints the yield and diversity report as JSON (also written to DIR/report.json). Rerunning with
the same DIR resumes: finished candidates are skipped.
"""

import json

from absl import app, flags
from ml_collections import config_flags

from sandmle_jax.parallel import host_memory
from sandmle_jax.synth import pipeline

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/synth.py).")
_OUT = flags.DEFINE_string("out", None, "Output directory (the task store).", required=True)
_NUM_TASKS = flags.DEFINE_integer("num_tasks", None, "Verified tasks to keep (overrides config).")


def main(argv):
    del argv
    host_memory.keep_freed_memory_from_flags()
    report = pipeline.generate(_CONFIG.value, _OUT.value, num_tasks=_NUM_TASKS.value)
    print(json.dumps({k: v for k, v in report.items() if k != "rejections"}, indent=2))
    return 0 if report["kept"] >= report["requested"] else 1


if __name__ == "__main__":
    app.run(main)
