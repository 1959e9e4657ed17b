"""A chat client for any OpenAI-compatible `/v1/chat/completions` endpoint (SGLang, vLLM, hosted
APIs), on the official `openai` package: its retries (connection errors, 408, 409, 429, 5xx,
with backoff), timeouts and error types.

Reasoning models refuse `temperature` and `max_tokens` (OpenAI answers 400 "Unsupported
parameter"/"Unsupported value"). `reasoning` chooses the request style: "off" sends
temperature, top_p and max_tokens; "on" sends neither sampling setting and
`max_completion_tokens`; "auto" (the default) starts with "off" and switches to "on" for good the
first time the endpoint refuses such a parameter, retrying that request at once.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping, Sequence

import openai

Message = Mapping[str, str]
REASONING = ("auto", "on", "off")
_REFUSED_PARAMETER = re.compile(r"unsupported (parameter|value)|not supported|does not support",
                                re.IGNORECASE)
_SAMPLING = ("temperature", "top_p", "max_tokens")


class ChatError(RuntimeError):
    """The endpoint refused or failed; the message says how."""


@dataclasses.dataclass(frozen=True)
class Reply:
    text: str
    finish_reason: str  # "stop", "length", ...


def refuses_sampling_parameters(error: openai.BadRequestError) -> bool:
    """Whether a 400 is a reasoning model refusing temperature / top_p / max_tokens."""
    body = error.body if isinstance(error.body, Mapping) else {}
    code = str(body.get("code") or getattr(error, "code", "") or "")
    param = str(body.get("param") or getattr(error, "param", "") or "")
    text = f"{error.message} {code}"
    return (code in ("unsupported_parameter", "unsupported_value") or bool(
        _REFUSED_PARAMETER.search(text))) and (param in _SAMPLING or any(
            name in text for name in _SAMPLING))


class ChatClient:
    def __init__(self, base_url: str, model: str, *, api_key: str | None = None,
                 temperature: float = 0.7, top_p: float | None = None, max_tokens: int = 4096,
                 timeout_s: float = 300.0, retries: int = 3, reasoning: str = "auto"):
        if reasoning not in REASONING:
            raise ValueError(f"reasoning must be one of {REASONING}, got {reasoning!r}")
        self.base_url, self.model = base_url.rstrip("/"), model
        self.temperature, self.top_p, self.max_tokens = temperature, top_p, max_tokens
        self.reasoning = reasoning
        # An endpoint without keys (SGLang by default) ignores the placeholder.
        self._client = openai.OpenAI(base_url=self.base_url, api_key=api_key or "EMPTY",
                                     timeout=timeout_s, max_retries=retries)

    @classmethod
    def from_options(cls, options: Mapping) -> ChatClient:
        """From a config's `llm` section (configs/synth.py); the key from `api_key_env`."""
        return cls(options["base_url"], options["model"],
                   api_key=os.environ.get(options["api_key_env"]) or None,
                   temperature=float(options["temperature"]),
                   max_tokens=int(options["max_tokens"]), timeout_s=float(options["timeout_s"]),
                   reasoning=str(options.get("reasoning", "auto")))

    def _arguments(self, max_tokens: int) -> dict:
        if self.reasoning == "on":
            return {"max_completion_tokens": max_tokens}
        arguments = {"temperature": self.temperature, "max_tokens": max_tokens}
        if self.top_p is not None:
            arguments["top_p"] = self.top_p
        return arguments

    def reply(self, messages: Sequence[Message], max_tokens: int | None = None) -> Reply:
        """One completion of `messages`; ChatError when the endpoint refuses or cannot be
        reached after the retries."""
        limit = max_tokens or self.max_tokens
        where = f"{self.base_url}/chat/completions"
        try:
            try:
                completion = self._client.chat.completions.create(
                    model=self.model, messages=list(messages), **self._arguments(limit))
            except openai.BadRequestError as e:
                if self.reasoning != "auto" or not refuses_sampling_parameters(e):
                    raise
                self.reasoning = "on"  # a reasoning model: ask it its way from now on
                completion = self._client.chat.completions.create(
                    model=self.model, messages=list(messages), **self._arguments(limit))
        except openai.APIStatusError as e:
            raise ChatError(f"{where} answered {e.status_code}: {e.message}") from None
        except openai.APIConnectionError as e:
            raise ChatError(f"cannot reach {where}: {e}") from None
        try:
            choice = completion.choices[0]
        except (IndexError, TypeError, AttributeError):
            raise ChatError(f"{where}: not a chat completion: {str(completion)[:300]}") from None
        return Reply(text=choice.message.content or "",
                     finish_reason=choice.finish_reason or "stop")

    def complete(self, messages: Sequence[Message]) -> str:
        return self.reply(messages).text
