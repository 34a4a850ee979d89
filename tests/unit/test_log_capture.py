"""Log tails: output passes through unchanged and the last lines are kept."""

from __future__ import annotations

import os

from pwsup.supervisor.reporting.log_capture import LogCapture, cut


def make(lines: int = 3, *, merge: bool = True, max_line: int = 20,
         ignore_stdout: bool = False) -> tuple[LogCapture, tuple[int, int], tuple[int, int]]:
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    sink_out_r, sink_out_w = os.pipe()
    sink_err_r, sink_err_w = os.pipe()
    capture = LogCapture(out_r, err_r, lines=lines, max_line=max_line, merge=merge,
                         ignore_stdout=ignore_stdout, ignore_stderr=False)
    capture.streams[0].copy_to, capture.streams[1].copy_to = sink_out_w, sink_err_w
    return capture, (out_w, err_w), (sink_out_r, sink_err_r)


def close_all(capture: LogCapture, *pairs: tuple[int, int]) -> None:
    for stream in capture.streams:
        os.close(stream.read_fd)
        os.close(stream.copy_to)
    for a, b in pairs:
        os.close(a)
        os.close(b)


def test_output_passes_through_unchanged_and_tails_are_kept() -> None:
    """Bytes are copied as they are (binary too); tails keep the last N decoded lines."""
    capture, (out_w, err_w), (sink_out, sink_err) = make(lines=2)
    try:
        os.write(out_w, b"one\ntwo\n\xff\xfe three\nfour")
        os.write(err_w, b"oops\n")
        for stream in capture.streams:
            stream.pump()
        assert os.read(sink_out, 100) == b"one\ntwo\n\xff\xfe three\nfour"
        assert os.read(sink_err, 100) == b"oops\n"
        tails = capture.tails(2)
        assert tails == {"debug_log_tail": "oops\nfour"}  # merged: stderr came in last
    finally:
        close_all(capture, (out_w, err_w), (sink_out, sink_err))


def test_separate_tails_and_long_lines_are_cut() -> None:
    """Separate stdout/stderr tails; lines over the limit end in '...'."""
    capture, (out_w, err_w), sinks = make(lines=5, merge=False, max_line=10)
    try:
        os.write(out_w, b"a" * 30 + b"\nshort\n")
        os.write(err_w, b"err line\n")
        assert capture.tails(5) == {"debug_log_tail": "aaaaaaa...\nshort\n",
                                    "error_log_tail": "err line\n"}
    finally:
        close_all(capture, (out_w, err_w), sinks)


def test_ignored_stream_passes_through_but_stays_out_of_the_tail() -> None:
    """--ignore-stdout keeps stdout out of the tail, not out of pwsup's output."""
    capture, (out_w, err_w), (sink_out, sink_err) = make(ignore_stdout=True)
    try:
        os.write(out_w, b"visible\n")
        assert capture.tails(3) == {"debug_log_tail": ""}
        assert os.read(sink_out, 100) == b"visible\n"
    finally:
        close_all(capture, (out_w, err_w), (sink_out, sink_err))


def test_cut() -> None:
    """Cutting keeps the limit, ellipsis included."""
    assert cut("abcdef", 10) == "abcdef"
    assert cut("abcdefghijkl", 10) == "abcdefg..."
