"""Process trees and their memory, read from /proc: who is whose child, what each process
executes, and its proportional set size (PSS).

PSS (`/proc/PID/smaps_rollup`) charges each page to the processes that map it in equal
shares: a page private to a process counts whole, a page shared by n processes (the
interpreter's text, copy-on-write memory after a fork) counts 1/n to each. So the PSS of a
set of processes adds up to the memory they take, with what they share with the rest of the
machine split fairly — the figure that grows by exactly one service's worth when one more
service is started.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass


@dataclass(frozen=True)
class Seen:
    """A process as one scan of /proc saw it: pid and start time (clock ticks after boot),
    which together name it even once the pid is reused."""

    pid: int
    start: int


def stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of `pid`, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            data = file.read()
    except OSError:
        return None
    # The command name (2nd field) may hold spaces and parentheses: split after the last ')'.
    fields = data[data.rindex(b")") + 2:].split()
    return int(fields[1]), int(fields[19])


def children() -> dict[int, list[Seen]]:
    """Every live process's children, by parent pid (one pass over /proc)."""
    kids: dict[int, list[Seen]] = defaultdict(list)
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            found = stat(int(entry.name))
            if found is not None:
                kids[found[0]].append(Seen(int(entry.name), found[1]))
    return kids


def descendants(root: int, kids: dict[int, list[Seen]]) -> list[Seen]:
    """Every descendant of `root` in the scan `kids` (not root itself)."""
    found: list[Seen] = []
    stack = [root]
    while stack:
        for child in kids.get(stack.pop(), []):
            found.append(child)
            stack.append(child.pid)
    return found


def exe(pid: int) -> str | None:
    """The file `pid` executes (None if gone or a zombie)."""
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def pss_kib(pid: int) -> int:
    """The PSS of `pid` in KiB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as file:
            for line in file:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def own_processes(root: Seen, kids: dict[int, list[Seen]], command: str
                  ) -> tuple[list[Seen], int]:
    """A wrapper's own processes: `root` and its descendants, except the processes that
    execute `command` (a real path) and theirs; and how many such commands run."""
    own: list[Seen] = []
    commands = 0
    stack = [root]
    while stack:
        process = stack.pop()
        if exe(process.pid) == command:
            commands += 1
            continue
        own.append(process)
        stack.extend(kids.get(process.pid, []))
    return own, commands
