"""Short text for log lines: the gist of an exception or of a server's answer."""

from __future__ import annotations

TRUNCATED = "...[truncated]"


def first_line(value: object, limit: int = 200) -> str:
    """The first line of `str(value)`, at most `limit` characters, marked when cut: error
    texts can span many lines (tracebacks, HTML error pages) and one log line needs the
    first."""
    text = str(value).strip()
    line = text.split("\n", 1)[0].rstrip("\r")
    return line if len(line) <= limit else line[:limit] + TRUNCATED
