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
`--exit-after-writing-variables`, where writing them is all the call does. Only files this
process wrote are removed, and only while they are regular files: an output path that is a
device, a FIFO, a directory or a symbolic link is refused when the settings are checked
(and by the writer), never replaced or removed.
"""

from __future__ import annotations

import atexit
from typing import TYPE_CHECKING, Any

from pwsup.util.files import remove_quietly

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pwsup.config.params import Params
    from pwsup.supervisor.resolver import Resolved

_pending: set[str] = set()
"""Output files written and not yet removed: removed at exit if still there."""


def resolve(params: Params, environ: Mapping[str, str],
            initial_config: Mapping[str, Any]) -> Resolved:
    """Resolve in a forked child (wrapped mode's resolver, which writes no output file
    here) and wait for its answer."""
    from pwsup.supervisor.resolver import resolve_in_child

    return resolve_in_child(params, environ, initial_config=initial_config, write_files=False)


def write_outputs(params: Params, resolved: Resolved) -> list[str]:
    """Write the configured output files (see the module docstring); their paths."""
    from pwsup.secrets.output import config_target, env_target, write_file

    config = dict(resolved.config)
    if params.config_property_name_for_env:
        config.pop(params.config_property_name_for_env, None)
    written: list[str] = []
    for output, data in ((env_target(params), resolved.env), (config_target(params), config)):
        if output is not None:
            write_file(output, data)  # refuses a path that is there and not a regular file
            _pending.add(output.path)  # only once written: a file left as it was stays
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
