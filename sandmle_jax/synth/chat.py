"""Reading a role's reply: the code or JSON block a model wrote inside it."""

from __future__ import annotations

import re

_FENCE = re.compile(r"```(?:[a-zA-Z0-9_+-]*)\n(.*?)```", re.DOTALL)


def fenced(text: str, language: str | None = None) -> str:
    """The last fenced code block in a reply (```python ... ```), or the whole reply."""
    blocks = _FENCE.findall(text)
    if language:
        tagged = re.findall(rf"```{language}\n(.*?)```", text, re.DOTALL)
        blocks = tagged or blocks
    return blocks[-1] if blocks else text
