"""`pwsup` / `proc_wrapper` / `python -m pwsup`: from argv to an exit code.

Loading runs before anything is started: if the configuration has any error, all of them
are printed and pwsup exits 78 without starting the command (or a reporter).
"""

from __future__ import annotations

import os
import sys

from pwsup import exitcodes
from pwsup.config.loader import load
from pwsup.util.log import DEBUG, LEVELS, Log

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import NoReturn

    from pwsup.config.loader import Loaded
    from pwsup.config.params import Params
    from pwsup.supervisor.resolver import Resolved


def make_log(params: Params | None, environ: Mapping[str, str]) -> Log:
    """The log for this process, configured as early as the settings allow."""
    if params is None:
        return Log("parent")
    log = Log("parent", LEVELS[params.log_level], json_lines=params.log_format == "json",
              timestamps=params.include_timestamps_in_log, redact=not params.log_secrets)
    for secret in (params.api_key, params.rollbar_access_token):
        log.add_secret(secret)
    return log


def _load(argv: Sequence[str], environ: Mapping[str, str],
          secrets: Sequence[str] = ()) -> tuple[Loaded, Log]:
    loaded = load(argv, environ)
    log = make_log(loaded.params, environ)
    for secret in secrets:
        log.add_secret(secret)
    for warning in loaded.warnings:
        log.warning(warning)
    for error in loaded.errors:
        log.error(f"configuration error: {error}")
    return loaded, log


def run(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    loaded, log = _load(argv, environ)
    if loaded.params is None:
        log.error("nothing was started (exit code 78)")
        return exitcodes.CONFIG
    from pwsup.supervisor import resolver

    outputs: list[str] = []
    refresh = None
    if resolver.needed(loaded.params, environ):
        import time

        from pwsup.supervisor.refresh import Refresh

        resolved = _resolve(loaded.params, environ, log)
        if resolved is None:
            return exitcodes.CONFIG
        outputs = resolved.written
        refresh = Refresh(environ, time.monotonic(), outputs)
        # Settings may come from secrets too: load again from the resolved environment.
        environ = resolved.env
        loaded, log = _load(argv, environ, resolved.secrets)
        if loaded.params is None:
            _remove(outputs)
            log.error("nothing was started (exit code 78)")
            return exitcodes.CONFIG
    params = loaded.params
    assert params is not None
    if log.enabled(DEBUG):
        log.debug(f"configuration: {params!r}; command: {loaded.argv!r}")
    if params.exit_after_writing_variables:
        log.info("the variables are written; exiting as asked (--exit-after-writing-variables)")
        return exitcodes.SUCCESS
    from pwsup.util.title import set_title

    set_title(f"pwsup: {params.display_name}")
    from pwsup.supervisor.parent import Supervisor

    try:
        return Supervisor(params, loaded.argv, log, environ, refresh).run()
    finally:
        _remove(outputs)


def _resolve(params: Params, environ: Mapping[str, str], log: Log) -> Resolved | None:
    """Resolve secrets in a resolver process; None (after logging why) if the run must not
    start. A signal meanwhile ends pwsup at once, and the resolver with it."""
    import signal

    from pwsup.supervisor.resolver import resolve_in_child

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        resolved = resolve_in_child(params, environ)
    except (RuntimeError, ValueError, KeyError) as e:
        log.error(f"secrets could not be resolved: {e}; nothing was started")
        return None
    for secret in resolved.secrets:
        log.add_secret(secret)
    for failure in resolved.failures:
        log.error(failure if failure.startswith("cannot write") else f"could not resolve {failure}")
    if resolved.failures and params.fail_fast_config_resolution:
        log.error("nothing was started (exit code 78); --no-fail-fast-config-resolution "
                  "runs the command without the variables that failed")
        _remove(resolved.written)
        return None
    return resolved


def _remove(paths: Sequence[str]) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except OSError:
            pass




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
