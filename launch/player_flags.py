"""The flags that say who plays which tasks, shared by launch.evaluate and launch.collect (each
adds its own --split default, --scaffold and --out), and the request they make."""

import pathlib
from collections.abc import Sequence

from absl import flags

from sandmle_jax.agent import strategies
from sandmle_jax.eval import cli

_TASKS = flags.DEFINE_string("tasks", None, "Task dir, task store or folder of tasks.",
                             required=True)
_POLICY = flags.DEFINE_enum("policy", "reference", list(cli.POLICIES), "Who plays.")
_MODEL_DIR = flags.DEFINE_string("model_dir", None, "HF dir (weights and/or tokenizer).")
_TIER = flags.DEFINE_enum("tier", "tuned", list(strategies.AGENT_TIERS),
                          "Reference agent tier (tuned: the best of linear, forest and boosting "
                          "by 3-fold cross-validation).")
_URLS = flags.DEFINE_list("sglang_urls", [], "SGLang server URLs (policy=sglang).")
_BASE_URL = flags.DEFINE_string("openai_base_url", None, "e.g. http://host:30000/v1.")
_MODEL = flags.DEFINE_string("openai_model", "default", "Model name at the endpoint.")
_SEEDS = flags.DEFINE_integer("seeds", 1, "Episodes per task.", lower_bound=1)


def request(split: str, scaffolds: Sequence[str], out: pathlib.Path) -> cli.EvalRequest:
    """The request these flags describe ('' split = all tasks)."""
    return cli.EvalRequest(
        tasks=_TASKS.value, split=split or None, policy=_POLICY.value,
        model_dir=_MODEL_DIR.value, tier=_TIER.value, sglang_urls=tuple(_URLS.value),
        openai_base_url=_BASE_URL.value, openai_model=_MODEL.value, seeds=_SEEDS.value,
        scaffolds=tuple(scaffolds), out=out)
