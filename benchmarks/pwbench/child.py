"""The instrumented command the benchmarks wrap (stdlib only; run as a script).

    python child.py MODE REPORT_FIFO

It reports on the FIFO (opened by path, so wrappers that close inherited descriptors or
capture stdout make no difference), one line per event:

    READY <monotonic ns> <pid> <process CPU ns>   after set-up, in every mode but zombies
    EXIT <monotonic ns>                          exit: just before os._exit(0)
    TERM <monotonic ns>                          term: first thing in the SIGTERM handler
    ZOMBIES <count>                              zombies: zombies in /proc after ~1 s

Timestamps are CLOCK_MONOTONIC (`time.monotonic_ns()`), which every process on the machine
shares (no time namespaces are used) and which, unlike CLOCK_REALTIME, is never stepped.

Modes:
    exit     READY, sleep SETTLE, EXIT, os._exit(0)
    late-exit  READY, sleep LATE_EXIT (2 s), EXIT, os._exit(0)
    term     SIGTERM handler records TERM then dies of SIGTERM; waits in signal.pause()
    ignore   SIGTERM ignored; sleeps (only SIGKILL ends it)
    sleep    sleeps 30 s with default dispositions (for time limits)
    zombies  double-forks 5 grandchildren that exit after 0.2 s, counts zombies after 1 s
"""

from __future__ import annotations

import os
import signal
import sys
import time

SETTLE = 0.1
"""Seconds the exit mode waits so the wrapper is idle in its wait when the command exits."""
LATE_EXIT = 2.0
"""Seconds the late-exit mode runs (so that a 1 s heartbeat is in flight when it exits)."""
SAFETY_ALARM = 60
"""SIGALRM (default action: die) so a child that is somehow left behind does not linger."""
ORPHANS = 5


def report(fd: int, *fields: object) -> None:
    os.write(fd, (" ".join(str(field) for field in fields) + "\n").encode())


def ready(fd: int) -> None:
    cpu = time.process_time_ns()
    report(fd, "READY", time.monotonic_ns(), os.getpid(), cpu)


def mode_exit(fd: int) -> None:
    ready(fd)
    time.sleep(SETTLE)
    report(fd, "EXIT", time.monotonic_ns())
    os._exit(0)


def mode_late_exit(fd: int) -> None:
    ready(fd)
    time.sleep(LATE_EXIT)
    report(fd, "EXIT", time.monotonic_ns())
    os._exit(0)


def mode_term(fd: int) -> None:
    def on_term(signum: int, frame: object) -> None:
        report(fd, "TERM", time.monotonic_ns())
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_term)
    ready(fd)
    while True:
        signal.pause()


def mode_ignore(fd: int) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ready(fd)
    time.sleep(SAFETY_ALARM)


def mode_sleep(fd: int) -> None:
    ready(fd)
    time.sleep(30)


def _orphan() -> None:
    """Fork a child that forks a grandchild and exits: the grandchild is orphaned."""
    middle = os.fork()
    if middle == 0:
        if os.fork() == 0:
            time.sleep(0.2)
            os._exit(0)
        os._exit(0)
    os.waitpid(middle, 0)


def count_zombies() -> int:
    count = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as stat:
                text = stat.read()
        except OSError:
            continue
        if text[text.rindex(")") + 2] == "Z":
            count += 1
    return count


def mode_zombies(fd: int) -> None:
    for _ in range(ORPHANS):
        _orphan()
    time.sleep(1.0)
    report(fd, "ZOMBIES", count_zombies())
    os._exit(0)


MODES = {"exit": mode_exit, "late-exit": mode_late_exit, "term": mode_term,
         "ignore": mode_ignore, "sleep": mode_sleep, "zombies": mode_zombies}


def main() -> None:
    mode, fifo = sys.argv[1], sys.argv[2]
    signal.alarm(SAFETY_ALARM)
    MODES[mode](os.open(fifo, os.O_WRONLY))


if __name__ == "__main__":
    main()
