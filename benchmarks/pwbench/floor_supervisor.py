"""The floor of a supervisor written in Python, for the latency tables: the fewest steps
that still do the job pwsup's parent does on these two paths, and nothing else.

`python floor_supervisor.py CMD ARGS...` forks CMD in its own process group, then waits in
`poll` on the child's pidfd and a `set_wakeup_fd` pipe (no-op Python handlers), forwards
SIGTERM/SIGINT/SIGHUP to the group with `killpg`, and once the child has exited reaps it
and leaves with `os._exit` and the shell-style status (128+N after signal N). No watchdog,
no leftovers scan, no log line, no accounting: what it measures is the interpreter, the
kernel and the machine.
"""

from __future__ import annotations

import os
import select
import signal
import sys

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def main(argv: list[str]) -> None:
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd)
    for signum in (*FORWARDED, signal.SIGCHLD):
        signal.signal(signum, lambda *_: None)
    pid = os.fork()
    if pid == 0:
        os.setpgid(0, 0)
        signal.set_wakeup_fd(-1)
        for signum in FORWARDED:
            signal.signal(signum, signal.SIG_DFL)
        os.execvp(argv[0], argv)
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    poller.register(read_fd, select.POLLIN)
    while True:
        for fd, _events in poller.poll():
            if fd == read_fd:
                for signum in os.read(read_fd, 512):
                    if signum != signal.SIGCHLD:
                        os.killpg(pid, signum)
            else:
                _, status = os.waitpid(pid, 0)
                os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status)
                         else 128 + os.WTERMSIG(status))


if __name__ == "__main__":
    main(sys.argv[1:])
