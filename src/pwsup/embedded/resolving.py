"""Resolving secrets and configuration for a function call, and its output files.

The resolution runs in a forked child, as in wrapped mode, so boto3, YAML and JSONPath
never enter the caller's process and a hung secret store can be abandoned with it. Unlike
wrapped mode, the call has an initial configuration of its own
(`ProcWrapperParams.initial_config`): its `__to_resolve` entries are resolved with the
rest.

The output files are written here, in the caller, because only the caller knows when the
call is over. The configuration file holds the resolved configuration only: the copy of
the environment that the function's `config` carries under `ENV` (see
`--config-property-name-for-env`) is left out, since the process environment holds far
more than the configuration, and a file is easier to leak than a dict. Both files are
written 0600 and removed when the call returns (whatever the outcome), and at the
interpreter's exit in case the call never returns — except with
`--exit-after-writing-variables`, where writing them is all the call does.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
from typing import TYPE_CHECKING, Any

from pwsup.supervisor import forking
from pwsup.util.files import remove_quietly

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pwsup.config.params import Params

_pending: set[str] = set()
"""Output files written and not yet removed: removed at exit if still there."""


class Resolved:
    """The resolver's answer: the environment, the configuration, what failed (names and
    providers only) and the secret values (for redaction)."""

    def __init__(self, env: dict[str, str], config: dict[str, Any], failures: list[str],
                 secrets: list[str]) -> None:
        self.env = env
        self.config = config
        self.failures = failures
        self.secrets = secrets


def resolve(params: Params, environ: Mapping[str, str],
            initial_config: Mapping[str, Any]) -> Resolved:
    """Resolve in a forked child and wait for its answer."""
    read_fd, write_fd = os.pipe()
    env, config = dict(environ), dict(initial_config)
    try:
        pid = forking.fork(lambda mask: _child(params, env, config, write_fd, mask),
                           what="the secrets resolver", death_signal=signal.SIGKILL,
                           close_fds=(read_fd,))
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    chunks: list[bytes] = []
    with os.fdopen(read_fd, "rb") as stream:
        while chunk := stream.read(65536):
            chunks.append(chunk)
    os.waitpid(pid, 0)
    if not chunks:
        raise RuntimeError("the secrets resolver died without an answer")
    data = json.loads(b"".join(chunks))
    return Resolved(data["env"], data["config"], data["failures"], data["secrets"])


def _child(params: Params, environ: dict[str, str], initial_config: dict[str, Any],
           write_fd: int, mask: set[int]) -> int:
    """The resolver's life after the fork; 70 when it failed (named by type, never with a
    value, which might be a secret)."""
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        import logging

        from pwsup.secrets.resolve import Resolver
        from pwsup.supervisor.resolver import _with_region

        logging.getLogger("botocore").setLevel(logging.INFO)  # its DEBUG lines hold secrets
        params = _with_region(params, environ)
        with Resolver(params, environ, initial_config=initial_config) as resolver:
            resolution = resolver.resolve()
        payload = json.dumps({
            "env": resolution.env, "config": resolution.config,
            "failures": [str(failure) for failure in resolution.failures],
            "secrets": sorted(resolution.secret_values),
        }, default=str).encode("utf-8")
        view = memoryview(payload)
        while view:
            view = view[os.write(write_fd, view):]
    except BaseException as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
        forking.say(f"PWSUP: ERROR: the secrets resolver failed: {why}")
        return forking.CHILD_FAILED
    return 0


def write_outputs(params: Params, resolved: Resolved) -> list[str]:
    """Write the configured output files (see the module docstring); their paths."""
    from pwsup.secrets.output import config_target, env_target, write_file

    config = dict(resolved.config)
    if params.config_property_name_for_env:
        config.pop(params.config_property_name_for_env, None)
    written: list[str] = []
    for output, data in ((env_target(params), resolved.env), (config_target(params), config)):
        if output is not None:
            _pending.add(output.path)
            write_file(output, data)
            written.append(output.path)
    return written


def keep_outputs(paths: list[str]) -> None:
    """Leave the output files for the caller (`--exit-after-writing-variables`): they are
    no longer removed at exit."""
    _pending.difference_update(paths)


def remove_outputs(paths: list[str]) -> None:
    """Remove the output files of a call that is over."""
    for path in paths:
        remove_quietly(path)
        _pending.discard(path)


@atexit.register
def _remove_pending() -> None:
    for path in list(_pending):
        remove_quietly(path)
    _pending.clear()
