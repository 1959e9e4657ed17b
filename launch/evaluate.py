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

from launch import player_flags
from sandmle_jax import paths
from sandmle_jax.eval import cli
from sandmle_jax.monitoring import console
from sandmle_jax.parallel import host_memory

_CONFIG = config_flags.DEFINE_config_file("config", None, "Recipe for agent and sandbox limits.",
                                          lock_config=True)
_SPLIT = flags.DEFINE_string("split", "validation", "Split of a task store ('' = all tasks).")
_SCAFFOLD = flags.DEFINE_list("scaffold", ["sandmle"],
                              f"Scaffold(s) to play in, of {sorted(cli.SCAFFOLDS)}; several are "
                              "compared side by side in one report.")
_OUT = flags.DEFINE_string("out", None, "Where report.json, plots/ and logs/ go.",
                           required=True)


def main(argv):
    del argv
    host_memory.keep_freed_memory_from_flags()
    out = paths.absolute(_OUT.value)
    request = player_flags.request(_SPLIT.value, tuple(_SCAFFOLD.value), out)
    cli.check_request(_CONFIG.value, request)
    console.log_to(out / "logs")
    asyncio.run(cli.evaluate(_CONFIG.value, request))


if __name__ == "__main__":
    flags.mark_flag_as_required("config")
    console.run_launcher(main)
