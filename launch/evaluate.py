"""Evaluate a policy on a task set: `python -m launch.evaluate --config=configs/tiny_cpu.py
--tasks=DIR --policy=embedded --model_dir=HF_DIR --out=DIR`.

Policies: `reference` (the scripted agent), `embedded` (an HF Qwen3 directory on the JAX engine,
e.g. a run's hf_export/), `sglang` (running SGLang servers), `openai` (any OpenAI-compatible chat
endpoint). Writes report.json (MLE-bench-style summary) and plots/ under --out.
"""

import asyncio
import json
import pathlib

from absl import app, flags
from ml_collections import config_flags

from sandmle_jax.eval import cli
from sandmle_jax.parallel import host_memory

_CONFIG = config_flags.DEFINE_config_file("config", None, "Recipe for agent and sandbox limits.",
                                          lock_config=True)
_TASKS = flags.DEFINE_string("tasks", None, "Task dir, task store or folder of tasks.",
                             required=True)
_SPLIT = flags.DEFINE_string("split", "validation", "Split of a task store ('' = all tasks).")
_POLICY = flags.DEFINE_enum("policy", "reference", list(cli.POLICIES), "Who plays.")
_MODEL_DIR = flags.DEFINE_string("model_dir", None, "HF dir (weights and/or tokenizer).")
_TIER = flags.DEFINE_enum("tier", "boosting", ["constant", "linear", "forest", "boosting"],
                          "Reference agent tier.")
_URLS = flags.DEFINE_list("sglang_urls", [], "SGLang server URLs (policy=sglang).")
_BASE_URL = flags.DEFINE_string("openai_base_url", None, "e.g. http://host:30000/v1.")
_MODEL = flags.DEFINE_string("openai_model", "default", "Model name at the endpoint.")
_SEEDS = flags.DEFINE_integer("seeds", 1, "Episodes per task.")
_OUT = flags.DEFINE_string("out", None, "Where report.json and plots go.", required=True)


def main(argv):
    del argv
    host_memory.keep_freed_memory_from_flags()
    summary, _ = asyncio.run(cli.evaluate(
        _CONFIG.value, tasks=_TASKS.value, split=_SPLIT.value or None, policy=_POLICY.value,
        model_dir=_MODEL_DIR.value, tier=_TIER.value, sglang_urls=_URLS.value,
        openai_base_url=_BASE_URL.value, openai_model=_MODEL.value, seeds=_SEEDS.value,
        out=pathlib.Path(_OUT.value)))
    print(json.dumps({k: round(v["mean"], 3) for k, v in summary["overall"].items()}, indent=2))


if __name__ == "__main__":
    flags.mark_flag_as_required("config")
    app.run(main)
