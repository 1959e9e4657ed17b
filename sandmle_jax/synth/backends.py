"""The generator backends by name: each builds the four roles from the config's backend options.

A table above the backends (they import the roles' protocols from roles.py; nothing below
imports them back), so adding a backend is one import and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sandmle_jax.errors import ConfigError
from sandmle_jax.synth import llm, procedural
from sandmle_jax.synth.roles import Roles

BACKENDS: dict[str, Callable[[Mapping[str, Any]], Roles]] = {
    procedural.BACKEND: procedural.procedural_roles,
    llm.BACKEND: llm.llm_roles,
}


def backend_names() -> list[str]:
    return sorted(BACKENDS)


def make_roles(name: str, options: Mapping[str, Any]) -> Roles:
    """The named backend's roles; ConfigError naming the known backends otherwise."""
    if name not in BACKENDS:
        raise ConfigError(f"backend {name!r} unknown; backends: {backend_names()}")
    return BACKENDS[name](options)
