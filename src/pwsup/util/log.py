"""pwsup's own log lines: one format, one redaction rule, for every process.

The parent does not import `logging`: on a small machine that import alone costs more than
half of Python's own start-up, and the parent's start-up and exit latency are headline
figures. It writes through `Log` instead, a small emitter with levels. The reporter and
embedded mode use the standard `logging` module (libraries such as requests log there),
with `LogHandler` routing every record through the same `Log`, so a line looks the same
and is redacted the same whichever process wrote it.

Lines go to stderr with a single `os.write`, so they never interleave mid-line with the
command's own output. Text format:

    PWSUP: 2026-11-28 20:13:58,123 INFO: message
    PWSUP: [1a2b3c4d] 2026-11-28 20:13:58,123 INFO: message   (once the execution is known)

JSON format (`--log-format json`): one object per line with the stable keys `timestamp`,
`level`, `message`, `process`, `execution_uuid`.

Redaction: every registered secret (API key, Rollbar token, resolved secret values) is
replaced by `***` in every line at every level, unless --log-secrets.

Nothing from outside can forge or break a line. Messages quote what the outside controls —
argv, the command's output, a server's answer — so every character that is not printable
(newlines, other control characters, Unicode line separators, and the bytes of argv that
were not UTF-8) is escaped as Python writes it (`\\n`, `\\x1b`, `\\u2028`); one record is
always one line.

Nor can the log hold up the supervisor. A line is written only if stderr can take it now:
when the reader of a pipe stopped reading and the pipe is full, the line is dropped (and
the count of dropped lines said with the next line that gets through) rather than blocking
a process that must forward signals. A closed stderr, a full disk or a broken pipe just
lose the lines.
"""

from __future__ import annotations

import os
import time

from pwsup.util.waiting import wait

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging

DEBUG, INFO, WARNING, ERROR, CRITICAL = 10, 20, 30, 40, 50
LEVEL_NAMES = {DEBUG: "DEBUG", INFO: "INFO", WARNING: "WARNING", ERROR: "ERROR",
               CRITICAL: "CRITICAL"}
LEVELS = {name: number for number, name in LEVEL_NAMES.items()}
JSON_KEYS = ("timestamp", "level", "message", "process", "execution_uuid")
"""The keys of every JSON log line, in order: a stable interface for log collectors."""
REDACTED = "***"
MIN_SECRET_LENGTH = 4
"""Shorter values are not redacted: replacing every "1" or "yes" would garble the log."""
MAX_LINE_BYTES = 4096
"""A longer line is cut: up to PIPE_BUF bytes, a write to a pipe that poll() says has room
is written whole, at once, never interleaved with another writer's."""
_CUT = " [...]\n"


class Log:
    """A leveled line emitter with redaction. One per process."""

    def __init__(self, process: str, level: int = INFO, *, json_lines: bool = False,
                 timestamps: bool = True, redact: bool = True, fd: int = 2) -> None:
        self.process = process
        self.level = level
        self.json_lines = json_lines
        self.timestamps = timestamps
        self.redact = redact
        self.fd = fd
        self.execution_uuid: str | None = None
        self.dropped = 0
        """Lines dropped since the last one written (stderr was a full pipe)."""
        self._secrets: list[str] = []

    def add_secret(self, value: str | None) -> None:
        if value and len(value) >= MIN_SECRET_LENGTH and value not in self._secrets:
            self._secrets.append(value)
            self._secrets.sort(key=len, reverse=True)  # longest first: no partial leftovers

    def scrub(self, text: str) -> str:
        if self.redact:
            for secret in self._secrets:
                text = text.replace(secret, REDACTED)
        return text

    def enabled(self, level: int) -> bool:
        return level >= self.level

    def emit(self, level: int, message: str, when: float | None = None) -> None:
        if level < self.level:
            return
        text = self.scrub(message)
        if not text.isprintable():
            text = escape(text)
        line = self.format(level, text, time.time() if when is None else when)
        self._write(line.encode("utf-8", "replace"))

    def _write(self, data: bytes) -> None:
        """Write one line if stderr can take it without blocking; else count it dropped."""
        if len(data) > MAX_LINE_BYTES:
            data = data[:MAX_LINE_BYTES - len(_CUT)] + _CUT.encode()
        try:
            if not wait(write=(self.fd,), timeout=0)[1]:
                self.dropped += 1
                return
            if self.dropped:
                note = f"{self.dropped} log lines dropped: stderr was full"
                self.dropped = 0
                os.write(self.fd, self.format(WARNING, note, time.time()).encode())
            os.write(self.fd, data)
        except (OSError, ValueError):
            pass  # stderr closed, a full disk, a broken pipe: never take the supervisor down

    def format(self, level: int, message: str, when: float) -> str:
        name = LEVEL_NAMES.get(level, str(level))
        stamp = _timestamp(when)
        if self.json_lines:
            import json

            record = {"timestamp": stamp, "level": name, "message": message,
                      "process": self.process, "execution_uuid": self.execution_uuid}
            return json.dumps(record, ensure_ascii=False) + "\n"
        tag = f"[{self.execution_uuid[:8]}] " if self.execution_uuid else ""
        when_text = f"{stamp} " if self.timestamps else ""
        return f"PWSUP: {tag}{when_text}{name}: {message}\n"

    def debug(self, message: str) -> None:
        self.emit(DEBUG, message)

    def info(self, message: str) -> None:
        self.emit(INFO, message)

    def warning(self, message: str) -> None:
        self.emit(WARNING, message)

    def error(self, message: str) -> None:
        self.emit(ERROR, message)


def escape(text: str) -> str:
    """`text` with every character that is not printable escaped; the bytes of argv that
    were not UTF-8 (decoded by Python as lone surrogates) come out as `\\xNN`."""
    return "".join(char if char.isprintable() else _escaped(char) for char in text)


def _escaped(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    return ascii(char)[1:-1]


def _timestamp(when: float) -> str:
    millis = int(when * 1000) % 1000
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(when)) + f",{millis:03d}Z"


def make_handler(log: Log) -> logging.Handler:
    """A `logging.Handler` that writes records through `log` (reporter, embedded mode)."""
    import logging

    class LogHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                message = record.getMessage()
                if record.exc_info:
                    message += "\n" + logging.Formatter().formatException(record.exc_info)
                log.emit(record.levelno, message, record.created)
            except Exception:  # a broken log call must not break the caller
                self.handleError(record)

    return LogHandler(level=log.level)
