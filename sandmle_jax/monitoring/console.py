"""What a run shows on the terminal, and what goes to its log file instead.

The terminal gets progress bars (tqdm, on stderr), one line per finished stage (`stage`), the
final tables, warnings and errors. Library chatter - absl's, Orbax's and JAX's INFO lines -
goes only to the log file under the run's directory (`log_to`), or nowhere for a launcher that
has no run directory (`quiet`). A launcher runs its `main`
through `run_launcher`: an error the user can fix (`errors.UserError`, a bad flag, a sandbox the
host cannot provide) becomes one line on stderr and exit status 2; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import os
import pathlib
import sys
from collections.abc import Callable, Sequence

from absl import app, flags, logging
from ml_collections.config_flags import config_flags

from sandbox_runner import SandboxUnavailable
from sandmle_jax.errors import ConfigError, UserError

KNOWN_ERRORS = (UserError, SandboxUnavailable)
EXIT_USER_ERROR = 2
_log_file = {"active": False}  # before `log_to`, absl logs to stderr: keep it quiet there


def log_to(log_dir: str | os.PathLike) -> pathlib.Path:
    """Sends absl (and Python) logging at INFO and above to a file in `log_dir`; only warnings
    and errors also reach stderr. Returns the directory."""
    log_dir = pathlib.Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    logging.set_verbosity(logging.INFO)
    logging.set_stderrthreshold(logging.WARNING)
    logging.get_absl_handler().use_absl_log_file(log_dir=str(log_dir))
    _log_file["active"] = True
    return log_dir


def quiet() -> None:
    """For a launcher with no run directory to log into: only warnings and errors are shown."""
    logging.set_verbosity(logging.WARNING)


def stage(message: str) -> None:
    """One line for the user (stdout) and, once `log_to` set one up, the same in the log file."""
    print(message, flush=True)
    if _log_file["active"]:
        logging.info(message)


def stage_outcomes(lines: Sequence[str], done: int, none_done: str) -> int:
    """A batch launcher's ending (imports, exports): one line per item, then exit status 0 when
    all `done` items succeeded, 1 when some failed, and ConfigError(`none_done`) (status 2)
    when none did."""
    for line in lines:
        stage(line)
    if not done:
        raise ConfigError(none_done)
    return 0 if done == len(lines) else 1


def one_line(error: BaseException) -> str:
    """An error message folded onto one line."""
    return " ".join(str(error).split()) or type(error).__name__


def _usage_error(message: str) -> None:
    print(f"error: {message} (--helpshort lists the flags)", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)


def _parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with every way a command line can be wrong as one line, exit 2."""
    try:
        rest = flags.FLAGS(argv)
    except flags.Error as e:
        _usage_error(one_line(e))
    except (AttributeError, KeyError) as e:  # config_flags: an override names no config key
        _usage_error(f"a --config.* override names no key of the config: {one_line(e)}")
    for name in flags.FLAGS:
        flag = flags.FLAGS[name]
        if config_flags.is_config_flag(flag) and flag.present:
            try:
                flag.value.keys()  # a config file that failed to load raises here, not before
            except OSError as e:
                _usage_error(f"--{name}: {one_line(e)}")
    return rest


def run_launcher(main: Callable[[list[str]], int | None]) -> None:
    """`absl.app.run(main)` with flag and user errors as one line and exit status 2."""
    def guarded(argv: list[str]) -> int | None:
        try:
            return main(argv)
        except KNOWN_ERRORS as e:
            if _log_file["active"]:
                logging.info("stopped: %s", e)
            print(f"error: {one_line(e)}", file=sys.stderr)
            return EXIT_USER_ERROR

    app.run(guarded, flags_parser=_parse_flags)
