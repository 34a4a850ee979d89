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
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pwsup.secrets import formats
from pwsup.secrets.projection import project
from pwsup.util.files import write_private

if TYPE_CHECKING:
    from pwsup.config.params import Params
    from pwsup.secrets.resolve import Resolution

ENV_FILE_NAMES = {formats.DOTENV: ".env", formats.JSON: "env.json", formats.YAML: "env.yml"}
CONFIG_FILE_NAMES = {formats.DOTENV: "config.env", formats.JSON: "config.json",
                     formats.YAML: "config.yml"}


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
    """Write the configured output files; the paths written (for `remove_outputs`)."""
    written: list[str] = []
    for output, data in ((env_target(params), resolution.env),
                         (config_target(params), resolution.config)):
        if output is not None:
            write_file(output, data)
            written.append(output.path)
    return written


def remove_outputs(paths: Iterable[str]) -> None:
    """Delete output files; already missing ones are fine."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
