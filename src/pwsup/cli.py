"""`pwsup` / `proc_wrapper` / `python -m pwsup`: from argv to an exit code.

Loading runs before anything is started: if the configuration has any error, all of them
are printed and pwsup exits 78 without starting the command (or a reporter).
"""

from __future__ import annotations

import os
import sys

from pwsup import exitcodes
from pwsup.util.rawsignal import signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import NoReturn

    from pwsup.config.loader import Loaded
    from pwsup.config.params import Params
    from pwsup.supervisor.resolver import Resolved
    from pwsup.util.log import Log


def _load(argv: Sequence[str], environ: Mapping[str, str],
          secrets: Sequence[str] = ()) -> tuple[Loaded, Log]:
    from pwsup.config.loader import load
    from pwsup.config.log import make_log

    loaded = load(argv, environ)
    log = make_log(loaded.params)
    for secret in secrets:
        log.add_secret(secret)
    for warning in loaded.warnings:
        log.warning(warning)
    for error in loaded.errors:
        log.error(f"configuration error: {error}")
    return loaded, log


def run(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    from pwsup.config.loader import needs_resolution
    from pwsup.util.log import DEBUG

    loaded, log = _load(argv, environ)
    if loaded.params is None:
        log.error("nothing was started (exit code 78)")
        return exitcodes.CONFIG
    outputs: list[str] = []
    refresh = None
    if needs_resolution(loaded.params, environ):
        import time

        from pwsup.supervisor.refresh import Refresh

        resolved = _resolve(loaded.params, environ, log)
        if isinstance(resolved, int):
            return resolved
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
    from pwsup.supervisor.parent import Supervisor

    try:
        return Supervisor(params, loaded.argv, log, environ, refresh).run()
    finally:
        _remove(outputs)


def _resolve(params: Params, environ: Mapping[str, str], log: Log) -> Resolved | int:
    """Resolve secrets in a resolver process; pwsup's exit code (after logging why) if the
    run must not start: 78 when they cannot be resolved, 71 when no resolver can be
    started, 128+N when signal N stops pwsup meanwhile (the resolver is killed at once).
    An ignored SIGCHLD (inherited) is set to the default meanwhile, so the resolver is
    pwsup's to reap; the command still gets it ignored."""
    from pwsup.config.outputs import output_paths
    from pwsup.supervisor.forking import ForkError
    from pwsup.supervisor.resolver import Stopped, resolve_in_child
    from pwsup.supervisor.signals import StopWatch, signal_name
    from pwsup.util.files import identity

    before = {path: identity(path) for _, path in output_paths(params)}
    sigchld_ignored = signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN
    if sigchld_ignored:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        with StopWatch() as stops:
            resolved = resolve_in_child(params, environ, stops)
    except Stopped as e:
        log.info(f"received {signal_name(e.signum)} while resolving secrets: "
                 "nothing was started")
        return exitcodes.SIGNAL_BASE + e.signum
    except ForkError as e:
        log.error(f"{e}; nothing was started")
        return exitcodes.OS_ERROR
    except OSError as e:  # out of file descriptors for the resolver's pipe
        log.error(f"pwsup could not set itself up: {e.strerror or e}; nothing was started")
        return exitcodes.OS_ERROR
    except (RuntimeError, ValueError, KeyError) as e:
        log.error(f"secrets could not be resolved: {e}; nothing was started")
        # The answer naming what was written is lost: remove the output files the resolver
        # wrote (a regular file with a new identity), not one that was there untouched.
        _remove([path for path, was in before.items() if identity(path) not in (None, was)])
        return exitcodes.CONFIG
    finally:
        if sigchld_ignored:
            signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    for secret in resolved.secrets:
        log.add_secret(secret)
    for failure in resolved.failures:
        log.error(failure if failure.startswith("cannot write") else f"could not resolve {failure}")
    if resolved.failures and params.fail_fast_config_resolution:
        log.error("nothing was started (exit code 78); --no-fail-fast-config-resolution "
                  "runs the command without the variables that failed")
        _remove(resolved.written)
        return exitcodes.CONFIG
    return resolved


def _remove(paths: Sequence[str]) -> None:
    from pwsup.util.files import remove_quietly

    for path in paths:
        remove_quietly(path)




def main(argv: Sequence[str] | None = None) -> NoReturn:
    _quiet_ctrl_c()
    _guard_standard_fds()
    code = run(sys.argv[1:] if argv is None else argv, os.environ)
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: the descriptor was closed when Python started
                stream.flush()
        except (OSError, ValueError):
            pass
    # Nothing is left to clean up (no threads, no atexit work), and interpreter teardown
    # would add milliseconds to every exit: leave at once.
    os._exit(code)


def _guard_standard_fds() -> None:
    """Give a closed stdin, stdout or stderr /dev/null, for pwsup only. Otherwise the first
    pipe pwsup makes would take its number, and log lines meant for stderr would be written
    into a pipe between pwsup's own processes. The command still starts with it closed,
    as it would without pwsup (the descriptor is close-on-exec)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free number: this one
            if null != fd:  # (close-on-exec: the command gets it closed, as it was given)
                os.dup2(null, fd, inheritable=False)
                os.close(null)


def _quiet_ctrl_c() -> None:
    """Until the supervisor installs its handlers, a Ctrl-C ends pwsup as it ends any
    program (killed by SIGINT: 130 to a shell), not with a KeyboardInterrupt traceback from
    whatever pwsup was loading. Nothing has started yet; a resolver, if any, is then
    stopped by `StopWatch`. A SIGINT that was ignored stays ignored."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
