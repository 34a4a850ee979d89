"""Private files: input values and resolved secrets written for other programs to read.

They may hold secrets, so they are created with mode 0600 (whatever the umask), and each
write replaces the file atomically — a temporary file in the same directory, then
`os.replace` — so a reader never sees a half-written file and nothing stale survives.

pwsup replaces or removes only regular files. A path it is told to write to
(`--input-filename`, `--env-output-filename`, `--config-output-filename`) may be new or
an existing regular file; anything else there — a device such as `/dev/full`, a FIFO, a
socket, a directory or a symbolic link (whatever it points to) — would be destroyed by the
replace, so it is refused: by the configuration check at start (`not_regular_kind`:
nothing is written), and again by `write_private` just before it would replace it.
Removal (`remove_quietly`) looks at the path itself (`lstat`, never following a link) and
unlinks only a regular file, so a cleanup never deletes a device node, a FIFO, a
directory or a link (nor what a link points to).
"""

from __future__ import annotations

import errno
import os
import stat

from pwsup.errors import PwsupError

FILE_MODE = 0o600


class NotRegular(PwsupError, OSError):
    """A path to write to that exists and is not a regular file; `strerror` says what it
    is, e.g. "it is a FIFO, not a regular file"."""


def not_regular_kind(path: str) -> str | None:
    """What is at `path` if it is there and is not a regular file ("a character device",
    "a FIFO", "a symbolic link", ...); None for a regular file or nothing (or a path that
    cannot be examined: writing to it will say why). The path itself is examined: a
    symbolic link is "a symbolic link", whatever it points to."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    return None if stat.S_ISREG(mode) else _file_kind(mode)


def identity(path: str) -> tuple[int, int] | None:
    """(st_dev, st_ino) of the regular file at `path`; None if there is none (nothing,
    something else, or a symbolic link). A file replaced by `write_private` has a new one."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISREG(info.st_mode) else None


def write_private(path: str, text: str) -> tuple[int, int]:
    """Atomically replace `path` with `text`, readable by the owner only; the identity
    (st_dev, st_ino) of the file written, for `remove_quietly`.

    `path` must be new or a regular file: anything else there raises NotRegular and is
    left as it was (`os.replace` would put a regular file in its place — a device node or
    a FIFO another program uses destroyed, a symbolic link replaced rather than followed)."""
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{os.urandom(6).hex()}.tmp")
    fd = os.open(temporary, os.O_CREAT | os.O_WRONLY | os.O_TRUNC | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            os.fchmod(stream.fileno(), FILE_MODE)  # in case the umask removed owner bits
            stream.write(text)
            info = os.fstat(stream.fileno())
        kind = not_regular_kind(path)  # as late as can be: just before the replace
        if kind is not None:
            raise NotRegular(errno.EEXIST, f"it is {kind}, not a regular file")
        os.replace(temporary, path)
    except BaseException:
        remove_quietly(temporary)
        raise
    return info.st_dev, info.st_ino


def remove_quietly(path: str | None, written: tuple[int, int] | None = None) -> None:
    """Delete the regular file at `path` if it is there (and, given `written`, the identity
    `write_private` returned, only if it is still that file: the same inode).

    Whatever else is at `path` is left alone: a device node, a FIFO, a socket, a directory,
    and a symbolic link — neither the link nor what it points to is removed (`lstat`, never
    following it)."""
    if path:
        try:
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode) and written in (None, (info.st_dev, info.st_ino)):
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
             (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"))
    return next((name for test, name in kinds if test(mode)), "not a plain file")
