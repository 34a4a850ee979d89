"""The exceptions of secret fetching and resolution.

Every message here is shown to the user and may end up in logs, Rollbar reports or the
server. A location string or a fetched value may *be* the secret (`PLAIN:hunter2`, a dotenv
file's content), so no message ever includes one: messages name the problem, the provider
and at most the variable name, never the data. Code that raises these must keep to that.
"""

from __future__ import annotations

from pwsup.errors import PwsupError


class SecretsError(PwsupError):
    """Base class. `str(error)` is safe to log: it never contains a secret value."""


class LocationError(SecretsError, ValueError):
    """A location string that cannot be parsed, or names a provider not allowed here."""


class FetchError(SecretsError):
    """A provider could not fetch the data (missing file, AWS error, no region...)."""


class FormatError(SecretsError):
    """Fetched data that is not valid in its format, or not the shape required."""


class UnresolvedError(SecretsError):
    """The data is missing rather than broken: an ENV variable that is not set, a
    JSONPath without a match. Resolution retries these in later passes (another variable
    may define it), and reports them as failures only if they stay unresolved."""


class MergeError(SecretsError):
    """Two values that a type-safe merge strategy refuses to combine."""
