"""The small tokenizer round-trips text, keeps Qwen3's chat tokens whole, and renders the real
Qwen3 chat template, so the agent's token-level chat works on it unchanged."""

import pytest

from sandmle_jax.agent import prompts
from sandmle_jax.agent.chat import ChatFormat
from sandmle_jax.models import small_tokenizer

CORPUS = ["import pandas as pd\ntrain = pd.read_csv('train.csv')\nprint(train.head())\n",
          "The model predicts the probability that the label is 1.", "score: 0.81 (roc_auc)"] * 50


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return small_tokenizer.train_small_tokenizer(CORPUS, 600,
                                                 tmp_path_factory.mktemp("tok"))


def test_vocabulary_and_round_trip(tokenizer):
    assert len(tokenizer) <= 600
    text = "import numpy as np  # unseen words: zebra ünïcode 漢字\n\tx = 1"
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text
    for token, _ in small_tokenizer.CHAT_TOKENS:
        ids = tokenizer.encode(f"a{token}b", add_special_tokens=False)
        assert tokenizer.convert_tokens_to_ids(token) in ids
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"


def test_chat_template_matches_qwen3(tokenizer, qwen_tokenizer):
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "task"},
                {"role": "assistant", "content": "<think>\nx\n</think>\n\n<answer>y</answer>"},
                {"role": "tool", "content": "out"}]
    ours = tokenizer.apply_chat_template(messages, tools=list(prompts.TOOL_SCHEMAS),
                                         tokenize=False, add_generation_prompt=True)
    real = qwen_tokenizer.apply_chat_template(messages, tools=list(prompts.TOOL_SCHEMAS),
                                              tokenize=False, add_generation_prompt=True)
    assert ours == real
    chat = ChatFormat.from_tokenizer(tokenizer)
    ids = chat.prompt_ids("sys", "task", prompts.TOOL_SCHEMAS)
    assert chat.decode(ids) == qwen_tokenizer.apply_chat_template(
        messages[:2], tools=list(prompts.TOOL_SCHEMAS), tokenize=False, add_generation_prompt=True)
