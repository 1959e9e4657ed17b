"""Generate verified synthetic tasks.

    python -m launch.generate --config=configs/synth.py --out=DIR [--num_tasks=N] [--seeds_dir=DIR]

--seeds_dir grows the tasks from your own seeds instead of the shipped ones: a folder of
competitions in MLE-bench's layout (`<id>/config.yaml`, with `<id>/prepared/` beside it or under
--seeds_data_dir) or of task directories. Each seed's DNA is read off its files and kept by
every task grown from it; a seed that cannot be read is reported on one line and the others go
on.

Prints the yield and diversity report as JSON (also written to DIR/report.json); exit status 1
when fewer tasks than asked were kept, 2 for a bad flag, config or set-up. Rerunning with the
same DIR resumes: finished candidates are skipped.
"""

import json

from absl import flags
from ml_collections import config_flags

from sandmle_jax import paths
from sandmle_jax.monitoring import console
from sandmle_jax.parallel import host_memory
from sandmle_jax.synth import pipeline

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/synth.py).",
                                          lock_config=True)
_OUT = flags.DEFINE_string("out", None, "Output directory (the task store).", required=True)
_SEEDS_DIR = flags.DEFINE_string("seeds_dir", None, "Folder of real seeds (overrides "
                                  "config.seeds_dir).")
_SEEDS_DATA_DIR = flags.DEFINE_string("seeds_data_dir", None, "Where the seed competitions' "
                                       "<id>/prepared/ data lies, if not inside --seeds_dir.")
_NUM_TASKS = flags.DEFINE_integer("num_tasks", None, "Verified tasks to keep (overrides config).",
                                  lower_bound=1)


def main(argv):
    del argv
    host_memory.keep_freed_memory_from_flags()
    out = paths.absolute(_OUT.value)
    config = _CONFIG.value
    if _SEEDS_DIR.value:
        config.seeds_dir = str(paths.absolute(_SEEDS_DIR.value))
    if _SEEDS_DATA_DIR.value:
        config.seeds_data_dir = str(paths.absolute(_SEEDS_DATA_DIR.value))
    pipeline.validate_config(config)
    console.log_to(out / "logs")
    report = pipeline.generate(config, out, num_tasks=_NUM_TASKS.value)
    print(json.dumps({k: v for k, v in report.items() if k != "rejections"}, indent=2))
    if report["kept"] < report["requested"]:
        console.stage(f"kept {report['kept']} of {report['requested']} tasks; most common "
                      f"rejection: {pipeline.most_common_rejection(report)} "
                      f"(all reasons in {out / 'report.json'})")
        return 1
    return 0


if __name__ == "__main__":
    flags.mark_flag_as_required("config")
    console.run_launcher(main)
