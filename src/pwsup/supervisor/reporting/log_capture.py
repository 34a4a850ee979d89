"""Log tails: the command's output passes through to pwsup's, and its last lines are kept.

When a run sends log lines with its final status (--num-log-lines-sent-on-*), the command's
stdout and stderr are pipes. The parent creates them once and hands the write ends to every
attempt; the reporter holds the read ends, copies every byte to pwsup's own stdout and
stderr as it arrives (unchanged, binary included), and keeps the last lines of each in a
ring buffer, decoded as UTF-8 with bad bytes replaced.

Doing this in the reporter keeps the parent out of it: a slow reader of pwsup's output can
never delay signal handling. And because the reporter reads raw bytes and decodes them
leniently, a command that writes binary cannot kill the copier and then deadlock on a full
pipe (proc_wrapper's text-mode reader thread did exactly that).
"""

from __future__ import annotations

import os
from collections import deque

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pwsup.config.params import Params


def cut(line: str, limit: int) -> str:
    """A line no longer than `limit`, ending in '...' when cut."""
    return line if len(line) <= limit else line[:max(limit - 3, 0)] + "..."


class Stream:
    """One captured stream: its pipe, where it is copied to, and its recent lines."""

    def __init__(self, read_fd: int, copy_to: int, tail: deque[str] | None,
                 max_line: int) -> None:
        self.read_fd = read_fd
        self.copy_to = copy_to
        self.tail = tail
        self.max_line = max_line
        self._partial = b""
        os.set_blocking(read_fd, False)

    def pump(self) -> None:
        """Copy and record whatever is available now."""
        while True:
            try:
                data = os.read(self.read_fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                return
            if not data:
                return
            _write_all(self.copy_to, data)
            self._record(data)

    def _record(self, data: bytes) -> None:
        if self.tail is None:
            return
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > self.max_line * 4:  # a line that never ends: keep it bounded
            self.tail.append(cut(self._partial.decode("utf-8", "replace"), self.max_line))
            self._partial = b""
        for line in lines:
            self.tail.append(cut(line.decode("utf-8", "replace"), self.max_line) + "\n")

    def flush_partial(self) -> None:
        """At the end, an unterminated last line still counts."""
        if self.tail is not None and self._partial:
            self.tail.append(cut(self._partial.decode("utf-8", "replace"), self.max_line))
            self._partial = b""


class LogCapture:
    """Both streams of the command; tails merged or separate, as configured."""

    def __init__(self, stdout_fd: int, stderr_fd: int, *, lines: int, max_line: int,
                 merge: bool, ignore_stdout: bool, ignore_stderr: bool) -> None:
        self.lines = lines
        out_tail: deque[str] = deque(maxlen=lines)
        err_tail: deque[str] = out_tail if merge else deque(maxlen=lines)
        self.out_tail, self.err_tail, self.merge = out_tail, err_tail, merge
        self.streams = [
            Stream(stdout_fd, 1, None if ignore_stdout else out_tail, max_line),
            Stream(stderr_fd, 2, None if ignore_stderr else err_tail, max_line),
        ]

    @classmethod
    def open(cls, p: Params, fds: tuple[int, int] | None) -> LogCapture | None:
        """The capture of the command's (stdout, stderr) pipes, when they were created."""
        if fds is None:
            return None
        return cls(fds[0], fds[1], lines=p.log_capture_lines, max_line=p.max_log_line_length,
                   merge=p.merge_stdout_and_stderr_logs, ignore_stdout=p.ignore_stdout,
                   ignore_stderr=p.ignore_stderr)

    def fds(self) -> list[tuple[int, Stream]]:
        return [(s.read_fd, s) for s in self.streams]

    def tails(self, count: int) -> dict[str, str]:
        """`debug_log_tail` (stdout, or both when merged) and `error_log_tail`, last `count`
        lines each, after reading everything still in the pipes."""
        for stream in self.streams:
            stream.pump()
            stream.flush_partial()
        if count <= 0:
            return {}
        fields = {"debug_log_tail": "".join(list(self.out_tail)[-count:])}
        if not self.merge:
            fields["error_log_tail"] = "".join(list(self.err_tail)[-count:])
        return fields


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            from pwsup.util.waiting import wait

            wait(write=[fd], timeout=1.0)
            continue
        except OSError:
            return  # our own stdout is gone: keep recording the tail anyway
        view = view[written:]
