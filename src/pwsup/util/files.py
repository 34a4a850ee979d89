"""Private files: input values and resolved secrets written for other programs to read.

They may hold secrets, so they are created with mode 0600 (whatever the umask), and each
write replaces the file atomically — a temporary file in the same directory, then
`os.replace` — so a reader never sees a half-written file and nothing stale survives.
"""

from __future__ import annotations

import os
import stat

from pwsup.errors import PwsupError

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
        remove_quietly(temporary)
        raise


def remove_quietly(path: str | None) -> None:
    """Delete a file if it is there."""
    if path:
        try:
            os.unlink(path)
        except OSError:  # (not contextlib.suppress: its import is on pwsup's start path)
            pass


class TooLarge(PwsupError, ValueError):
    """A file over the size limit a reader set."""


def read_regular(path: str, limit: int) -> bytes:
    """The bytes of the regular file at `path`, at most `limit` of them.

    Anything else is refused with ValueError before a byte is read: a FIFO would block
    the reader until some writer came (it is opened non-blocking, so even the open cannot
    hang), `/dev/zero` or `/dev/urandom` would never end, a directory has no bytes. A file
    larger than `limit` (or one that grows past it while read) is refused too, so a
    reader's memory is bounded whatever the path names. OSError as `open` raises it."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"not a regular file ({_file_kind(info.st_mode)})")
        if info.st_size > limit:
            raise TooLarge(f"larger than the limit of {limit} bytes")
        os.set_blocking(fd, True)
        chunks, size = [], 0
        while size <= limit and (chunk := os.read(fd, min(1 << 20, limit + 1 - size))):
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise TooLarge(f"larger than the limit of {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a plain file")
