"""Tokenizer and chat template from a model directory (offline; files beside config.json)."""

import os
import shutil
from typing import Any

from sandmle_jax.errors import ConfigError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
                   "special_tokens_map.json", "added_tokens.json", "chat_template.jinja",
                   "generation_config.json")


def import_transformers():
    """transformers, imported when first needed (it takes seconds) and without its advice to
    install PyTorch: our models are JAX, and only tokenizers come from transformers here."""
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    import transformers
    return transformers


def load_tokenizer(model_dir: str):
    """`transformers.AutoTokenizer` from local files only (never the network)."""
    if not os.path.isfile(os.path.join(model_dir, "tokenizer_config.json")):
        raise ConfigError(f"{model_dir} has no tokenizer_config.json; copy the tokenizer files "
                          "of the base model into it")
    return import_transformers().AutoTokenizer.from_pretrained(model_dir, local_files_only=True)


def chat_token_ids(tokenizer, messages: list[dict[str, Any]], *, add_generation_prompt: bool = True,
                   enable_thinking: bool = True) -> list[int]:
    """Token ids of a conversation under the model's chat template (Qwen3: `<think>` aware).

    With enable_thinking=False Qwen3's template pre-fills an empty `<think>\\n\\n</think>` block.
    """
    text = tokenizer.apply_chat_template(messages, tokenize=False,
                                         add_generation_prompt=add_generation_prompt,
                                         enable_thinking=enable_thinking)
    return tokenizer.encode(text, add_special_tokens=False)


def copy_tokenizer_files(src_dir: str, dst_dir: str) -> list[str]:
    """Copies the tokenizer files present in src_dir; returns their names."""
    copied = []
    for name in TOKENIZER_FILES:
        src = os.path.join(src_dir, name)
        if os.path.isfile(src):
            shutil.copyfile(src, os.path.join(dst_dir, name))
            copied.append(name)
    return copied
