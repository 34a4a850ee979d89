"""`pwsup` / `proc_wrapper` / `python -m pwsup`: from argv to an exit code.

Loading runs before anything is started: if the configuration has any error, all of them
are printed and pwsup exits 78 without starting the command (or a reporter).
"""

from __future__ import annotations

import os
import sys

from pwsup import exitcodes
from pwsup.loader import load
from pwsup.log import LEVELS, Log

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import NoReturn

    from pwsup.params import Params


def make_log(params: Params | None, environ: Mapping[str, str]) -> Log:
    """The log for this process, configured as early as the settings allow."""
    if params is None:
        return Log("parent")
    log = Log("parent", LEVELS[params.log_level], json_lines=params.log_format == "json",
              timestamps=params.include_timestamps_in_log, redact=not params.log_secrets)
    for secret in (params.api_key, params.rollbar_access_token):
        log.add_secret(secret)
    return log


def run(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    loaded = load(argv, environ)
    log = make_log(loaded.params, environ)
    for warning in loaded.warnings:
        log.warning(warning)
    if loaded.params is None:
        for error in loaded.errors:
            log.error(f"configuration error: {error}")
        log.error("nothing was started (exit code 78)")
        return exitcodes.CONFIG
    params = loaded.params
    _set_title(f"pwsup: {params.display_name}")
    from pwsup.supervisor.parent import Supervisor

    return Supervisor(params, loaded.argv, log, environ).run()


def _set_title(title: str) -> None:
    try:
        import setproctitle
    except ImportError:  # pragma: no cover - a dependency; titles are cosmetic
        return
    setproctitle.setproctitle(title)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    code = run(sys.argv[1:] if argv is None else argv, os.environ)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    # Nothing is left to clean up (no threads, no atexit work), and interpreter teardown
    # would add milliseconds to every exit: leave at once.
    os._exit(code)
