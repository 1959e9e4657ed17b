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

from sandmle_jax import paths
from sandmle_jax.agent import strategies
from sandmle_jax.errors import ConfigError
from sandmle_jax.eval import cli
from sandmle_jax.monitoring import console
from sandmle_jax.parallel import host_memory
from sandmle_jax.rl import collect

_CONFIG = config_flags.DEFINE_config_file("config", None, "Recipe for agent and sandbox limits.",
                                          lock_config=True)
_TASKS = flags.DEFINE_string("tasks", None, "Task dir, task store or folder of tasks.",
                             required=True)
_SPLIT = flags.DEFINE_string("split", "train", "Split of a task store ('' = all tasks).")
_POLICY = flags.DEFINE_enum("policy", "reference", list(cli.POLICIES), "Who plays.")
_MODEL_DIR = flags.DEFINE_string("model_dir", None, "HF dir (weights and/or tokenizer).")
_TIER = flags.DEFINE_enum("tier", "tuned", list(strategies.AGENT_TIERS),
                          "Reference agent tier (policy=reference).")
_URLS = flags.DEFINE_list("sglang_urls", [], "SGLang server URLs (policy=sglang).")
_BASE_URL = flags.DEFINE_string("openai_base_url", None, "e.g. http://host:30000/v1.")
_MODEL = flags.DEFINE_string("openai_model", "default", "Model name at the endpoint.")
_SCAFFOLD = flags.DEFINE_string("scaffold", "sandmle", f"One of {sorted(cli.SCAFFOLDS)}.")
_SEEDS = flags.DEFINE_integer("seeds", 1, "Episodes per task.", lower_bound=1)
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
    request = cli.EvalRequest(
        tasks=_TASKS.value, split=_SPLIT.value or None, policy=_POLICY.value,
        model_dir=_MODEL_DIR.value, tier=_TIER.value, sglang_urls=tuple(_URLS.value),
        openai_base_url=_BASE_URL.value, openai_model=_MODEL.value, seeds=_SEEDS.value,
        scaffolds=(_SCAFFOLD.value,), out=out)
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
