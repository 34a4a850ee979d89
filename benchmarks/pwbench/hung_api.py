"""7. A hung API server: pwsup and proc_wrapper 6.0.2 against the same fake that never answers.

Both wrappers are configured by environment variables only, online, against one
`FakeApi` (pwbench/fake_api.py) that is switched per case: creation (POST) answered and
every PATCH hung, or creation hung. A hung request is read whole and never answered; it
is dropped when the run is over. Every run is capped: a wrapper still running at the cap is
reported as "> cap" and SIGKILLed (with its process group), and that (case, wrapper) is not
run again.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pwbench.context import Context
from pwbench.fake_api import FakeApi, Request
from pwbench.procs import BenchError, Proc, Reports, describe_status, now_ns, wait_events
from pwbench.report import Section, codes, spread
from pwbench.wrappers import Wrapper

COMMON = {
    "PROC_WRAPPER_API_KEY": "bench-key",
    "PROC_WRAPPER_TASK_NAME": "bench",
    "PROC_WRAPPER_OFFLINE_MODE": "FALSE",
    "PROC_WRAPPER_API_REQUEST_TIMEOUT_SECONDS": "5",
    "PROC_WRAPPER_API_RETRY_DELAY_SECONDS": "2",
    "PROC_WRAPPER_API_HEARTBEAT_INTERVAL_SECONDS": "1",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
"""Every case; each adds its own. Heartbeats every 1 s, so one is in flight (hung) early."""
TERM_AFTER = 1.5
"""Seconds after READY that case (a) sends SIGTERM: the first heartbeat (at 1 s) is hung."""
READY_WAIT = 15.0
"""How long a case with an answered creation waits for the child's READY."""
WRAPPERS = ("pwsup", "proc_wrapper")


@dataclass
class Run:
    """One run's result: the timed interval (None: past the cap), a second one, status."""

    value_ms: float | None
    also_ms: float | None
    status: str
    requests: str


@dataclass
class Samples:
    values: list[float] = field(default_factory=list)
    also: list[float] = field(default_factory=list)
    over_cap: int = 0
    statuses: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


Seen = Callable[[], list[Request]]
"""The requests the fake API has recorded for this run's wrapper so far."""
Measure = Callable[[Proc, Reports, float, Seen], tuple[float | None, float | None]]


@dataclass(frozen=True)
class Case:
    key: str
    what: str
    also: str
    mode: str
    env: dict[str, str]
    measure: Measure
    hang_post: bool = False
    hang_patch: bool = False


def _term(proc: Proc, reports: Reports, cap: float, seen: Seen
          ) -> tuple[float | None, float | None]:
    """(a): SIGTERM 1.5 s after READY; SIGTERM → wrapper exit, SIGTERM → child's handler."""
    proc.watch(reports.ready(READY_WAIT)[1])  # killed on close if the wrapper leaves it
    time.sleep(TERM_AFTER)
    sent = now_ns()
    proc.signal(signal.SIGTERM)
    exited = proc.wait_exit(cap)
    fields = reports.expect("TERM", 0.2)
    handled = None if fields is None else (int(fields[0]) - sent) / 1e6
    return (None if exited is None else (exited - sent) / 1e6), handled


def _late_exit(proc: Proc, reports: Reports, cap: float, seen: Seen
               ) -> tuple[float | None, float | None]:
    """(b): the child exits 2 s after READY; its exit → the wrapper's exit."""
    proc.watch(reports.ready(READY_WAIT)[1])
    fields = reports.expect("EXIT", 10.0)
    if fields is None:
        raise BenchError("the child never reported EXIT")
    child_exit = int(fields[0])
    exited = proc.wait_exit(cap - (now_ns() - child_exit) / 1e9)
    return (None if exited is None else (exited - child_exit) / 1e6), None


def _time_limit(proc: Proc, reports: Reports, cap: float, seen: Seen
                ) -> tuple[float | None, float | None]:
    """(c): 1 s limit around `sh sleep_child.sh` (exec sleep 30): wrapper exit and the
    command's death, both minus READY minus 1000 ms."""
    found = reports.arrival("READY", READY_WAIT)
    if found is None:
        raise BenchError("the command never reported READY")
    ready, pid = found[0], int(found[1][0])
    child_fd = proc.watch(pid)
    fds = {"wrapper": proc.pidfd} | ({} if child_fd is None else {"child": child_fd})
    seen = wait_events(fds, cap - (now_ns() - ready) / 1e9)
    killed = seen.get("child")
    exited = seen.get("wrapper")
    return ((None if exited is None else (exited - ready) / 1e6 - 1000),
            (None if killed is None else (killed - ready) / 1e6 - 1000))


def _start_delay(proc: Proc, reports: Reports, cap: float, seen: Seen
                 ) -> tuple[float | None, float | None]:
    """(d): creation hangs; wrapper spawn → the child's READY (received by the driver), and
    wrapper spawn → its creation request reaching the server."""
    found = reports.arrival("READY", cap - (now_ns() - proc.started_ns) / 1e9)
    if found is not None:
        proc.watch(int(found[1][1]))  # proc_wrapper's command has a session of its own
    posts = [request.at_ns for request in seen() if request.method == "POST"]
    posted = (min(posts) - proc.started_ns) / 1e6 if posts else None
    return (None if found is None else (found[0] - proc.started_ns) / 1e6), posted


CASES = (
    Case("a", "(a) SIGTERM → wrapper exit; PATCH hangs; grace 1 s",
         "SIGTERM → child's handler", "term",
         {"PROC_WRAPPER_PROCESS_TERMINATION_GRACE_PERIOD_SECONDS": "1"}, _term,
         hang_patch=True),
    Case("b", "(b) child exit → wrapper exit; PATCH hangs; final-update timeout 3 s",
         "", "late-exit", {"PROC_WRAPPER_API_FINAL_UPDATE_TIMEOUT_SECONDS": "3"}, _late_exit,
         hang_patch=True),
    Case("c", "(c) 1 s time limit: wrapper exit − READY − 1000; PATCH hangs; final-update "
         "timeout 3 s", "command killed − READY − 1000", "sleep-sh",
         {"PROC_WRAPPER_PROCESS_TIMEOUT_SECONDS": "1",
          "PROC_WRAPPER_API_FINAL_UPDATE_TIMEOUT_SECONDS": "3"}, _time_limit,
         hang_patch=True),
    Case("d", "(d) wrapper spawn → child READY; POST (creation) hangs; creation-error "
         "timeout 5 s", "wrapper spawn → POST received", "sleep",
         {"PROC_WRAPPER_API_TASK_CREATION_ERROR_TIMEOUT_SECONDS": "5"}, _start_delay,
         hang_post=True),
)


def _command(ctx: Context, wrapper: Wrapper, reports: Reports, mode: str) -> list[str]:
    """The wrapper online, configured by environment only (proc_wrapper: no `--`)."""
    cmd = (ctx.sleep_child(reports.path) if mode == "sleep-sh"
           else ctx.child(mode, reports.path))
    assert wrapper.exe
    return [wrapper.exe, "--", *cmd] if wrapper.key == "pwsup" else [wrapper.exe, *cmd]


def _requests(api: FakeApi, client: str) -> str:
    seen = api.of(client)
    posts = sum(1 for request in seen if request.method == "POST")
    return f"{posts}/{len(seen) - posts}"


def _once(ctx: Context, api: FakeApi, wrapper: Wrapper, case: Case, cap: float) -> Run:
    """One run; the server must already be set for `case`. Requests are told apart by the
    base URL's path (`/<wrapper key>`), so runs of different wrappers may overlap."""
    env = {**ctx.env, **COMMON, "PROC_WRAPPER_API_BASE_URL": api.url_for(wrapper.key),
           **case.env}
    with ctx.reports() as reports, Proc(_command(ctx, wrapper, reports, case.mode),
                                        env) as proc:
        value, also = case.measure(proc, reports, cap, lambda: api.of(wrapper.key))
        if value is None:
            status = ("command not started within the cap" if case.key == "d"
                      else "still running at the cap (killed)")
        elif case.key == "d":
            status = "— (killed after READY)"
        else:
            status = describe_status(proc.reap())
        requests = _requests(api, wrapper.key)
    return Run(value, also, status, requests)


def _together(ctx: Context, api: FakeApi, wrappers: list[Wrapper], case: Case, cap: float
              ) -> list[Run]:
    """Runs of every wrapper at the same time (quick mode), one thread each.

    The threads are not daemons: on Ctrl-C the interpreter waits for them (at most the
    cap), and each one's `with Proc` kills what it started.
    """
    results: dict[str, Run | BaseException] = {}

    def one(wrapper: Wrapper) -> None:
        try:
            results[wrapper.key] = _once(ctx, api, wrapper, case, cap)
        except BaseException as error:  # handed to the main thread
            results[wrapper.key] = error

    threads = [threading.Thread(target=one, args=(w,), name=f"hung-{w.key}")
               for w in wrappers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    runs = []
    for wrapper in wrappers:
        result = results[wrapper.key]
        if isinstance(result, BaseException):
            raise result
        runs.append(result)
    return runs


def _record(sample: Samples, result: Run) -> None:
    if result.value_ms is None:
        sample.over_cap += 1
    else:
        sample.values.append(result.value_ms)
    if result.also_ms is not None:
        sample.also.append(result.also_ms)
    sample.statuses.append(result.status)
    sample.requests.append(result.requests)


def _collect(ctx: Context, api: FakeApi, wrappers: list[Wrapper], cap: float
             ) -> dict[tuple[str, str], Samples]:
    samples = {(case.key, w.key): Samples() for case in CASES for w in wrappers}
    for case in CASES:
        for index in range(ctx.reps.hung):
            # past the cap once: it would be again, and each such run costs the cap
            live = [w for w in wrappers if not samples[case.key, w.key].over_cap]
            if not live:
                break
            shift = index % len(live)
            live = [*live[shift:], *live[:shift]]
            if ctx.quick:
                api.scenario(hang_post=case.hang_post, hang_patch=case.hang_patch)
                results = _together(ctx, api, live, case, cap)
            else:
                results = []
                for wrapper in live:
                    api.scenario(hang_post=case.hang_post, hang_patch=case.hang_patch)
                    results.append(_once(ctx, api, wrapper, case, cap))
            api.release()
            for wrapper, result in zip(live, results, strict=True):
                _record(samples[case.key, wrapper.key], result)
    return samples


def _cell(sample: Samples, cap: float) -> str:
    parts = []
    if sample.values:
        parts.append(spread(sample.values, 1))
    if sample.over_cap:
        parts.append(f"> {cap * 1000:.0f} (cap)" + (f" ×{sample.over_cap}"
                                                     if sample.values else ""))
    return "; ".join(parts) or "—"


def run(ctx: Context) -> Section:
    wrappers = ctx.installed(*WRAPPERS)
    cap = ctx.reps.hung_cap
    with FakeApi() as api:
        samples = _collect(ctx, api, wrappers, cap)
    rows = []
    for case in CASES:
        for wrapper in wrappers:
            sample = samples[case.key, wrapper.key]
            also = f"{case.also}: {spread(sample.also, 1)}" if case.also else ""
            rows.append([case.what, wrapper.label.split()[0],
                         str(len(sample.values) + sample.over_cap), _cell(sample, cap), also,
                         codes(sample.statuses), codes(sample.requests)])
    return Section(
        "7. Hung API server",
        "pwsup and proc_wrapper 6.0.2 online against the same fake CloudReactor API "
        "(`pwbench/fake_api.py`, 127.0.0.1) that reads a request and never answers it. "
        "Configuration by environment only: `PROC_WRAPPER_API_REQUEST_TIMEOUT_SECONDS=5`, "
        "`PROC_WRAPPER_API_RETRY_DELAY_SECONDS=2`, "
        "`PROC_WRAPPER_API_HEARTBEAT_INTERVAL_SECONDS=1`, plus what each case names. "
        f"Each run is capped at {cap:g} s (from the event the case times); a run past "
        "the cap is SIGKILLed and not repeated. Times in ms.",
        ["case", "wrapper", "N", "ms, median (min–max)", "also, ms", "wrapper exit status",
         "API requests seen (POST/PATCH)"],
        rows,
        ["pwsup bounds (a) by `PROC_WRAPPER_SHUTDOWN_REPORT_TIMEOUT_SECONDS` (default 5 s; "
         "proc_wrapper has no such setting and retries its final update for "
         "`PROC_WRAPPER_API_FINAL_UPDATE_TIMEOUT_SECONDS`, default 1800 s), and (b)/(c) by "
         "`PROC_WRAPPER_API_FINAL_UPDATE_TIMEOUT_SECONDS=3` (both wrappers).",
         "proc_wrapper sends heartbeats from its only thread: a hung one blocks its loop "
         "for the request timeout (5 s), then is retried after the retry delay for up to "
         "`PROC_WRAPPER_API_ERROR_TIMEOUT_SECONDS` (default 300 s); the PATCH count of its "
         "(b) row is those retries, and the child's exit goes unnoticed meanwhile. In (c) its "
         "first heartbeat is due at the same moment as the 1 s limit (its heartbeat "
         "interval is whole seconds only) and its loop checks the limit first, so no "
         "heartbeat was in flight (1 PATCH: the final one): its limit is on time, and its "
         "exit waits for one whole request timeout (5 s), longer than the 3 s final-update "
         "timeout.",
         "(d): with the creation request hung and no `--prevent-offline-execution`, pwsup "
         "starts the command only when the creation-error timeout (5 s) has passed, like "
         "proc_wrapper: that is the protocol (the server may answer 409 = do not run), "
         "not a bug. The child is Python (`child.py`), whose READY comes ~20–30 ms after "
         "its own spawn. \"wrapper spawn → POST received\" is when the fake API had read "
         "the creation request: pwsup's reporter process imports `requests` (and urllib3) "
         "before its first request; proc_wrapper uses the standard library's urllib."])
