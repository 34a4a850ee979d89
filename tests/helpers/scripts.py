"""Python snippets for child programs (run with `runner.python_cmd(CODE, *args)`).

Every process they start ends by itself after `runner.CHILD_LIFETIME` seconds at most.
"""

from __future__ import annotations

from helpers.runner import CHILD_LIFETIME

LEAVE_DAEMONS = f"""
import os, signal, sys, time
count, exit_code = int(sys.argv[1]), int(sys.argv[2])
options = sys.argv[3:]
for _ in range(count):
    read_end, write_end = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.close(read_end)
        if "--same-group" not in options:
            os.setsid()
        if os.fork() == 0:
            if "--ignore-term" in options:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.write(write_end, str(os.getpid()).encode())
            os.close(write_end)
            time.sleep({CHILD_LIFETIME})
            os._exit(0)
        os._exit(0)
    os.close(write_end)
    daemon = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(middle, 0)
    print("daemon", daemon, flush=True)
print("ready", os.getpid(), flush=True)
print("exiting", time.monotonic(), flush=True)
raise SystemExit(exit_code)
"""
"""Child that leaves COUNT daemons behind (argv[1]) and exits with argv[2]. Each daemon is
a grandchild (fork, setsid, fork; the middle process exits), with stdio on /dev/null, and
is announced as `daemon <pid>` once it is set up. Options: --same-group (no setsid: the
daemon stays in the command's process group), --ignore-term (daemons ignore SIGTERM).
Prints `ready <pid>`, then `exiting <monotonic>` just before it exits."""


SPAWN_DAEMON = f"""
import os, signal, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        if "--ignore-term" in sys.argv[1:]:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(os.getpid(), flush=True)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        time.sleep({CHILD_LIFETIME})
    os._exit(0)
os.wait()
"""
"""A program that leaves a setsid()'d, double-forked daemon (ignoring SIGTERM with
`--ignore-term`) and prints its pid."""

RUN_ISOLATED_FORK_ERROR = """
from pwsup import run_isolated
from pwsup.supervisor.forking import ForkError
try:
    run_isolated(print, "ran")
except ForkError as e:
    print(f"{type(e).__name__}: {e}", flush=True)
    raise SystemExit(isinstance(e, OSError) and 71)
"""
"""A caller whose run_isolated cannot fork: prints `ForkError: <its text>`, exits 71 when
the error is also an OSError."""
