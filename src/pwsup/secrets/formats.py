"""Data formats: choosing one, parsing fetched text, and serialising output files.

Choice, first match wins (proc_wrapper's order): the explicit `!format`, the format the
provider reported (MIME type of an S3 object or AppConfig profile, SSM StringList), a
guess from the address (`.env.` anywhere, else the extension), the caller's default
(dotenv for `--env` locations, JSON for `--config` ones). With none, a value stays text.

Parsers are the safe ones: `yaml.safe_load` (never `yaml.load`, which can build arbitrary
objects), `json.loads`, python-dotenv's `dotenv_values` on a stream. PyYAML and
python-dotenv are imported when first used: most runs never parse YAML, and the
resolver's start-up should not pay for it.

Parse errors name the format and the position, never a snippet of the text (PyYAML's own
messages quote the offending line, which may be a secret).
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

from pwsup.secrets.errors import FormatError

DOTENV = "dotenv"
JSON = "json"
YAML = "yaml"
FORMATS = (DOTENV, JSON, YAML)

_MIME_FORMATS = {
    "application/json": JSON,
    "text/x-json": JSON,
    "application/x-yaml": YAML,
    "application/yaml": YAML,
    "text/vnd.yaml": YAML,
    "text/yaml": YAML,
    "text/x-yaml": YAML,
}
_EXTENSION_FORMATS = {"env": DOTENV, "json": JSON, "yaml": YAML, "yml": YAML}
_DOTENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def normalize(name: str | None) -> str | None:
    """A format code from user text (`JSON`, `yml`), or None if it is not one."""
    if not name:
        return None
    name = name.strip().lower()
    return YAML if name == "yml" else name if name in FORMATS else None


def from_mime_type(content_type: str | None) -> str | None:
    """The format of a MIME type (parameters such as `; charset=utf-8` are ignored)."""
    if not content_type:
        return None
    return _MIME_FORMATS.get(content_type.split(";", 1)[0].strip().lower())


def guess_from_address(address: str) -> str | None:
    """Guess from a file name, S3 key or secret name: `.env.` anywhere means dotenv
    (`prod.env.secret`), else the extension of the last path part, ignoring `#...`."""
    address = address.split("#", 1)[0]
    if ".env." in address:
        return DOTENV
    name = address.rsplit("/", 1)[-1]
    if "." not in name:
        return None
    return _EXTENSION_FORMATS.get(name.rsplit(".", 1)[-1].lower())


def choose(explicit: str | None, provided: str | None, guessed: str | None,
           default: str | None) -> str | None:
    """The first format given, in order of precedence."""
    for fmt in (explicit, provided, guessed, default):
        if fmt is not None:
            return fmt
    return None


def parse(text: str, fmt: str) -> Any:
    """Parse `text` in `fmt`. Raises FormatError without quoting the text."""
    if fmt == JSON:
        return _parse_json(text)
    if fmt == YAML:
        return _parse_yaml(text)
    if fmt == DOTENV:
        return _parse_dotenv(text)
    raise FormatError(f"unknown format {fmt!r}")


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise FormatError(
            f"not valid JSON (line {error.lineno}, column {error.colno})") from None
    except RecursionError:
        raise FormatError("not valid JSON (nested too deeply)") from None


def _parse_yaml(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise FormatError(f"not valid YAML{where}") from None
    except (yaml.YAMLError, RecursionError):
        raise FormatError("not valid YAML") from None


def _parse_dotenv(text: str) -> dict[str, str | None]:
    """dotenv content as a dict; `KEY` without `=` gives None (projected as "").

    Interpolation (`${OTHER}`) is on, as with proc_wrapper: values refer to earlier keys of
    the same file and to the resolver process's environment.

    A line python-dotenv cannot parse is an error here. python-dotenv only logs and skips
    it, which turned a JSON document read as dotenv, or one stray quote, into a silently
    smaller environment.
    """
    from dotenv import dotenv_values
    from dotenv.parser import parse_stream

    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            raise FormatError(f"not valid dotenv (line {binding.original.line})")
    return dict(dotenv_values(stream=io.StringIO(text)))


def serialize(data: dict[str, Any], fmt: str) -> str:
    """Text of an output file. dotenv gets flat string values (see `projection`)."""
    if fmt == JSON:
        return json.dumps(data, indent=2, default=str) + "\n"
    if fmt == YAML:
        import yaml

        return yaml.safe_dump(data, default_flow_style=False, sort_keys=False,
                              allow_unicode=True)
    if fmt == DOTENV:
        return "".join(f"{_dotenv_key(key)}={_dotenv_quote(value)}\n"
                       for key, value in data.items())
    raise FormatError(f"unknown format {fmt!r}")


def _dotenv_quote(value: object) -> str:
    """Single-quoted, with only `\\\\` and `\\'` escaped: python-dotenv reads that back
    exactly, newlines included (if its reader interpolates, `${X}` is expanded whatever
    the quoting: that is the reader's choice)."""
    text = str(value)
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _dotenv_key(key: str) -> str:
    return key if _DOTENV_KEY.fullmatch(key) else _dotenv_quote(key)
