"""Evaluate a policy on a task set: `python -m launch.evaluate --config=configs/tiny_cpu.py
--tasks=DIR --policy=embedded --model_dir=HF_DIR --out=DIR`.

Policies: `reference` (the scripted agent), `embedded` (an HF Qwen3 directory on the JAX engine,
e.g. a run's hf_export/), `sglang` (running SGLang servers), `openai` (any OpenAI-compatible chat
endpoint). Scaffolds (`--scaffold`, one or several, compared side by side): `sandmle` (the
training scaffold, the default) and `dojo` (MLE-Dojo's actions and JSON replies, through
sandmle_jax.dojo's Gymnasium environment). Writes report.json (MLE-bench-style summary per
scaffold), plots/ and logs/ under --out.
"""

import asyncio

from absl import flags
from ml_collections import config_flags

from sandmle_jax import paths
from sandmle_jax.agent import strategies
from sandmle_jax.eval import cli
from sandmle_jax.monitoring import console
from sandmle_jax.parallel import host_memory

_CONFIG = config_flags.DEFINE_config_file("config", None, "Recipe for agent and sandbox limits.",
                                          lock_config=True)
_TASKS = flags.DEFINE_string("tasks", None, "Task dir, task store or folder of tasks.",
                             required=True)
_SPLIT = flags.DEFINE_string("split", "validation", "Split of a task store ('' = all tasks).")
_POLICY = flags.DEFINE_enum("policy", "reference", list(cli.POLICIES), "Who plays.")
_MODEL_DIR = flags.DEFINE_string("model_dir", None, "HF dir (weights and/or tokenizer).")
_TIER = flags.DEFINE_enum("tier", "tuned", list(strategies.AGENT_TIERS),
                          "Reference agent tier (tuned: the best of linear, forest and boosting "
                          "by 3-fold cross-validation).")
_URLS = flags.DEFINE_list("sglang_urls", [], "SGLang server URLs (policy=sglang).")
_BASE_URL = flags.DEFINE_string("openai_base_url", None, "e.g. http://host:30000/v1.")
_MODEL = flags.DEFINE_string("openai_model", "default", "Model name at the endpoint.")
_SCAFFOLD = flags.DEFINE_list("scaffold", ["sandmle"],
                              f"Scaffold(s) to play in, of {sorted(cli.SCAFFOLDS)}; several are "
                              "compared side by side in one report.")
_SEEDS = flags.DEFINE_integer("seeds", 1, "Episodes per task.", lower_bound=1)
_OUT = flags.DEFINE_string("out", None, "Where report.json, plots/ and logs/ go.",
                           required=True)


def main(argv):
    del argv
    host_memory.keep_freed_memory_from_flags()
    out = paths.absolute(_OUT.value)
    request = cli.EvalRequest(
        tasks=_TASKS.value, split=_SPLIT.value or None, policy=_POLICY.value,
        model_dir=_MODEL_DIR.value, tier=_TIER.value, sglang_urls=tuple(_URLS.value),
        openai_base_url=_BASE_URL.value, openai_model=_MODEL.value, seeds=_SEEDS.value,
        scaffolds=tuple(_SCAFFOLD.value), out=out)
    cli.check_request(_CONFIG.value, request)
    console.log_to(out / "logs")
    asyncio.run(cli.evaluate(_CONFIG.value, request))


if __name__ == "__main__":
    flags.mark_flag_as_required("config")
    console.run_launcher(main)
