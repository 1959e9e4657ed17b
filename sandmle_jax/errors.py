"""Errors a user can fix: launch scripts print them as one line and exit with status 2.

Everything else that escapes a launcher is a bug and keeps its traceback. A `UserError`'s
message names the flag, config key or file at fault and what to do about it.
"""


class UserError(Exception):
    """A problem with what the user gave: a flag, a config value, a file or the machine."""


class ConfigError(UserError, ValueError):
    """A config value that cannot work; raised before the run writes anything."""


class SetupError(UserError, RuntimeError):
    """The set-up is broken (a sandbox that cannot run programs, no tasks to train on, ...)."""
