"""Parsing secret location strings: `[PROVIDER:]address[!format][|JP:expression]`.

The grammar is proc_wrapper's (so existing deployments keep working), with two defects
fixed:

- proc_wrapper treated *any* string it did not recognise as a file path and opened it.
  A typo (`AWS_SN:...`) or a secret placed where a location was expected then turned into
  an attempt to read a local file named after the secret. Here an unrecognised location is
  a `LocationError`. The one exception is deliberate and narrow: a *top-level* location
  (`--env`, `--config`) that looks like a file path (`.env`, `conf/app.json`,
  `/etc/app/secrets.env`: only path characters, and a `/` or a `.`) is read as FILE,
  because `pwsup -e .env` is the common way to use them and cannot be mistaken for a
  secret value. A resolvable variable (`X_FOR_PROC_WRAPPER_TO_RESOLVE`) always needs an
  explicit or detectable provider.
- proc_wrapper took the provider from the variable *name* (`ENV_X_FOR_...`), hijacking
  ordinary names such as `ENV_NAME` or `FILE_MODE`. That form is only honoured when the
  caller asks for it (`legacy_provider_of`, behind `--legacy-name-providers`).

Error messages never contain the location text: it may be the secret itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pwsup.secrets.errors import LocationError

PLAIN = "PLAIN"
ENV = "ENV"
CONFIG = "CONFIG"
AWS_SM = "AWS_SM"
AWS_SSM = "AWS_SSM"
AWS_APP_CONFIG = "AWS_APP_CONFIG"
AWS_S3 = "AWS_S3"
FILE = "FILE"

PROVIDERS = (PLAIN, ENV, CONFIG, AWS_SM, AWS_SSM, AWS_APP_CONFIG, AWS_S3, FILE)
"""Provider codes, in proc_wrapper's order of precedence."""

TOP_LEVEL_PROVIDERS = frozenset({PLAIN, AWS_SM, AWS_SSM, AWS_APP_CONFIG, AWS_S3, FILE})
"""Providers a top-level (`--env`/`--config`) location may use: ENV and CONFIG read the
environment and configuration being built, which do not exist yet at that point."""

PROVIDER_ALIASES = {"AWS_APPCONFIG": AWS_APP_CONFIG}
"""Spellings accepted besides the codes (the README says AWS_APPCONFIG)."""

LOCATION_FORMATS = {"dotenv": "dotenv", "json": "json", "yaml": "yaml", "yml": "yaml"}
"""`!format` suffixes (case-insensitive). `yml` is an addition; proc_wrapper had the others."""

_ARN = r"arn:aws(?:-[a-z]+)*:"  # any partition: aws, aws-cn, aws-us-gov, ...
_VALUE_PREFIXES: tuple[tuple[re.Pattern[str], str, bool], ...] = (
    # (prefix, provider, whether the prefix is stripped from the address)
    (re.compile(_ARN + "secretsmanager:"), AWS_SM, False),
    (re.compile("ssm:"), AWS_SSM, True),
    (re.compile(_ARN + "ssm:"), AWS_SSM, False),
    (re.compile("aws:appconfig:"), AWS_APP_CONFIG, True),
    (re.compile(_ARN + "s3:::"), AWS_S3, True),
    (re.compile("file://"), FILE, True),
)
"""Values recognised without an explicit provider code. ARNs of Secrets Manager and SSM
are kept whole (the provider reads the region from them); the other prefixes only say
which provider to use and are removed."""

_PATH_LIKE = re.compile(r"[A-Za-z0-9_.@+/-]+")


@dataclass(frozen=True)
class Location:
    """A parsed location. `address` is what the provider fetches; `format` the explicit
    `!format` (None: detect); `jsonpath` the `|JP:` expression (None: the whole value)."""

    provider: str
    address: str
    format: str | None = None
    jsonpath: str | None = None

    def __repr__(self) -> str:
        # The address may be a secret (PLAIN): keep it out of reprs, hence of tracebacks.
        return f"Location(provider={self.provider!r}, format={self.format!r})"


def parse_location(text: str, *, top_level: bool = False,
                   provider: str | None = None) -> Location:
    """Parse a location string.

    `top_level`: a `--env`/`--config` location (restricted providers, path-like strings
    are files). `provider`: the provider is already known (legacy name form); an explicit
    prefix of that provider in `text` is still removed.
    """
    body, jsonpath = _split_transform(text)
    body, fmt = _split_format(body)
    if provider is not None:
        code, address = _forced(provider, body)
    else:
        code, address = _detect(body, top_level=top_level)
    if top_level and code not in TOP_LEVEL_PROVIDERS:
        raise LocationError(f"the {code} provider cannot be used for a top-level location")
    if not address and code != PLAIN:
        raise LocationError(f"empty address for the {code} provider")
    return Location(code, address, fmt, jsonpath)


def provider_code(name: str) -> str | None:
    """The provider code for a code or alias (`AWS_APPCONFIG`), else None."""
    name = PROVIDER_ALIASES.get(name, name)
    return name if name in PROVIDERS else None


def legacy_provider_of(name: str) -> tuple[str, str] | None:
    """proc_wrapper's provider-in-the-name form: `ENV_GREETING` → (ENV, GREETING).

    Only for callers that enabled it: it reinterprets ordinary names.
    """
    for spelling in (*PROVIDERS, *PROVIDER_ALIASES):
        head = spelling + "_"
        if name.startswith(head) and len(name) > len(head):
            return PROVIDER_ALIASES.get(spelling, spelling), name[len(head):]
    return None


def _split_transform(text: str) -> tuple[str, str | None]:
    """Split off `|SELF` or `|JP:expr`: the first `|`, if it is neither the first
    character nor among the last two (proc_wrapper's rule; the address cannot hold `|`)."""
    bar = text.find("|")
    if not 0 < bar < len(text) - 2:
        return text, None
    body, transform = text[:bar], text[bar + 1:]
    if transform == "SELF":
        return body, None
    if transform.startswith("JP:"):
        expression = transform[3:]
        if not expression.strip():
            raise LocationError("empty JSONPath expression after |JP:")
        return body, expression
    raise LocationError("unknown transform after '|' (expected SELF or JP:<expression>)")


def _split_format(body: str) -> tuple[str, str | None]:
    bang = body.rfind("!")
    if bang < 0:
        return body, None
    fmt = LOCATION_FORMATS.get(body[bang + 1:].lower())
    if fmt is None:
        return body, None  # not a format: the `!` belongs to the address
    return body[:bang], fmt


def _explicit(body: str) -> tuple[str, str] | None:
    """(code, rest) when `body` starts with `CODE:`."""
    colon = body.find(":")
    if colon <= 0:
        return None
    code = provider_code(body[:colon])
    return None if code is None else (code, body[colon + 1:])


def _detect(body: str, *, top_level: bool) -> tuple[str, str]:
    explicit = _explicit(body)
    if explicit is not None:
        return explicit[0], _strip_own_prefix(explicit[0], explicit[1])
    for pattern, code, strip in _VALUE_PREFIXES:
        match = pattern.match(body)
        if match:
            return code, body[match.end():] if strip else body
    if top_level and _looks_like_path(body):
        return FILE, body
    raise LocationError(
        "no provider recognised in the location (start it with a provider code such as "
        "AWS_SM:, AWS_SSM:, AWS_S3:, FILE:, ENV:, CONFIG: or PLAIN:, or an ARN); "
        "its value is not shown because it may be a secret")


def _forced(provider: str, body: str) -> tuple[str, str]:
    code = provider_code(provider)
    if code is None:
        raise LocationError("unknown provider code")
    explicit = _explicit(body)
    if explicit is not None and explicit[0] == code:
        body = explicit[1]
    return code, _strip_own_prefix(code, body)


def _strip_own_prefix(code: str, address: str) -> str:
    """`AWS_S3:arn:aws:s3:::b/k` and `FILE:file:///x` mean the same as without the code."""
    for pattern, prefix_code, strip in _VALUE_PREFIXES:
        if strip and prefix_code == code:
            match = pattern.match(address)
            if match:
                return address[match.end():]
    return address


def _looks_like_path(body: str) -> bool:
    """Path characters only, and a directory separator or a dot (`.env`, `app.json`)."""
    return bool(_PATH_LIKE.fullmatch(body)) and ("/" in body or "." in body) \
        and body not in (".", "..")
