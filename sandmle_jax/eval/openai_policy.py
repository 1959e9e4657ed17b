"""A policy behind any OpenAI-compatible `/v1/chat/completions` endpoint (evaluation only).

Hosted models take messages, not token ids, so the context is decoded and split back into the
chat's messages (tool results travel as user messages wrapped in <tool_response>, as Qwen3's
template renders them), and the reply is encoded with our tokenizer. That re-tokenisation is why
this policy evaluates but never trains: training needs the sampler's own tokens and log-probs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os

import requests

from sandmle_jax.agent.chat import IM_END, IM_START, ChatFormat
from sandmle_jax.agent.policy import TurnOutput, TurnRequest


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
    chat: ChatFormat
    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 1.0
    top_p: float = 0.95
    timeout_s: float = 600.0

    def _post(self, messages: list[dict[str, str]], max_tokens: int) -> tuple[str, str]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        response = requests.post(
            self.base_url.rstrip("/") + "/chat/completions", headers=headers,
            timeout=self.timeout_s,
            json={"model": self.model, "messages": messages, "max_tokens": max_tokens,
                  "temperature": self.temperature, "top_p": self.top_p})
        response.raise_for_status()
        choice = response.json()["choices"][0]
        return choice["message"].get("content") or "", choice.get("finish_reason") or "stop"

    async def next_turn(self, request: TurnRequest) -> TurnOutput:
        messages = messages_from_text(self.chat.decode(request.context_ids))
        text, finish = await asyncio.to_thread(self._post, messages, request.max_new_tokens)
        ids = self.chat.encode(text) + ([self.chat.im_end_id] if finish == "stop" else [])
        return TurnOutput(ids=tuple(ids), logprobs=(0.0,) * len(ids),
                          finish="stop" if finish == "stop" else "length",
                          weight_version=f"openai:{self.model}")
