"""The argparse parser, generated from the option table.

argparse only collects the raw text of each option here; the values are parsed by the
option kinds in `loader.py`, so that every bad value is reported together with the others
(argparse's own `type=` would stop at the first) and parsed exactly like its environment
variable. Imported only when the command line has options: `pwsup -- cmd` never pays for
argparse.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, NoReturn

from pwsup._version import __version__
from pwsup.config.params import default_of, option_specs
from pwsup.errors import PwsupError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pwsup.config.options import Spec

PROG = "pwsup"
DESCRIPTION = (
    "Run a command under supervision: retries, time limits, process-group termination, "
    "signal forwarding and zombie reaping, secrets in its environment, and reports to a "
    "CloudReactor API server."
)
EPILOG = (
    "Environment variables (PROC_WRAPPER_<NAME> or PWSUP_<NAME>) take precedence over "
    "options. Exit status: the command's own; 128+N if it died of signal N; 124 if the last "
    "attempt timed out; 126/127 if it could not be executed/found; 78 for bad configuration; "
    "75 if the server refused to start it for a concurrency conflict or stopped it; 77 if "
    "the server refused the API key; 71 if pwsup itself ran out of file descriptors or "
    "processes."
)


class UsageError(PwsupError):
    """The command line itself could not be parsed (unknown option, missing value)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def describe_default(name: str, spec: Spec) -> str:
    """The default of an option as the help text and the README show it."""
    if spec.derived:
        return spec.derived
    default = default_of(name)
    if default is None or default in ((), ""):
        return "none"
    if isinstance(default, bool):
        return "TRUE" if default else "FALSE"
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def _help_text(name: str, spec: Spec) -> str:
    envs = ", ".join(f"PROC_WRAPPER_{e}" for e in spec.env)
    parts = [spec.help, f"Default: {describe_default(name, spec)}."]
    if envs:
        parts.append(f"Env: {envs}.")
    return " ".join(parts).replace("%", "%%")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG, description=DESCRIPTION, epilog=EPILOG, allow_abbrev=False,
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("-v", "--version", action="version",
                        version=f"pwsup {__version__} (proc_wrapper 6.0.2 compatible)")
    groups: dict[str, argparse._ArgumentGroup] = {}
    for name, spec in option_specs():
        if not spec.flags:
            continue
        group = groups.get(spec.group) or parser.add_argument_group(spec.group)
        groups[spec.group] = group
        kwargs: dict[str, Any] = {"dest": name, "help": _help_text(name, spec)}
        if spec.cli == "value":
            kwargs["metavar"] = spec.kind.metavar()
        elif spec.cli == "append":
            kwargs.update(action="append", metavar=spec.kind.metavar())
        else:
            kwargs.update(action="store_const", const=spec.cli == "set_true")
        group.add_argument(*spec.flags, **kwargs)
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="The command to run and its arguments (after an optional --).")
    return parser


def parse_cli(tokens: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """Raw values of the options present on the command line, keyed by field name, and
    the unknown options (reported together with every other problem).

    Raises UsageError for a malformed command line (an option missing its value);
    `--help` and `--version` print and exit as usual.
    """
    namespace, unknown = build_parser().parse_known_args(list(tokens))
    return vars(namespace), unknown
