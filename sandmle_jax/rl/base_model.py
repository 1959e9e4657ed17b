"""The policy's starting point: an HF Qwen3 directory, given or built for the tiny recipe.

For real runs `model.hf_dir` names a Qwen3 checkpoint (with its tokenizer). The tiny CPU recipe
has no checkpoint to start from, so it builds one: a small BPE tokenizer trained on the text its
agent will read and write (prompts, data listings, reference solutions, tool responses), with
Qwen3's chat tokens and template, and a randomly initialised tiny Qwen3 saved in HF format.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

import jax.numpy as jnp
from flax import nnx

from sandmle_jax.agent import actions, prompts, strategies
from sandmle_jax.models import hf, small_tokenizer
from sandmle_jax.models.config import Qwen3Config
from sandmle_jax.models.qwen3 import Qwen3
from sandmle_jax.tasks.task import Task

# Tool-response phrases the agent reads but no prompt or solution contains.
_OBSERVATION_TEXT = (
    "exit code 0\n--- stdout (last 20 lines) ---\nwrote submission.csv (60, 2)\n"
    "submission.csv: exists (1520 bytes)\nsubmission.csv: not found\n"
    "killed: time limit reached after 300 s\nTraceback (most recent call last):\n"
    "ValueError KeyError invalid submission: 3 test ids missing\nsubmission.csv is valid.\n"
    "score: 0.8123 (roc_auc, higher is better); thresholds: median 0.6, bronze 0.7, silver 0.8,"
    " gold 0.9; reached: median, bronze\nerror: no action found")


def agent_corpus(tasks: Sequence[Task], max_turns: int = 15, *,
                 shared_programs: bool = False) -> list[str]:
    """The text an agent episode on these tasks is made of, for training a tokenizer
    (`shared_programs`: the reference programs' shared form, see strategies.solution_code)."""
    limits = prompts.PromptLimits(max_turns, 300,
                                  prompts.REQUIRED_LIBRARIES + prompts.OPTIONAL_LIBRARIES)
    corpus = [prompts.system_prompt(limits), prompts.system_prompt(limits, tools_inline=True),
              str(prompts.TOOL_SCHEMAS), _OBSERVATION_TEXT]
    for task in tasks:
        description = (task.public_dir / "description.md").read_text(errors="replace")
        corpus.append(prompts.task_prompt(
            description, task.public_dir, max_chars=20000,
            grading=prompts.grading_line(task.spec.metric, task.spec.lower_is_better)))
        corpus.append(actions.render_tool_call(actions.RUN_PYTHON,
                                               {"code": strategies.EXPLORE}))
        tiers = strategies.TIERS + (() if shared_programs else strategies.LIBRARY_TIERS)
        for tier in tiers:
            corpus.append(actions.render_tool_call(actions.RUN_PYTHON, {
                "code": strategies.solution_code(task, tier, shared=shared_programs)}))
    return corpus


def build_tiny_base_model(out_dir: str | pathlib.Path, tasks: Sequence[Task], *,
                          vocab_size: int, hidden_size: int, intermediate_size: int,
                          num_layers: int, num_heads: int, num_kv_heads: int, head_dim: int,
                          max_positions: int, seed: int, shared_programs: bool = False
                          ) -> pathlib.Path:
    """Trains the tokenizer, initialises a tiny Qwen3 and saves both as one HF directory."""
    out_dir = pathlib.Path(out_dir)
    tokenizer_dir = out_dir.parent / f"{out_dir.name}.tokenizer"
    tokenizer = small_tokenizer.train_small_tokenizer(
        agent_corpus(tasks, shared_programs=shared_programs), vocab_size, tokenizer_dir)
    config = Qwen3Config.tiny(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=intermediate_size,
        num_hidden_layers=num_layers, num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads, head_dim=head_dim, tie_word_embeddings=True,
        max_position_embeddings=max_positions,
        bos_token_id=None, eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id)
    model = Qwen3(config, rngs=nnx.Rngs(seed), param_dtype=jnp.float32)
    hf.save_model(model, str(out_dir), tokenizer_dir=str(tokenizer_dir))
    return out_dir
