"""A policy behind any OpenAI-compatible `/v1/chat/completions` endpoint (evaluation only),
through the shared client on the official `openai` package (rollout/openai_chat.py).

Hosted models take messages, not token ids, so the context is decoded and split back into the
chat's messages (tool results travel as user messages wrapped in <tool_response>, as Qwen3's
template renders them), and the reply is encoded with our tokenizer. That re-tokenisation is why
this policy evaluates but never trains: training needs the sampler's own tokens and log-probs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os

from sandmle_jax.agent.chat import IM_END, IM_START, ChatFormat
from sandmle_jax.agent.policy import TurnOutput, TurnRequest
from sandmle_jax.rollout.openai_chat import ChatClient


def messages_from_text(text: str) -> list[dict[str, str]]:
    """Qwen3 chat text -> [{"role", "content"}], dropping the open assistant header at the end."""
    messages = []
    for chunk in text.split(IM_START)[1:]:
        role, _, content = chunk.partition("\n")
        content = content.split(IM_END)[0]
        if content or role != "assistant":
            messages.append({"role": role.strip(), "content": content})
    if messages and messages[-1]["role"] == "assistant" and not messages[-1]["content"]:
        messages.pop()
    return messages


@dataclasses.dataclass
class OpenAIChatPolicy:
    """Turns from a chat endpoint; `reasoning` as in openai_chat (auto-detected by default)."""

    chat: ChatFormat
    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 1.0
    top_p: float = 0.95
    timeout_s: float = 600.0
    reasoning: str = "auto"

    def __post_init__(self):
        self.client = ChatClient(self.base_url, self.model,
                                 api_key=os.environ.get(self.api_key_env) or None,
                                 temperature=self.temperature, top_p=self.top_p,
                                 timeout_s=self.timeout_s, reasoning=self.reasoning)

    async def next_turn(self, request: TurnRequest) -> TurnOutput:
        messages = messages_from_text(self.chat.decode(request.context_ids))
        reply = await asyncio.to_thread(self.client.reply, messages, request.max_new_tokens)
        stopped = reply.finish_reason == "stop"
        ids = self.chat.encode(reply.text) + ([self.chat.im_end_id] if stopped else [])
        return TurnOutput(ids=tuple(ids), logprobs=(0.0,) * len(ids),
                          finish="stop" if stopped else "length",
                          weight_version=f"openai:{self.model}")
