"""A framed, non-blocking message channel over a pair of pipes.

Why not `multiprocessing.Pipe`: its `send` blocks when the pipe is full, so a reporter that
stalls (stopped, swapped out, stuck in a C call) would stall the parent's loop — and with
it signal forwarding and SIGKILL escalation. Here `send` only queues; the owner's event
loop calls `flush()` when the pipe is writable and `receive()` when it is readable, and
neither ever blocks. (It also keeps `multiprocessing` and `pickle` out of the parent's
start-up imports, and the message classes are imported on first use, since creating
dataclasses costs milliseconds.) Frames are a 4-byte big-endian length then the payload, as in
multiprocessing's own connections.

EOF on the read side means the peer is gone: that is how parent and reporter watch each
other.
"""

from __future__ import annotations

import errno
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pwsup.ipc.messages import Message

MAX_FRAME = 16 * 1024 * 1024
_HEADER = 4


class Channel:
    """One end of a duplex channel: `read_fd` receives frames, `write_fd` sends them."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)
        self._inbox = bytearray()
        self._outbox = bytearray()
        self.eof = False
        self.write_closed = False

    # -- sending ------------------------------------------------------------------------------

    def send(self, message: Message) -> None:
        """Queue a message and write as much as the pipe takes now."""
        from pwsup.ipc.messages import encode  # imported on first use: see the module doc

        payload = encode(message)
        self._outbox += len(payload).to_bytes(_HEADER, "big") + payload
        self.flush()

    @property
    def pending_output(self) -> bool:
        return bool(self._outbox) and not self.write_closed

    def flush(self) -> None:
        """Write queued bytes until the pipe is full or the queue is empty."""
        while self._outbox and not self.write_closed:
            try:
                written = os.write(self.write_fd, self._outbox)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno in (errno.EPIPE, errno.EBADF):
                    self.write_closed = True
                    self._outbox.clear()
                    return
                raise
            del self._outbox[:written]

    # -- receiving ----------------------------------------------------------------------------

    def receive(self, on_bad_frame: Callable[[str], None]) -> list[Message]:
        """Read what is available; return the complete messages. Sets `eof` at EOF."""
        while not self.eof:
            try:
                chunk = os.read(self.read_fd, 65536)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno != errno.EBADF:
                    raise
                chunk = b""
            if not chunk:
                self.eof = True
                break
            self._inbox += chunk
        return self._take_frames(on_bad_frame)

    def _take_frames(self, on_bad_frame: Callable[[str], None]) -> list[Message]:
        if len(self._inbox) < _HEADER:
            return []  # nothing to decode: the message classes need not be imported
        from pwsup.ipc.messages import DecodeError, decode

        messages: list[Message] = []
        while len(self._inbox) >= _HEADER:
            size = int.from_bytes(self._inbox[:_HEADER], "big")
            if size > MAX_FRAME:
                on_bad_frame(f"frame of {size} bytes is over the limit; channel reset")
                self._inbox.clear()
                break
            if len(self._inbox) < _HEADER + size:
                break
            payload = bytes(self._inbox[_HEADER:_HEADER + size])
            del self._inbox[:_HEADER + size]
            try:
                messages.append(decode(payload))
            except DecodeError as e:
                on_bad_frame(str(e))
        return messages

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        self.eof = self.write_closed = True


def channel_pair() -> tuple[Channel, Channel]:
    """Two connected ends. Both fds of each end are close-on-exec."""
    a_read, b_write = os.pipe()
    b_read, a_write = os.pipe()
    return Channel(a_read, a_write), Channel(b_read, b_write)

