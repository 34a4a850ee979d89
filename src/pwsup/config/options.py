"""Value kinds and option specs: the vocabulary the option table in `params.py` is written in.

A *kind* turns the text of a command-line value or an environment variable into a typed
value, or raises `ValueError` with a message that says what was expected. Every kind parses
the command line and the environment the same way, so `-t 5` and
`PROC_WRAPPER_PROCESS_TIMEOUT_SECONDS=5` can never disagree (proc_wrapper kept CLI numbers
as strings and crashed on them).

A `Spec` is the metadata of one option: its flags, environment variables, kind, help text
and group. `params.option()` attaches a spec to a dataclass field, so the `Params` class
body is the single table that argparse, the environment reader, validation, `--help` and
the README's option reference are all generated from.
"""

from __future__ import annotations

TYPE_CHECKING = False  # `typing` costs start-up time; annotations are only for mypy
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Literal

    CliAction = Literal["value", "set_true", "set_false", "append"]

ENV_PREFIXES = ("PROC_WRAPPER_", "PWSUP_")
"""Every option's environment variables exist under both prefixes: upstream's and ours."""

_TRUE_WORDS = frozenset({"true", "1", "yes", "y", "on"})
_FALSE_WORDS = frozenset({"false", "0", "no", "n", "off"})


class Kind:
    """How a text value becomes a typed one. Subclasses override `parse` and `doc`."""

    def metavar(self) -> str:
        return "VALUE"

    def parse(self, text: str) -> object:
        return text

    def doc(self) -> str:
        """A short description of the accepted values, for help and the README."""
        return "text"


class Text(Kind):
    def metavar(self) -> str:
        return "TEXT"


class Url(Kind):
    """An http(s) URL; a base URL (`strip_slash`) loses its trailing slash."""

    def __init__(self, strip_slash: bool = True) -> None:
        self.strip_slash = strip_slash

    def metavar(self) -> str:
        return "URL"

    def parse(self, text: str) -> object:
        url = text.strip().rstrip("/") if self.strip_slash else text.strip()
        problem = _url_problem(text.strip())
        if problem:
            raise ValueError(f"expected an http:// or https:// URL, got {text!r} ({problem})")
        return url

    def doc(self) -> str:
        return "http(s) URL"


def _url_problem(url: str) -> str | None:
    """What makes `url` unusable as an http(s) URL, checked here rather than by every request
    failing (and being retried as a network error until the run gives up). By hand, not
    with urllib.parse: the parent's start-up does not import `re`."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return "it must start with http:// or https://"
    if any(char <= " " or char == "\x7f" for char in url):
        return "a space or a control character"
    authority = rest
    for end in "/?#":
        authority = authority.partition(end)[0]
    host = authority.rpartition("@")[2]
    if host.startswith("["):
        inside, bracket, port = host[1:].partition("]")
        if not bracket or not inside:
            return "an IPv6 host without its closing ]"
        if port and not port.startswith(":"):
            return "text after the IPv6 host"
        port = port[1:]
    else:
        host, _, port = host.partition(":")
        if not host:
            return "no host"
    if port and not (port.isascii() and port.isdigit() and 0 < int(port) <= 65535):
        return "the port must be a number from 1 to 65535"
    return None


class EnvName(Kind):
    """The name of an environment variable pwsup sets for the command: without `=` (which
    would end the name) and NUL, or the command could not even be started."""

    def metavar(self) -> str:
        return "NAME"

    def parse(self, text: str) -> object:
        for char in "=\0":
            if char in text:
                raise ValueError(f"a variable name cannot contain {char!r}, got {text!r}")
        return text

    def doc(self) -> str:
        return "variable name"


class ExecutionUuid(Kind):
    """A Task Execution's uuid, as the server gives it or the caller passes it on: it goes
    into every update's request path and into the command's environment, so letters,
    digits, `-` and `_` only (a real one is a UUID), at most 100 of them: no value can point
    the updates at another path or put a line break into the command's environment."""

    LIMIT = 100
    CHARACTERS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_")

    def metavar(self) -> str:
        return "UUID"

    def parse(self, text: str) -> object:
        if not text or len(text) > self.LIMIT or not self.CHARACTERS.issuperset(text):
            raise ValueError(f"expected a uuid (at most {self.LIMIT} letters, digits, - and _), "
                             f"got {len(text)} characters that are not")
        return text

    def doc(self) -> str:
        return "uuid"


class Token(Kind):
    """A credential sent in an HTTP header (the API key, the Rollbar token).

    Whitespace around it is dropped — a key read from a file or a secret usually ends with
    a newline — and what is left must be printable ASCII without spaces: anything else
    could not go in a header, and would only fail later, on every request, as a retry loop.
    The message never shows the value."""

    def metavar(self) -> str:
        return "TOKEN"

    def parse(self, text: str) -> object:
        token = text.strip(" \t\r\n")
        for position, char in enumerate(token, start=1):
            if not "!" <= char <= "~":
                raise ValueError(f"character {position} of {len(token)} is not allowed in an "
                                 f"HTTP header ({_char_kind(char)}); the value is not shown")
        return token or None

    def doc(self) -> str:
        return "text (printable ASCII)"


def _char_kind(char: str) -> str:
    if char in " \t":
        return "a space"
    if ord(char) < 32 or ord(char) == 127:
        return "a control character"
    return "not ASCII"


class Boolean(Kind):
    def metavar(self) -> str:
        return "BOOL"

    def parse(self, text: str) -> object:
        word = text.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        raise ValueError(f"expected TRUE/FALSE, 1/0 or yes/no, got {text!r}")

    def doc(self) -> str:
        return "TRUE/FALSE, 1/0, yes/no"


class Choice(Kind):
    """One of a fixed set, matched case-insensitively; `aliases` map extra spellings."""

    def __init__(self, choices: tuple[str, ...],
                 aliases: tuple[tuple[str, str], ...] = ()) -> None:
        self.choices, self.aliases = choices, aliases

    def metavar(self) -> str:
        return "{" + ",".join(self.choices) + "}"

    def parse(self, text: str) -> object:
        wanted = text.strip().lower()
        for choice in self.choices:
            if choice.lower() == wanted:
                return choice
        for alias, choice in self.aliases:
            if alias.lower() == wanted:
                return choice
        raise ValueError(f"expected one of {', '.join(self.choices)}, got {text!r}")

    def doc(self) -> str:
        return " | ".join(self.choices)


class JsonObject(Kind):
    def metavar(self) -> str:
        return "JSON"

    def parse(self, text: str) -> object:
        import json

        try:
            value = json.loads(text, parse_constant=_no_constant)
        except ValueError as e:
            raise ValueError(f"expected a JSON object, but it is not valid JSON ({e})") from None
        except RecursionError:
            raise ValueError("expected a JSON object, but it is nested too deeply") from None
        if not isinstance(value, dict):
            raise ValueError(f"expected a JSON object, got a JSON {type(value).__name__}")
        return value

    def doc(self) -> str:
        return "JSON object"


def _no_constant(name: str) -> object:
    """NaN and ±Infinity are not JSON: the server would refuse the request carrying them."""
    raise ValueError(f"{name} is not a JSON number")


class Locations(Kind):
    """A list of secret locations. In the environment: separated by `,` or `;`, and a
    backslash escapes the next character (so a location may contain a comma)."""

    def metavar(self) -> str:
        return "LOCATION"

    def parse(self, text: str) -> object:
        return tuple(split_escaped(text))

    def doc(self) -> str:
        return "location; repeatable (env: comma-separated)"


class Argv(Kind):
    """The positional command. Never parsed from text; present for documentation."""

    def metavar(self) -> str:
        return "COMMAND"

    def doc(self) -> str:
        return "command and arguments"


def split_escaped(text: str, separators: str = ",;") -> list[str]:
    """Split on any of `separators`, honouring backslash escapes; drop blank items."""
    items: list[str] = []
    current: list[str] = []
    chars = iter(text)
    for ch in chars:
        if ch == "\\":
            current.append(next(chars, "\\"))
        elif ch in separators:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


class Spec:
    """Everything the loader, argparse and the docs need to know about one option.

    A plain class rather than a dataclass: the table has a hundred of these, and the
    parent's start-up time is measured (dataclass machinery costs milliseconds)."""

    __slots__ = ("cli", "default", "derived", "env", "flags", "group", "help", "kind", "new",
                 "secret")

    def __init__(self, default: object, *, kind: Kind, group: str, help: str,
                 flags: tuple[str, ...] = (), env: tuple[str, ...] = (),
                 cli: CliAction = "value", secret: bool = False, derived: str = "",
                 new: bool = False) -> None:
        self.default = default
        self.kind = kind
        self.group = group
        self.help = help
        self.flags = flags
        self.env = env
        """Environment names without prefix; each exists as PROC_WRAPPER_<name> and PWSUP_<name>."""
        self.cli = cli
        self.secret = secret
        self.derived = derived
        """When set, the default is computed from other options; this text documents how."""
        self.new = new
        """True for options proc_wrapper does not have."""

    def env_names(self) -> list[str]:
        return [prefix + name for name in self.env for prefix in ENV_PREFIXES]

    def label(self) -> str:
        """How error messages name the option: its long flag, else its first env name."""
        longs: Sequence[str] = [f for f in self.flags if f.startswith("--")]
        if longs:
            return longs[0]
        return self.env_names()[0] if self.env else "command"
