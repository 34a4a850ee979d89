"""FILE: a local file, read as UTF-8 (`FILE:/run/secrets/db.json`, `file:///...`).

Relative paths are relative to the resolver's working directory. Errors report the
reason (`No such file or directory`) but not the path: the locations that reach here are
recognised as files, yet a path can still reveal more than the log reader should see.
"""

from __future__ import annotations

from pwsup.secrets.errors import FetchError
from pwsup.secrets.providers.base import Fetched


class FileProvider:
    cacheable = True

    def fetch(self, address: str) -> Fetched:
        try:
            with open(address, encoding="utf-8") as stream:
                return Fetched(stream.read())
        except UnicodeDecodeError:
            raise FetchError("the file is not valid UTF-8") from None
        except OSError as error:
            reason = error.strerror or type(error).__name__
            raise FetchError(f"cannot read the file: {reason}") from None
