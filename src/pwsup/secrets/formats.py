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

What a document may build is bounded, whatever its size: at most MAX_DEPTH levels of
nesting, MAX_NODES values once YAML aliases are expanded (a few hundred bytes of aliases
of aliases — the "billion laughs" — would otherwise become gigabytes when the values are
merged, copied or written out), and at most MAX_ALIASES aliases in a YAML document.
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
MAX_DEPTH = 100
"""Deepest nesting of lists and objects in a parsed document."""
MAX_NODES = 1_000_000
"""Most values in a parsed document, counting each use of a YAML alias in full."""
MAX_ALIASES = 1000
"""Most aliases (`*name`) in one YAML document."""


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
        return check_shape(_parse_json(text), "JSON")
    if fmt == YAML:
        return check_shape(_parse_yaml(text), "YAML")
    if fmt == DOTENV:
        return _parse_dotenv(text)
    raise FormatError(f"unknown format {fmt!r}")


def check_shape(value: Any, what: str) -> Any:
    """`value` if it keeps within MAX_DEPTH and MAX_NODES, else FormatError. Walks without
    recursion, visiting a shared (aliased) value once per use, as any copy of it would."""
    budget = MAX_NODES
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        budget -= 1
        if budget < 0:
            raise FormatError(f"{what} document too large: more than {MAX_NODES} values "
                              "(with aliases expanded)")
        if isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                raise FormatError(f"{what} document nested more than {MAX_DEPTH} levels deep")
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return value


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise FormatError(
            f"not valid JSON (line {error.lineno}, column {error.colno})") from None
    except RecursionError:
        raise FormatError("not valid JSON (nested too deeply)") from None
    except ValueError:  # e.g. an integer of more digits than Python converts
        raise FormatError("not valid JSON (a number too long)") from None


def _parse_yaml(text: str) -> Any:
    import yaml

    try:
        return yaml.load(text, Loader=_bounded_loader())  # a SafeLoader, bounded
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise FormatError(f"not valid YAML{where}") from None
    except _TooManyAliases:
        raise FormatError(f"YAML document with more than {MAX_ALIASES} aliases") from None
    except (yaml.YAMLError, RecursionError, ValueError):
        raise FormatError("not valid YAML") from None


class _TooManyAliases(FormatError):
    """Raised inside the YAML loader; turned into a FormatError by `_parse_yaml`."""


def _bounded_loader() -> Any:
    """yaml.SafeLoader that refuses a document with more than MAX_ALIASES aliases."""
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        aliases = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > MAX_ALIASES:
                    raise _TooManyAliases
            return super().compose_node(parent, index)

    return BoundedLoader


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
