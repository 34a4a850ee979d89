"""The sender of the status benchmark; run with the benchmark venv's python (it imports
pwsup, or cloudreactor-procwrapper's `proc_wrapper`).

    python status_child.py send IMPL N REPORT_FIFO
        READY, then N x `send_update(success_count=i)` for i = 1..N as fast as it can,
        then "SENT <N> <first ns> <last ns>" (CLOCK_MONOTONIC around the loop), sleeps 1.5 s
        and exits 0.
    python status_child.py cost IMPL N
        Prints "<ns per call> <N>": N calls of `send_update(success_count=i)` (after 1,000
        warm-up calls) to a UDP socket of its own that is never read, so the kernel drops
        what does not fit, silently, as it does for a listener that falls behind.

IMPL: `pwsup` (`from pwsup import StatusUpdater`), `proc_wrapper` (cloudreactor-procwrapper
6.0.2's `proc_wrapper.StatusUpdater`) or `raw` (one `sendto` of the same bytes: the floor).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable

LINGER = 1.5
"""Seconds the sender stays alive after its last update, so the listener can catch up."""
WARMUP = 1000


def sender(impl: str) -> Callable[[int], None]:
    if impl == "raw":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        address = ("127.0.0.1", int(os.environ["PROC_WRAPPER_STATUS_UPDATE_SOCKET_PORT"]))

        def send_raw(count: int) -> None:
            try:
                sock.sendto((json.dumps({"success_count": count}) + "\n").encode(), address)
            except OSError:
                pass
        return send_raw
    if impl == "pwsup":
        from pwsup import StatusUpdater
    elif impl == "proc_wrapper":
        from proc_wrapper import StatusUpdater  # type: ignore[no-redef]
    else:
        raise SystemExit(f"unknown implementation {impl!r}")
    updater = StatusUpdater()
    if not updater.enabled:
        raise SystemExit("the StatusUpdater is disabled: listener variables missing")

    def send(count: int) -> None:
        updater.send_update(success_count=count)
    return send


def send_mode(impl: str, count: int, fifo: str) -> None:
    fd = os.open(fifo, os.O_WRONLY)
    send = sender(impl)
    os.write(fd, f"READY {time.monotonic_ns()} {os.getpid()} 0\n".encode())
    first = time.monotonic_ns()
    for value in range(1, count + 1):
        send(value)
    last = time.monotonic_ns()
    os.write(fd, f"SENT {count} {first} {last}\n".encode())
    time.sleep(LINGER)
    os._exit(0)


def cost_mode(impl: str, count: int) -> None:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    os.environ["PROC_WRAPPER_ENABLE_STATUS_UPDATE_LISTENER"] = "TRUE"
    os.environ["PROC_WRAPPER_STATUS_UPDATE_SOCKET_PORT"] = str(sink.getsockname()[1])
    send = sender(impl)
    for value in range(WARMUP):
        send(value)
    started = time.perf_counter_ns()
    for value in range(count):
        send(value)
    elapsed = time.perf_counter_ns() - started
    print(f"{elapsed / count:.1f} {count}")


def main() -> None:
    signal.alarm(120)  # never linger if left behind
    mode, impl, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "send":
        send_mode(impl, count, sys.argv[4])
    else:
        cost_mode(impl, count)


if __name__ == "__main__":
    main()
