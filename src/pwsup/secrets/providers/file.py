"""FILE: a local file, read as UTF-8 (`FILE:/run/secrets/db.json`, `file:///...`).

Only a regular file is read, and at most --config-size-limit bytes of it: a location
naming a FIFO, a device (`/dev/zero`) or a huge file is an error, not a hang or a fill of
the resolver's memory. Relative paths are relative to the resolver's working directory.
Errors report the reason (`No such file or directory`) but not the path: the locations
that reach here are recognised as files, yet a path can still reveal more than the log
reader should see.
"""

from __future__ import annotations

from pwsup.secrets.errors import FetchError
from pwsup.secrets.providers.base import Fetched
from pwsup.util.files import TooLarge, read_regular


class FileProvider:
    cacheable = True

    def __init__(self, limit: int) -> None:
        self.limit = limit
        """The largest file read, in bytes (--config-size-limit)."""

    def fetch(self, address: str) -> Fetched:
        try:
            return Fetched(read_regular(address, self.limit).decode("utf-8"))
        except UnicodeDecodeError:
            raise FetchError("the file is not valid UTF-8") from None
        except TooLarge as error:
            raise FetchError(f"cannot read the file: {error} (--config-size-limit)") from None
        except ValueError as error:
            raise FetchError(f"cannot read the file: {error}") from None
        except OSError as error:
            reason = error.strerror or type(error).__name__
            raise FetchError(f"cannot read the file: {reason}") from None
