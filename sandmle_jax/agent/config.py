"""The agent's limits, shared by every scaffold: turns, context, time and sandbox resources."""

from __future__ import annotations

import dataclasses

from sandbox_runner import Limits

from sandmle_jax.agent import prompts
from sandmle_jax.tasks import rewards


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """Limits default to the paper's training values (SANDMLE.md)."""

    max_turns: int = 15  # model calls per trajectory
    context_tokens: int = 32768
    prompt_tokens: int = 8192  # cap on system + task prompt
    max_new_tokens: int = 4096  # per turn
    min_turn_tokens: int = 256  # prune (or stop) when fewer tokens than this remain
    exec_timeout_s: float = 300.0
    episode_timeout_s: float = 1200.0
    tail_lines: int = 20
    tool_schemas: bool = True  # False: one-line tool list instead of the template's JSON block
    reward_scheme: str = rewards.DEFAULT_SCHEME
    exec_limits: Limits = Limits()
    libraries: tuple[str, ...] = prompts.REQUIRED_LIBRARIES  # those the sandbox imports


def agent_config_from(config) -> AgentConfig:
    """The agent's limits from a recipe's `agent` and `sandbox` sections (configs/base.py)."""
    a, box = config.agent, config.sandbox
    return AgentConfig(
        max_turns=a.max_turns, context_tokens=a.context_tokens, prompt_tokens=a.prompt_tokens,
        max_new_tokens=a.max_new_tokens, min_turn_tokens=a.min_turn_tokens,
        exec_timeout_s=a.exec_timeout_s, episode_timeout_s=a.episode_timeout_s,
        tool_schemas=a.tool_schemas, reward_scheme=a.reward_scheme,
        exec_limits=Limits(wall_s=a.exec_timeout_s, memory_bytes=box.memory_mb << 20,
                           cpus=box.cpus_per_execution))
