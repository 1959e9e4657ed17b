"""Collect SFT data from a policy (a teacher): `python -m launch.collect
--config=configs/tiny_cpu.py --tasks=DIR --policy=openai --openai_base_url=URL --out=DIR
[--seeds=k --filter=valid|above_median|medal|all --student_dir=HF_DIR]`.

Plays each task `--seeds` times through the agent loop and keeps the episodes the filter passes
as chat conversations with provenance (sft.jsonl) and as rows tokenised for the student
(rows.jsonl); `launch.train --config.sft.data=DIR` trains on them. Rerunning the same command
resumes: finished episodes are not played again, failed ones are (their failure stays in
episodes.jsonl).
"""

import asyncio

from absl import flags
from ml_collections import config_flags

from launch import player_flags
from sandmle_jax import paths
from sandmle_jax.errors import ConfigError
from sandmle_jax.eval import cli
from sandmle_jax.monitoring import console
from sandmle_jax.parallel import host_memory
from sandmle_jax.rl import collect

_CONFIG = config_flags.DEFINE_config_file("config", None, "Recipe for agent and sandbox limits.",
                                          lock_config=True)
_SPLIT = flags.DEFINE_string("split", "train", "Split of a task store ('' = all tasks).")
_SCAFFOLD = flags.DEFINE_string("scaffold", "sandmle", f"One of {sorted(cli.SCAFFOLDS)}.")
_FILTER = flags.DEFINE_enum("filter", "valid", sorted(collect.FILTERS),
                            "Which episodes become SFT data.")
_STUDENT = flags.DEFINE_string("student_dir", None, "HF dir whose tokenizer rows.jsonl is "
                               "written for (default: --model_dir, else Qwen3's).")
_OUT = flags.DEFINE_string("out", None, "Where the data, collect.json and logs/ go.",
                           required=True)


def main(argv):
    del argv
    host_memory.keep_freed_memory_from_flags()
    out = paths.absolute(_OUT.value)
    request = player_flags.request(_SPLIT.value, (_SCAFFOLD.value,), out)
    cli.check_request(_CONFIG.value, request)
    collect.check(request, _FILTER.value)
    student = paths.absolute(_STUDENT.value) if _STUDENT.value else None
    if student is not None and not (student / "tokenizer_config.json").is_file():
        raise ConfigError(f"--student_dir {student}: no tokenizer there")
    console.log_to(out / "logs")
    asyncio.run(collect.collect(_CONFIG.value, request, _FILTER.value, student))


if __name__ == "__main__":
    flags.mark_flag_as_required("config")
    console.run_launcher(main)
