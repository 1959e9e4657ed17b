"""One check for every dataclass built from a user's dict (task.json, seeds, DNA, configs): a
misspelt key is an error that names it, never a silently ignored setting."""

import dataclasses
from collections.abc import Mapping
from typing import Any


def check_keys(cls: type, raw: Mapping[str, Any], what: str, *,
               error: type[Exception] = ValueError, require: bool = False) -> None:
    """Raise `error` if `raw` has keys that dataclass `cls` lacks or, with `require`, lacks
    fields that have no default. `what` starts the message, e.g. "loss config"."""
    fields = dataclasses.fields(cls)
    known = sorted(f.name for f in fields)
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise error(f"{what}: unknown keys {unknown}; known: {known}")
    if require:
        missing = [f.name for f in fields if f.name not in raw
                   and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        if missing:
            raise error(f"{what}: missing required keys {missing}")
