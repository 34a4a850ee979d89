"""8. Status updates: how many datagrams the listener ingests, and what reaches the server.

A child (`status_child.py send`, pwsup's `StatusUpdater` for both wrappers, so the load is
the same) sends N updates with success_count = 1..N as fast as it can, then lives 1.5 s
more and exits 0. Each wrapper runs online against the fake API with its status listener
on a free UDP port. When the child reports SENT, the driver reads the listener socket's
line in /proc/net/udp: `drops` (datagrams the kernel threw away because the socket's
receive queue was full: the listener was not reading fast enough) and `rx_queue` (bytes
still queued). After the wrapper exits, the PATCHes the fake API recorded tell what
reached the server, above all whether the final one carries success_count = N.

The cost of one `send_update` call is measured apart (`status_child.py cost`), each
implementation in its own process.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from pwbench.context import Context
from pwbench.fake_api import FakeApi, Request
from pwbench.procs import BenchError, Proc, describe_status, now_ns
from pwbench.report import Section, codes, spread, target
from pwbench.wrappers import Wrapper

STATUS_CHILD = Path(__file__).resolve().parent / "status_child.py"
GOAL_PER_S = 20_000
CAP = 30.0
"""Seconds a wrapper may take to exit after the child's last update."""
HEARTBEAT = {"pwsup": "0.5", "proc_wrapper": "1"}
"""proc_wrapper 6.0.2 parses the heartbeat interval as an integer (0.5 is an error)."""
POLL = 0.002
DRAIN_WAIT = 1.4
"""Seconds after the last send the driver waits for the listener's queue to empty (the
child lives 1.5 s after its last send)."""
IMPLS = ("raw", "pwsup", "proc_wrapper")
IMPL_LABELS = {"raw": "raw `sendto` of the same bytes (floor)",
               "pwsup": "pwsup `StatusUpdater.send_update`",
               "proc_wrapper": "proc_wrapper 6.0.2 `StatusUpdater.send_update`"}


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def udp_socket_state(port: int) -> tuple[int, int] | None:
    """(drops, rx_queue bytes) of the UDP socket bound to `port`, from /proc/net/udp."""
    suffix = f":{port:04X}"
    with open("/proc/net/udp", encoding="ascii") as table:
        next(table)
        for line in table:
            fields = line.split()
            if len(fields) >= 13 and fields[1].endswith(suffix):
                return int(fields[12]), int(fields[4].split(":")[1], 16)
    return None


def wait_drained(port: int, deadline_ns: int) -> int | None:
    """When the socket's receive queue was first seen empty (polled every 2 ms), or None."""
    while now_ns() < deadline_ns:
        state = udp_socket_state(port)
        stamp = now_ns()
        if state is None or state[1] == 0:
            return stamp
        time.sleep(POLL)
    return None


@dataclass
class Samples:
    send_rate: list[float] = field(default_factory=list)
    drops: list[float] = field(default_factory=list)
    queued_kib: list[float] = field(default_factory=list)
    drained_ms: list[float] = field(default_factory=list)
    ingested_rate: list[float] = field(default_factory=list)
    server_count: list[str] = field(default_factory=list)
    latest: list[str] = field(default_factory=list)
    patches: list[float] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)


def _server_count(patches: list[Request]) -> tuple[object, str]:
    """The success_count the server ends with (PATCHes merge) and which PATCH set it."""
    for request in reversed(patches):
        if "success_count" in request.body:
            final = request.body.get("status") not in (None, "RUNNING")
            return request.body["success_count"], "final PATCH" if final else "heartbeat"
    return None, "never sent"


def _once(ctx: Context, api: FakeApi, wrapper: Wrapper, count: int, sample: Samples) -> None:
    port = free_udp_port()
    env = {**ctx.env, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
           "PROC_WRAPPER_API_BASE_URL": api.url_for(wrapper.key),
           "PROC_WRAPPER_API_KEY": "bench-key", "PROC_WRAPPER_TASK_NAME": "bench",
           "PROC_WRAPPER_OFFLINE_MODE": "FALSE",
           "PROC_WRAPPER_API_REQUEST_TIMEOUT_SECONDS": "5",
           "PROC_WRAPPER_API_HEARTBEAT_INTERVAL_SECONDS": HEARTBEAT[wrapper.key],
           "PROC_WRAPPER_ENABLE_STATUS_UPDATE_LISTENER": "TRUE",
           "PROC_WRAPPER_STATUS_UPDATE_SOCKET_PORT": str(port)}
    with ctx.reports() as reports:
        cmd = [str(ctx.venv.python), str(STATUS_CHILD), "send", "pwsup", str(count),
               str(reports.path)]
        assert wrapper.exe
        argv = [wrapper.exe, "--", *cmd] if wrapper.key == "pwsup" else [wrapper.exe, *cmd]
        with Proc(argv, env) as proc:
            proc.watch(reports.ready(15.0)[1])  # killed on close if left behind
            fields = reports.expect("SENT", 60.0)
            state = udp_socket_state(port)  # right away: nothing is sent after SENT
            if fields is None:
                raise BenchError(f"{wrapper.label}: the status child never reported SENT")
            if state is None:
                raise BenchError(f"{wrapper.label}: no UDP socket on port {port} (listener "
                                 "not open?)")
            first, last = int(fields[1]), int(fields[2])
            drops, queued = state
            drained = wait_drained(port, last + int(DRAIN_WAIT * 1e9))
            sample.send_rate.append(count / ((last - first) / 1e9))
            sample.drops.append(drops)
            sample.queued_kib.append(queued / 1024)
            if drained is not None:
                sample.drained_ms.append((drained - first) / 1e6)
                sample.ingested_rate.append((count - drops) / ((drained - first) / 1e9))
            exited = proc.wait_exit(CAP - (now_ns() - last) / 1e9)
            sample.statuses.append("still running at the cap (killed)" if exited is None
                                   else describe_status(proc.reap()))
    patches = [r for r in api.of(wrapper.key) if r.method == "PATCH"]
    value, source = _server_count(patches)
    sample.server_count.append(f"{value} ({source})")
    sample.latest.append("yes" if value == count else "NO")
    sample.patches.append(sum(1 for r in patches if "success_count" in r.body))


def _cost(ctx: Context, impl: str, calls: int) -> float:
    """Nanoseconds per `send_update` call, in a fresh process."""
    result = subprocess.run([str(ctx.venv.python), str(STATUS_CHILD), "cost", impl,
                             str(calls)], env=ctx.env, capture_output=True, text=True,
                            timeout=300, check=False, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise BenchError(f"send_update cost of {impl} failed: {result.stderr.strip()}")
    return float(result.stdout.split()[0])


def _k(values: list[float]) -> str:
    return spread([value / 1000 for value in values], 1)


def run(ctx: Context) -> Section:
    wrappers = ctx.installed("pwsup", "proc_wrapper")
    count = ctx.reps.status_updates
    samples = {w.key: Samples() for w in wrappers}
    with FakeApi() as api:
        for index in range(ctx.reps.status):
            shift = index % len(wrappers)
            for wrapper in [*wrappers[shift:], *wrappers[:shift]]:
                api.scenario()
                _once(ctx, api, wrapper, count, samples[wrapper.key])
    costs: dict[str, list[float]] = {impl: [] for impl in IMPLS}
    for index in range(ctx.reps.send_rounds):
        shift = index % len(IMPLS)
        for impl in [*IMPLS[shift:], *IMPLS[:shift]]:
            costs[impl].append(_cost(ctx, impl, ctx.reps.send_calls) / 1000)
    rows = []
    for wrapper in wrappers:
        s = samples[wrapper.key]
        goal = ""
        undrained = len(s.statuses) - len(s.drained_ms)
        if wrapper.key == "pwsup":
            worst = min(s.ingested_rate) if s.ingested_rate else 0.0
            lost = s.latest.count("NO")
            goal = target(f"≥ {GOAL_PER_S:,}/s ingested, latest value delivered",
                          worst >= GOAL_PER_S and not undrained and not lost,
                          f"slowest {worst:,.0f}/s; latest value lost in {lost} of "
                          f"{len(s.latest)} run(s)")
        rows.append([wrapper.label.split()[0], f"{HEARTBEAT[wrapper.key]} s",
                     str(len(s.statuses)), _k(s.send_rate), spread(s.drops, 0),
                     spread(s.queued_kib, 0),
                     spread(s.drained_ms, 0) + (f"; not empty ×{undrained}" if undrained
                                                else ""),
                     _k(s.ingested_rate), codes(s.server_count), codes(s.latest),
                     spread(s.patches, 0), codes(s.statuses), goal])
    section = Section(
        f"8. Status updates ({count:,} as fast as possible)",
        "The child sends success_count = 1..N through pwsup's `StatusUpdater` (same sender "
        "for both wrappers), lives 1.5 s more and exits 0; each wrapper runs online "
        "against the fake API with `PROC_WRAPPER_ENABLE_STATUS_UPDATE_LISTENER=TRUE` on a "
        "free UDP port. Right after the last send, the listener socket's line of "
        "/proc/net/udp gives the datagrams the kernel dropped (receive queue full: the "
        "listener did not keep up) and the bytes still queued; then the driver polls it "
        "every 2 ms until the queue is empty. Ingested/s = (N − drops) / (first send → "
        "queue empty). The server's success_count is the last one any PATCH carried "
        "(PATCHes merge), and which PATCH carried it. Rates in thousands per second.",
        ["wrapper", "heartbeat", "N runs", "sent, k/s", "dropped by the kernel",
         "queued when sending ended, KiB", "first send → queue empty, ms", "ingested, k/s",
         "server's success_count at the end", f"= {count:,} (latest value)?",
         "PATCHes with success_count", "wrapper exit status", "target (pwsup)"],
        rows)
    section.notes.append(
        "Cost of one `send_update(success_count=i)` call, µs, each implementation in its "
        f"own process, {ctx.reps.send_calls:,} calls after 1,000 warm-up calls, to a UDP "
        "socket that is never read (the kernel drops what does not fit), median "
        f"(min–max) over {ctx.reps.send_rounds} process(es): "
        + "; ".join(f"{IMPL_LABELS[impl]}: {spread(costs[impl])}" for impl in IMPLS) + ".")
    section.notes.append(
        "proc_wrapper reads its socket only between polls of the child (every heartbeat "
        "interval, or when the child exits), one 4 KiB `recv_into` at a time, with the "
        "default receive buffer; pwsup's reporter (a separate process, at niceness +5) "
        "reads whenever the socket is readable, with a receive buffer of max(16 × the "
        "message limit, 1 MiB) (the kernel doubles it and caps it at net.core.rmem_max, "
        f"{_rmem_max()} here). When a receive queue is full the kernel drops the datagrams "
        "that arrive, i.e. the newest values.")
    return section


def _rmem_max() -> str:
    try:
        return Path("/proc/sys/net/core/rmem_max").read_text(encoding="ascii").strip() \
            + " bytes"
    except OSError:
        return "unknown"
