"""Where the output files go: `--env-output-filename` / `--config-output-filename`, else
the default name of `--env-output-format` / `--config-output-format` (as proc_wrapper).

The resolver writes them (`secrets.output`); the names are here, in configuration, so that
the checks at start (`loader`) know the paths without loading the resolver's modules.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pwsup.config.params import Params

ENV_FILE_NAMES = {"dotenv": ".env", "json": "env.json", "yaml": "env.yml"}
CONFIG_FILE_NAMES = {"dotenv": "config.env", "json": "config.json", "yaml": "config.yml"}
"""The file written when only a format is set, by format."""


def output_paths(params: Params) -> list[tuple[str, str]]:
    """(option, path) of each output file the run writes: the file name set, else the
    default name of the format set (see `secrets.output.target`)."""
    found = []
    for option, filename, fmt, names in (
            ("--env-output-filename", params.env_output_filename, params.env_output_format,
             ENV_FILE_NAMES),
            ("--config-output-filename", params.config_output_filename,
             params.config_output_format, CONFIG_FILE_NAMES)):
        path = filename or names.get((fmt or "").lower())
        if path:
            found.append((option, path))
    return found
