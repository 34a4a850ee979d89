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

import math

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


MAX_INTEGER = 2**31 - 1
"""The largest whole number an option takes unless it says otherwise: the C `int` the
values end up in (poll timeouts, sizes, counts); more is a typo, not a wish."""
MAX_SECONDS = 10 * 365 * 24 * 3600.0
"""The longest duration an option takes (10 years): beyond it, timeouts overflow the
platform's (threading's and sockets' are about 292 years, poll's 24 days — waits longer
than that are cut into pieces), and no job means it."""
NO_LIMIT = -1
"""The one negative value options with a "no limit" meaning accept (proc_wrapper's)."""


def _number(text: str, *, integer: bool) -> float:
    """A finite number written in ASCII digits. `float()` alone would also take NaN,
    "infinity", digits of other scripts and `1_000`, and `int()` of a huge text raises
    something other than ValueError."""
    stripped = text.strip()
    what = "a whole number" if integer else "a number"
    if not stripped.isascii() or "_" in stripped:
        raise ValueError(f"expected {what}, got {text!r}")
    try:
        value = float(int(stripped)) if integer else float(stripped)
    except (ValueError, OverflowError):
        raise ValueError(f"expected {what}, got {_shown(text)}") from None
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {_shown(text)}")
    return value


def _shown(text: str) -> str:
    """The value as an error message quotes it: at most 40 characters of it."""
    return repr(text) if len(text) <= 40 else repr(text[:37]) + "..."


class Integer(Kind):
    """A whole number. With `unlimited`, -1 means "no limit" (None); other negative
    numbers are errors, not another way to say it."""

    def __init__(self, minimum: int | None = None, maximum: int = MAX_INTEGER,
                 unlimited: bool = False) -> None:
        self.minimum, self.maximum, self.unlimited = minimum, maximum, unlimited

    def metavar(self) -> str:
        return "N"

    def parse(self, text: str) -> object:
        value = _number(text, integer=True)
        if self.unlimited and value == NO_LIMIT:
            return None
        if self.minimum is not None and value < self.minimum:
            suffix = " (or -1 for no limit)" if self.unlimited else ""
            raise ValueError(f"must be at least {self.minimum}{suffix}, got {_shown(text.strip())}")
        if value > self.maximum:
            raise ValueError(f"must be at most {self.maximum}, got {_shown(text.strip())}")
        return int(value)

    def doc(self) -> str:
        return "integer" + ("; -1 = no limit" if self.unlimited else "")


class Seconds(Kind):
    """A duration in seconds (fractions allowed), at most MAX_SECONDS. With `unlimited`,
    -1 means "no limit" (None)."""

    def __init__(self, unlimited: bool = False, positive: bool = False,
                 minimum: float = 0.0) -> None:
        self.unlimited, self.positive, self.minimum = unlimited, positive, minimum

    def metavar(self) -> str:
        return "SECONDS"

    def parse(self, text: str) -> object:
        value = _number(text, integer=False)
        if self.unlimited and value == NO_LIMIT:
            return None
        if value < 0 or (self.positive and value == 0):
            bound = "greater than 0" if self.positive else "0 or more"
            suffix = " (or -1 for no limit)" if self.unlimited else ""
            raise ValueError(f"must be {bound}{suffix}, got {_shown(text.strip())}")
        if value < self.minimum:
            raise ValueError(f"must be at least {self.minimum:g}, got {_shown(text.strip())}")
        if value > MAX_SECONDS:
            raise ValueError(f"must be at most {MAX_SECONDS:.0f} (10 years), "
                             f"got {_shown(text.strip())}")
        return value

    def doc(self) -> str:
        return "seconds" + ("; -1 = no limit" if self.unlimited else "")


_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


class Size(Kind):
    """A number of bytes: digits, optionally with a fraction and a binary suffix (`K`, `M`,
    `G`, `T`, with or without `i`/`iB`/`B`, any case: `512M`, `1.5GiB`, `2g`), each 1024
    times the one before; rounded down to whole bytes, between `minimum` and `maximum`.
    With `unlimited`, -1 means "no limit" (None)."""

    def __init__(self, minimum: int, maximum: int, unlimited: bool = False) -> None:
        self.minimum, self.maximum, self.unlimited = minimum, maximum, unlimited

    def metavar(self) -> str:
        return "SIZE"

    def parse(self, text: str) -> object:
        stripped = text.strip()
        if self.unlimited and stripped == str(NO_LIMIT):
            return None
        lowered = stripped.lower()
        number = lowered.rstrip("kmgtib")
        unit = lowered[len(number):]
        unit = unit[:-1] if unit.endswith("b") else unit
        unit = unit[:-1] if unit.endswith("i") and len(unit) == 2 else unit
        parts = number.split(".")
        if (unit not in _SIZE_UNITS or len(parts) > 2 or not number.isascii()
                or not all(part.isdigit() for part in parts) or len(number) > 30):
            raise ValueError(f"expected a size such as 512M, 2G or a number of bytes, "
                             f"got {_shown(text)}")
        value = int(float(number) * _SIZE_UNITS[unit])
        if value < self.minimum:
            suffix = " (or -1 for no limit)" if self.unlimited else ""
            raise ValueError(f"must be at least {_bytes(self.minimum)}{suffix}, "
                             f"got {_shown(stripped)}")
        if value > self.maximum:
            raise ValueError(f"must be at most {_bytes(self.maximum)}, got {_shown(stripped)}")
        return value

    def doc(self) -> str:
        return "bytes, or with K/M/G/T (powers of 1024)" + ("; -1 = no limit"
                                                             if self.unlimited else "")


def _bytes(value: int) -> str:
    """A bound as the user would write it: `1M`, `1T`, or bytes."""
    for suffix, unit in (("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if value % unit == 0:
            return f"{value // unit}{suffix}"
    return str(value)


class Probability(Kind):
    def metavar(self) -> str:
        return "P"

    def parse(self, text: str) -> object:
        value = _number(text, integer=False)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"must be between 0 and 1, got {text.strip()}")
        return value

    def doc(self) -> str:
        return "0.0 to 1.0"


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
