"""A minimal OpenAI-compatible chat client (`POST {base_url}/chat/completions`).

Works with SGLang's `/v1/chat/completions` and hosted APIs: pass the base URL ending in `/v1`.
Transient failures (connection errors, 429, 5xx) are retried with backoff; anything else raises
`ChatError` naming the status and the server's message.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping, Sequence

import requests

Message = Mapping[str, str]
_RETRIABLE = {429, 500, 502, 503, 504}
_FENCE = re.compile(r"```(?:[a-zA-Z0-9_+-]*)\n(.*?)```", re.DOTALL)


class ChatError(RuntimeError):
    """The endpoint refused or failed; the message says how."""


class ChatClient:
    def __init__(self, base_url: str, model: str, *, api_key: str | None = None,
                 temperature: float = 0.7, max_tokens: int = 4096, timeout_s: float = 300.0,
                 retries: int = 3):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.temperature, self.max_tokens = model, temperature, max_tokens
        self.timeout_s, self.retries = timeout_s, retries
        self.headers = {"Content-Type": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"

    @classmethod
    def from_options(cls, options: Mapping) -> ChatClient:
        return cls(options["base_url"], options["model"],
                   api_key=os.environ.get(options["api_key_env"]) or None,
                   temperature=float(options["temperature"]),
                   max_tokens=int(options["max_tokens"]), timeout_s=float(options["timeout_s"]))

    def complete(self, messages: Sequence[Message]) -> str:
        body = {"model": self.model, "messages": list(messages), "temperature": self.temperature,
                "max_tokens": self.max_tokens}
        for attempt in range(self.retries + 1):
            try:
                response = requests.post(self.url, json=body, headers=self.headers,
                                         timeout=self.timeout_s)
            except requests.ConnectionError as e:
                if attempt == self.retries:
                    raise ChatError(f"cannot reach {self.url}: {e}") from None
            else:
                if response.status_code == 200:
                    try:
                        return response.json()["choices"][0]["message"]["content"] or ""
                    except (ValueError, KeyError, IndexError, TypeError):
                        raise ChatError(f"{self.url}: not a chat completion: "
                                        f"{response.text[:300]}") from None
                if response.status_code not in _RETRIABLE or attempt == self.retries:
                    raise ChatError(f"{self.url} answered {response.status_code}: "
                                    f"{response.text[:300]}")
            time.sleep(min(2 ** attempt, 10))
        raise AssertionError("unreachable")


def fenced(text: str, language: str | None = None) -> str:
    """The last fenced code block in a reply (```python ... ```), or the whole reply."""
    blocks = _FENCE.findall(text)
    if language:
        tagged = re.findall(rf"```{language}\n(.*?)```", text, re.DOTALL)
        blocks = tagged or blocks
    return blocks[-1] if blocks else text
