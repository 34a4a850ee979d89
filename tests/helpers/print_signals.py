"""Child program for signal tests: prints `ready <pid>`, then one line per signal it receives.

Each line is written with a single os.write (unbuffered, atomic on a pipe), so lines from
this process and its forked twin never interleave and are seen the moment they happen.

Options:
  --exit-on SIGNAL[=CODE]  after printing SIGNAL, exit with CODE (default 0); repeatable
  --ignore SIGNAL          set SIGNAL to SIG_IGN (not reported); repeatable
  --default SIGNAL         set SIGNAL to SIG_DFL (so it kills the process); repeatable
  --fork                   fork a twin first (same process group) that reports the same
                           way, its lines prefixed with "forked "; `ready` is printed only
                           once the twin is ready too, after its `forked ready <pid>`
  --unblock                unblock every signal first (an inherited mask may block some)
  --lifetime SECONDS       exit 99 after this long whatever happens (default 30)

Signals reported unless changed: HUP INT QUIT USR1 USR2 WINCH TERM ALRM CONT.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import time

REPORTED = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGTERM",
            "SIGALRM", "SIGCONT")


def _signum(name: str) -> int:
    name = name.upper()
    return int(getattr(signal, name if name.startswith("SIG") else f"SIG{name}"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--exit-on", action="append", default=[])
    parser.add_argument("--ignore", action="append", default=[])
    parser.add_argument("--default", action="append", default=[])
    parser.add_argument("--fork", action="store_true")
    parser.add_argument("--unblock", action="store_true")
    parser.add_argument("--lifetime", type=float, default=30.0)
    args = parser.parse_args()

    # A core dump of a SIGQUIT test would only litter the disk.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if args.unblock:
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
    exit_codes: dict[int, int] = {}
    for spec in args.exit_on:
        name, _, code = spec.partition("=")
        exit_codes[_signum(name)] = int(code or 0)
    prefix = ""

    def report(signum: int, frame: object) -> None:
        os.write(1, f"{prefix}{signal.Signals(signum).name}\n".encode())
        if signum in exit_codes:
            os._exit(exit_codes[signum])

    for name in REPORTED:
        signal.signal(_signum(name), report)
    for name in args.ignore:
        signal.signal(_signum(name), signal.SIG_IGN)
    for name in args.default:
        signal.signal(_signum(name), signal.SIG_DFL)

    if args.fork:
        ready_read, ready_write = os.pipe()
        if os.fork() == 0:
            os.close(ready_read)
            prefix = "forked "
            os.write(1, f"forked ready {os.getpid()}\n".encode())
            os.close(ready_write)
        else:
            os.close(ready_write)
            while os.read(ready_read, 1):
                pass  # EOF: the twin has printed its ready line
            os.close(ready_read)
    if not prefix:
        os.write(1, f"ready {os.getpid()}\n".encode())

    end = time.monotonic() + args.lifetime
    while (left := end - time.monotonic()) > 0:
        time.sleep(left)  # signals interrupt it; their handlers run, then it goes on
    os._exit(99)


if __name__ == "__main__":
    main()
