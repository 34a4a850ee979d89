"""Output files: the resolved environment and configuration written for other programs.

Names and formats, as proc_wrapper: a format without a file name writes `.env`,
`env.json` or `env.yml` (environment) / `config.env`, `config.json` or `config.yml`
(configuration); a file name without a format is guessed from its extension, else dotenv
(environment) or JSON (configuration). Neither: no file.

Fixed defects: the files hold secrets, so they are created with mode 0600 (proc_wrapper
used the umask, 0644 in practice); and each write replaces the file atomically (a
temporary file in the same directory, then `os.replace`), where proc_wrapper's dotenv
writer updated keys inside an existing file, keeping unrelated and stale entries. A
reader never sees a half-written file.

An output path must be new or a regular file: anything else there (a device node, a FIFO,
a socket, a directory, a symbolic link) is a configuration error at start
(`config.loader`), and `write_private` refuses it again when writing: replacing it
with a regular file, then removing that at exit, would destroy it (`/dev/full` deleted,
a FIFO another program reads gone). Removal touches regular files only
(`util.files.remove_quietly`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pwsup.config.outputs import CONFIG_FILE_NAMES, ENV_FILE_NAMES
from pwsup.secrets import formats
from pwsup.secrets.projection import project
from pwsup.util.files import remove_quietly, write_private

if TYPE_CHECKING:
    from pwsup.config.params import Params
    from pwsup.secrets.resolve import Resolution


@dataclass(frozen=True)
class OutputFile:
    path: str
    format: str


def target(filename: str | None, fmt: str | None, *, names: Mapping[str, str],
           default_format: str) -> OutputFile | None:
    """Where and how to write, from the two settings (see the module docstring)."""
    fmt = formats.normalize(fmt) if fmt else None
    if filename:
        return OutputFile(filename, fmt or formats.guess_from_address(filename)
                          or default_format)
    if fmt:
        return OutputFile(names[fmt], fmt)
    return None


def env_target(params: Params) -> OutputFile | None:
    return target(params.env_output_filename, params.env_output_format,
                  names=ENV_FILE_NAMES, default_format=formats.DOTENV)


def config_target(params: Params) -> OutputFile | None:
    return target(params.config_output_filename, params.config_output_format,
                  names=CONFIG_FILE_NAMES, default_format=formats.JSON)


def write_file(output: OutputFile, data: Mapping[str, Any]) -> None:
    """Write `data` in the output's format, replacing the file (mode 0600)."""
    content = dict(data)
    if output.format == formats.DOTENV:
        content = dict(project(content))  # dotenv holds strings: same rules as the env
    write_private(output.path, formats.serialize(content, output.format))


def write_outputs(params: Params, resolution: Resolution) -> list[str]:
    """Write the configured output files; the paths written (for `remove_outputs`). If one
    cannot be written, those already written are removed before the error goes on: the
    caller learns the paths only from a success, and nothing is started after a failure."""
    written: list[str] = []
    try:
        for output, data in ((env_target(params), resolution.env),
                             (config_target(params), resolution.config)):
            if output is not None:
                write_file(output, data)
                written.append(output.path)
    except BaseException:
        remove_outputs(written)
        raise
    return written


def remove_outputs(paths: Iterable[str]) -> None:
    """Delete output files; already missing ones are fine, and anything at a path that is
    not a regular file (now) is left alone."""
    for path in paths:
        remove_quietly(path)
