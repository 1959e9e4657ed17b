"""Train an agent: `python -m launch.train --config=configs/tiny_cpu.py --workdir=DIR`.

The workdir holds everything the run writes; the same command resumes an interrupted run. The
config is checked before anything is written; the console shows stage lines and the final
table, the full log is in DIR/logs/.
"""

from absl import flags
import jax
from ml_collections import config_flags

from sandmle_jax import paths
from sandmle_jax.eval import report as report_lib
from sandmle_jax.monitoring import console
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
    workdir = paths.absolute(_WORKDIR.value)
    config = trainer.checked_config(_CONFIG.value)
    console.log_to(workdir / "logs")
    distributed.initialize_from_flags()
    report = trainer.train(config, workdir)
    if jax.process_index():
        return  # process 0 tells the user
    rows = trainer.evaluations(report)
    if rows:
        console.stage("held-out validation tasks, mean ± SEM:\n" +
                      report_lib.comparison_table(rows))
    console.stage(f"outputs in {workdir}: hf_export/ (the policy), checkpoints/, "
                  "metrics/metrics.jsonl, plots/, report.json, logs/")


if __name__ == "__main__":
    flags.mark_flag_as_required("config")
    console.run_launcher(main)
