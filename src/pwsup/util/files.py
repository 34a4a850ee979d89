"""Private files: input values and resolved secrets written for other programs to read.

They may hold secrets, so they are created with mode 0600 (whatever the umask), and each
write replaces the file atomically — a temporary file in the same directory, then
`os.replace` — so a reader never sees a half-written file and nothing stale survives.
"""

from __future__ import annotations

import contextlib
import os

FILE_MODE = 0o600


def write_private(path: str, text: str) -> None:
    """Atomically replace `path` with `text`, readable by the owner only."""
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{os.urandom(6).hex()}.tmp")
    fd = os.open(temporary, os.O_CREAT | os.O_WRONLY | os.O_TRUNC | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            os.fchmod(stream.fileno(), FILE_MODE)  # in case the umask removed owner bits
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def remove_quietly(path: str | None) -> None:
    """Delete a file if it is there."""
    if path:
        with contextlib.suppress(OSError):
            os.unlink(path)
