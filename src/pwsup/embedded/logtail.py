"""Log tails of a function call, as proc_wrapper's embedded mode keeps them.

A command's output is read from its pipes; a function's is whatever the caller routes
here: records through `ProcWrapper.get_embedded_logging_handler()`, lines through
`ProcWrapper.debug_output()`. Two bounded buffers keep the last lines, the debug tail
(every line when stdout and stderr are merged, the default) and the error tail, so the
final report carries the end of the story without holding the whole of it. A tail with
no line is not sent at all.

A tail belongs to one call: once a call's final report has taken its lines, the buffers are
emptied (not replaced, so a handler attached to a logger keeps feeding them), and the next
call of the same wrapper reports only what was logged after. proc_wrapper kept one tail per
wrapper, so a wrapper reused across calls (a Lambda handler's module-level wrapper) sent the
earlier calls' lines in a later execution's report (docs/differences.md D81).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pwsup.config.params import Params


class LogTails:
    """The last lines of a call's debug and error output."""

    def __init__(self) -> None:
        self.debug: deque[str] | None = None
        self.error: deque[str] | None = None

    def _buffer(self, params: Params, *, error: bool) -> deque[str] | None:
        size = params.log_capture_lines
        if size <= 0:
            return None
        if error and not params.merge_stdout_and_stderr_logs:
            if self.error is None:
                self.error = deque(maxlen=size)
            return self.error
        if self.debug is None:
            self.debug = deque(maxlen=size)
        return self.debug

    def handler(self, params: Params) -> logging.Handler:
        """A handler whose records go to the tail: the debug tail when output is merged,
        else the error tail (as proc_wrapper does)."""
        buffer = self._buffer(params, error=True)
        if buffer is None:
            return logging.NullHandler()
        return _DequeHandler(buffer, params.max_log_line_length)

    def add(self, params: Params, line: str) -> None:
        """One line of debug output."""
        buffer = self._buffer(params, error=False)
        if buffer is not None:
            buffer.append(_truncate(line, params.max_log_line_length))

    def clear(self) -> None:
        """Start the next call's tail: drop every line kept so far."""
        for buffer in (self.debug, self.error):
            if buffer is not None:
                buffer.clear()

    def report(self, params: Params, status: str) -> dict[str, str]:
        """The final report's tail fields for a call that ended with `status`."""
        if status == "SUCCEEDED":
            count = params.num_log_lines_sent_on_success
        elif status == "FAILED":
            count = params.num_log_lines_sent_on_failure
        else:
            count = params.num_log_lines_sent_on_timeout
        fields: dict[str, str] = {}
        for key, buffer in (("debug_log_tail", self.debug), ("error_log_tail", self.error)):
            lines = list(buffer or ())[-count:] if count > 0 else []
            if lines:
                fields[key] = "\n".join(lines) + "\n"
        return fields


def _truncate(line: str, limit: int) -> str:
    return line if limit <= 0 or len(line) <= limit else line[:limit]


class _DequeHandler(logging.Handler):
    def __init__(self, buffer: deque[str], max_line_length: int) -> None:
        super().__init__()
        self.buffer = buffer
        self.max_line_length = max_line_length

    def emit(self, record: logging.LogRecord) -> None:
        self.buffer.append(_truncate(self.format(record), self.max_line_length))
