"""The chaos matrix: every meaningful (phase, fault) pair, one test id each
(`running-SIGKILL_reporter`), with its expected outcome — and the same invariants checked
after every case.

A case drives pwsup (or, for `embedded`, a Python program calling run_isolated) to the
phase's synchronisation point — a handshake line, a request the fake API server recorded,
a resolver blocked on a FIFO — waits a random 0-100 ms (seeded: `--chaos-seed`, see
conftest.py), injects the fault, and then states what must have happened in an `Expect`.
`Chaos.check` asserts it together with the invariants:

1. pwsup never hangs: it exits within a hard deadline (and within the case's own bound).
2. The exit code is the documented one (README "Exit codes"; a negative code is pwsup
   itself killed by that signal).
3. Nothing of the run is left: every process of pwsup's tree is gone within a bound (and,
   when pwsup exited by itself, nothing outlived it, its reporter included), no zombie is
   left among the test's children after reaping, and the test process has no descendant.
4. The final report: delivered exactly once when the API recovers in time (the fake server
   counts final-status PATCHes answered 2xx), and logged as lost otherwise ("could not be
   delivered" on pwsup's stderr); never two executions created.
5. No secret in any output: the API key, the Rollbar token and resolved secret values are
   canaries (`chaos-canary-…`) that must not appear on stdout or stderr.
6. The protocol: no request the fake server flags as a violation.

Cells that make no sense are listed in NOT_APPLICABLE (with the reason), cells that an
existing chaos test already covers in ELSEWHERE; `test_matrix_accounts_for_every_cell`
checks that each cell is exactly one of: a case, N/A, covered elsewhere. The summary
table (conftest.py prints it after the session; `python tests/chaos/test_matrix.py`
prints the Markdown version used in docs/chaos.md) is built from the same data.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if __name__ == "__main__":  # `python tests/chaos/test_matrix.py`: print the docs table
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import procs
from helpers.bounds import SLACK
from helpers.fake_cloudreactor import (
    TASK_EXECUTION_PATH,
    TASK_EXECUTIONS_PATH,
    FakeCloudReactor,
    Hang,
    Malformed,
    RecordedRequest,
    Reset,
    Respond,
    Slow,
)
from helpers.fake_rollbar import FakeRollbar
from helpers.fake_rollbar import Hang as RollbarHang
from helpers.held_aws import SECRET_ARN, HeldAws
from helpers.runner import PWSUP, PYTHON, Running, clean_env

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

pytestmark = pytest.mark.chaos

CHAOS_MATRIX = True
"""Marks this module for conftest.py's summary."""

# -- the matrix's axes -----------------------------------------------------------------------------

PHASES: dict[str, str] = {
    "options": "option parsing (pwsup's start-up, before its signal handlers exist)",
    "resolution": "secret resolution (FILE/PLAIN providers, in the resolver process)",
    "creation": "Task Execution creation, conflict retries included",
    "start": "the command has just been spawned (--send-pid update in flight)",
    "running": "running, with heartbeats and status updates flowing",
    "retry": "the retry delay between two attempts",
    "timeout": "time-limit escalation (SIGTERM sent, grace period running)",
    "shutdown": "shutdown grace period after pwsup got SIGTERM",
    "final": "the final update",
    "embedded_args": "run_isolated, the worker materialising fn's arguments",
    "embedded_running": "run_isolated, fn running (after an update_status)",
    "embedded_returning": "run_isolated, the worker pickling fn's return value",
}
FAULTS: dict[str, str] = {
    "SIGKILL_parent": "SIGKILL of pwsup itself (the parent)",
    "SIGKILL_reporter": "SIGKILL of the reporter process",
    "SIGKILL_resolver": "SIGKILL of the resolver process",
    "SIGKILL_worker": "SIGKILL of run_isolated's worker, from outside",
    "SIGKILL_child": "SIGKILL of the command",
    "SIGKILL_grandchild": "SIGKILL of a process the command started",
    "SIGTERM": "SIGTERM to pwsup (embedded: to the caller)",
    "SIGINT": "SIGINT to pwsup (embedded: to the caller)",
    "SIGHUP": "SIGHUP to pwsup",
    "SIGTERM_twice": "two SIGTERMs in quick succession",
    "SIGINT_twice": "two SIGINTs in quick succession",
    "API_hang": "the API server reads the request and never answers",
    "API_reset": "the API server resets the connection",
    "API_5xx": "the API server answers 5xx",
    "API_409": "the API server answers 409 (conflict / execution stopped)",
    "API_409_forever": "the API server answers 409 to every start request",
    "API_429": "the API server answers 429 with Retry-After",
    "API_malformed": "the API server answers with malformed JSON",
    "API_slow": "the API server trickles its answer for 1.5-2 s",
    "Rollbar_hang": "Rollbar never answers",
    "metadata_hang": "ECS_CONTAINER_METADATA_URI_V4 is a listener that never answers",
    "status_port_taken": "the status-update UDP port is already bound",
    "disk_full": "a full disk (16 KiB tmpfs) for the files pwsup writes",
    "fd_exhaustion": "a low RLIMIT_NOFILE (swept from 5 to 20)",
    "AWS_unreachable": "AWS Secrets Manager unreachable mid-resolution",
}

# -- timing ----------------------------------------------------------------------------------------

GRACE = 0.5
"""--process-termination-grace-period, except in the shutdown phase."""
SHUTDOWN_GRACE = 1.0
"""The grace period of the shutdown phase: the fault must land inside it after a handshake."""
HEARTBEAT = 0.3
REPORT_CAP = 1.0
"""--shutdown-report-timeout."""
FINAL_TIMEOUT = 3.0
"""--api-final-update-timeout (and the other API deadlines)."""
RETRY_DELAY = 1.0
"""--process-retry-delay in the retry phase (long enough for a fault after a handshake)."""
METADATA_BOUND = 4.0
"""The README's bound on the start delay a hung metadata endpoint causes."""
ROLLBAR_TIMEOUT = 1.0
"""--rollbar-timeout: the longest pwsup's exit may wait for a Rollbar that hangs."""
JITTER = 0.1
HARD_DEADLINE = 20.0
"""The longest any pwsup run of the matrix may take: past it, it hangs."""
LEFTOVER_BOUND = SHUTDOWN_GRACE + SLACK
"""After pwsup's exit, how long what is left of its tree may take to go (a reporter that
terminates an orphaned group: TERM, grace, KILL)."""
LONG = 30.0
"""A grace period, retry delay or report deadline that a case makes long on purpose: one
that checks pwsup does *not* wait for it then fails (pwsup hangs past HARD_DEADLINE)
instead of passing within the bound plus SLACK."""
LIFETIME = 20
"""Every child program gives up after this long, whatever happens."""

TASK = "chaos-matrix-task"
CANARY_KEY = "chaos-canary-key-4f1c2b7a9d3e5f60718293a"
CANARY_ROLLBAR = "chaos-canary-rollbar-0b5d7c9e1f2a3b4c5d6e"
CANARY_SECRET = "chaos-canary-secret-file-6a8b0c2d4e"
CANARY_PLAIN = "chaos-canary-secret-plain-1357913579"
CANARIES = (CANARY_KEY, CANARY_ROLLBAR, CANARY_SECRET, CANARY_PLAIN)
LOST_MARKERS = ("final status could not be delivered", "final report could not be delivered")
"""How pwsup says the final report is lost (the reporter, or the parent at its deadline)."""
FINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TERMINATED_AFTER_TIME_OUT", "ABORTED"})

# -- the programs pwsup runs -----------------------------------------------------------------------

CHILD = textwrap.dedent(f"""
    import json, os, select, signal, socket, sys, time
    args = sys.argv[1:]
    def opt(name, default=None):
        return args[args.index(name) + 1] if name in args else default
    def say(text):
        os.write(1, (text + "\\n").encode())
    end = time.monotonic() + {LIFETIME}
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    def report(signum, frame):
        say(signal.Signals(signum).name)
    modes = {{"report": report, "ignore": signal.SIG_IGN, "default": signal.SIG_DFL}}
    for name in ("SIGHUP", "SIGINT", "SIGTERM"):
        signal.signal(getattr(signal, name), modes[opt("--" + name, "default")])
    counter = opt("--fail-first")
    if counter is not None:
        done = int(open(counter).read()) if os.path.exists(counter) else 0
        with open(counter, "w") as f:
            f.write(str(done + 1))
        if done == 0:
            say(f"attempt {{os.getpid()}}")
            sys.exit(3)
    if "--grandchild" in args:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.write(w, b"x")
            os.close(w)
            while time.monotonic() < end:
                time.sleep(0.05)
            os._exit(0)
        os.close(w)
        os.read(r, 1)
        os.close(r)
        say(f"grandchild {{pid}}")
    say(f"ready {{os.getpid()}}")
    linger = opt("--linger")
    if linger is not None:
        time.sleep(float(linger))
        sys.exit(int(opt("--exit", "0")))
    port = os.environ.get("PROC_WRAPPER_STATUS_UPDATE_SOCKET_PORT")
    sock = None
    if "--status" in args and port:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        target = (os.environ.get("PROC_WRAPPER_STATUS_UPDATE_HOST", "127.0.0.1"), int(port))
    count = 0
    while time.monotonic() < end:
        if sock is not None:
            count += 1
            message = {{"success_count": count, "last_status_message": f"tick {{count}}"}}
            sock.sendto((json.dumps(message) + "\\n").encode(), target)
        if select.select([0], [], [], 0.05)[0]:
            line = sys.stdin.readline()
            sys.exit(int(line.split()[1]) if line.startswith("exit ") else 0)
    sys.exit(99)
    """)
"""The command: unblocks every signal; `--SIGHUP/--SIGINT/--SIGTERM report|ignore|default`
(report: print the signal's name and go on; default: die of it); `--fail-first FILE`: the
first attempt prints `attempt <pid>` and exits 3; `--grandchild`: fork a process of the same
group (and handlers) first, announced as `grandchild <pid>`; then `ready <pid>`. With
`--linger S` it exits with `--exit N` (default 0) after S seconds; otherwise it sends a status
update every 50 ms (`--status`, when the listener is on) until a line on stdin ("exit N":
exit N; anything else or EOF: exit 0)."""

EXEC_WRAPPER = textwrap.dedent("""
    import os, resource, signal, sys
    args = sys.argv[1:]
    split = args.index("--")
    options, argv = args[:split], args[split + 1:]
    for flag, value in zip(options[::2], options[1::2]):
        if flag == "--block":
            signal.pthread_sigmask(signal.SIG_BLOCK, {getattr(signal, value)})
        elif flag == "--ignore":
            signal.signal(getattr(signal, value), signal.SIG_IGN)
        elif flag == "--nofile":
            resource.setrlimit(resource.RLIMIT_NOFILE, (int(value), int(value)))
    os.write(1, f"exec {os.getpid()}\\n".encode())
    os.execv(argv[0], argv)
    """)
"""Sets up what pwsup starts with, then exec's it (same pid): `--block SIG` (a signal sent
after its `exec <pid>` line stays pending across the exec), `--ignore SIG`, `--nofile N`
(RLIMIT_NOFILE). Then `--` and pwsup's argv."""

EMBEDDED_CALLER = textwrap.dedent(f"""
    import os, sys, time
    from pwsup.embedded.isolated import run_isolated, update_status
    phase = sys.argv[1]
    def say(text):
        os.write(1, (text + "\\n").encode())
    def block(where):
        say(f"{{where}} {{os.getpid()}}")
        time.sleep({LIFETIME})
    class LazyArgument:
        @property
        def value(self):
            if phase == "args":
                block("args")
            return 6
    class Result:
        def __reduce__(self):
            if phase == "returning":
                block("returning")
            return (int, (7,))
    def fn(argument):
        argument.value
        if phase == "running":
            update_status(step=1)
            block("running")
        return Result()
    say(f"caller {{os.getpid()}}")
    try:
        value = run_isolated(fn, LazyArgument(), timeout=15, grace={GRACE},
                             on_status=lambda fields: say(f"status {{fields}}"))
    except KeyboardInterrupt:
        say("outcome KeyboardInterrupt")
        sys.exit(130)
    except Exception as e:
        say(f"outcome {{type(e).__name__}}: {{e}}")
        sys.exit(1)
    say(f"value {{value!r}}")
    """)
"""A program calling run_isolated. The worker blocks (announcing `<phase> <pid>`) where the
phase says: `args` — materialising fn's (lazy) argument, before fn's own work: with fork,
arguments are copied and never pickled, so this is where argument handling happens;
`running` — in fn's body, after an update_status; `returning` — pickling fn's return value.
The caller prints `outcome <exception>: <message>` (exit 1; 130 for KeyboardInterrupt) or
`value <value>`."""


# -- expectations ----------------------------------------------------------------------------------

DELIVERED = "delivered"
"""The final status went out exactly once (one final PATCH answered 2xx)."""
LOST = "lost"
"""Not delivered, and pwsup's stderr says so ("could not be delivered")."""
REFUSED = "refused"
"""The server kept its own final status (409): one final PATCH, answered 409, logged."""
BEST_EFFORT = "best effort"
"""A second stop signal ended the wait for the report: delivered at most once, and when
not, the loss is logged."""
UNREPORTED = "unreported"
"""No execution could be created: no final PATCH at all (the cause is logged)."""
ORPHANED = "orphaned"
"""pwsup itself was SIGKILLed: its reporter says the parent is gone, terminates the command
and reports the run ABORTED once (when an execution existed)."""
NONE = "none"
"""Nothing reported: no request reached the API server (offline, or nothing started)."""


@dataclass(frozen=True)
class Expect:
    code: int
    """pwsup's (the caller's) exit code as Popen reports it: negative = killed by signal."""
    report: str = NONE
    status: str | None = None
    """The final status delivered (DELIVERED only)."""
    started: bool | None = True
    """Whether the command must have started (a `ready`/`attempt` line); None: unchecked."""
    logs: tuple[str, ...] = ()
    """Substrings pwsup's stderr must contain."""
    within: float | None = None
    """What pwsup may wait for after the fault before it exits, in seconds: the documented
    delays of the case (grace periods, timeouts; 0 for "at once"). It must exit within
    that plus SLACK, which a busy machine may add."""
    not_before: float | None = None
    """... and not earlier than this many seconds after it (a documented lower bound)."""
    output: tuple[str, ...] = ()
    """Beginnings of lines the program's stdout must contain."""
    no_output: tuple[str, ...] = ()
    """Lines its stdout must not contain."""


@dataclass(frozen=True)
class Case:
    phase: str
    fault: str
    expected: str
    """The expected outcome, in words (docs/chaos.md)."""
    run: Callable[[Chaos], None] = field(compare=False, repr=False)

    @property
    def id(self) -> str:
        return f"{self.phase}-{self.fault}"


CASES: list[Case] = []


def case(phase: str, fault: str, expected: str) -> Callable[[Callable[[Chaos], None]],
                                                            Callable[[Chaos], None]]:
    assert phase in PHASES, phase
    assert fault in FAULTS, fault

    def register(fn: Callable[[Chaos], None]) -> Callable[[Chaos], None]:
        CASES.append(Case(phase, fault, expected, fn))
        return fn

    return register


# -- the harness -----------------------------------------------------------------------------------


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port nothing listens on (bound and released at once)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def is_final(r: RecordedRequest) -> bool:
    return r.method == "PATCH" and r.get("status") in FINAL_STATUSES


def answered_ok(r: RecordedRequest) -> bool:
    return r.response_status is not None and 200 <= r.response_status < 300


def is_status_heartbeat(r: RecordedRequest) -> bool:
    """A RUNNING update that carried the command's status values and was accepted."""
    return (r.method == "PATCH" and r.get("status") == "RUNNING" and answered_ok(r)
            and "success_count" in (r.json or {}))


class Chaos:
    """One case's world: the fake servers, pwsup's run, the jitter, and the final check."""

    def __init__(self, case: Case, seed: int, rng: random.Random, tmp_path: Path) -> None:
        self.case = case
        self.seed = seed
        self.rng = rng
        self.tmp = tmp_path
        self.full_disk = tmp_path  # the full tmpfs, in disk_full cases
        self.env = clean_env()
        self.api: FakeCloudReactor | None = None
        self.rollbar: FakeRollbar | None = None
        self.run: Running | None = None
        self.runs: list[Running] = []
        self.seen: dict[int, procs.Proc] = {}
        self.jitters: list[tuple[str, float]] = []
        self.fault_at: float | None = None
        self.checked = False
        self._closers: list[Callable[[], None]] = []

    # -- the outside world ----------------------------------------------------------------

    def online(self, *, keep_alive: bool = True) -> FakeCloudReactor:
        """The fake API server, with the canary key and the Task; pwsup reports to it."""
        api = FakeCloudReactor({CANARY_KEY: "developer"}, keep_alive=keep_alive).start()
        self._closers.append(api.close)
        api.create_task(TASK)
        self.api = api
        self.env.update({"PROC_WRAPPER_API_BASE_URL": api.base_url,
                         "PROC_WRAPPER_API_KEY": CANARY_KEY})
        return api

    def with_rollbar(self) -> FakeRollbar:
        rollbar = FakeRollbar(access_token=CANARY_ROLLBAR).start()
        self._closers.append(rollbar.close)
        self.rollbar = rollbar
        self.env.update({"PROC_WRAPPER_ROLLBAR_ACCESS_TOKEN": CANARY_ROLLBAR,
                         "PROC_WRAPPER_ROLLBAR_ENDPOINT": rollbar.endpoint,
                         "PROC_WRAPPER_ROLLBAR_TIMEOUT_SECONDS": f"{ROLLBAR_TIMEOUT:g}",
                         "PROC_WRAPPER_ROLLBAR_RETRIES": "0",
                         "PROC_WRAPPER_ROLLBAR_RETRY_DELAY_SECONDS": "0.1"})
        return rollbar

    def silent_listener(self) -> str:
        """http://host:port of a socket that accepts connections (the backlog does) and
        never answers: the hanging metadata endpoint."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        self._closers.append(listener.close)
        return f"http://127.0.0.1:{listener.getsockname()[1]}"

    def held_aws(self, answers: int = 0) -> HeldAws:
        """An AWS endpoint that answers `answers` secret fetches, then holds every later
        request: the resolver fetching from it is blocked mid-resolution (see held_aws)."""
        aws = HeldAws(f"CHAOS_FILE_SECRET={CANARY_SECRET}\n", answers=answers)
        self._closers.append(aws.close)
        self.env.update(aws.env())
        return aws

    def secret_file(self) -> Path:
        path = self.tmp / "common.env"
        path.write_text(f"CHAOS_FILE_SECRET={CANARY_SECRET}\n")
        return path

    def plain_secret(self) -> None:
        """A variable resolved from a PLAIN location: its value is a secret."""
        self.env["CHAOS_PLAIN_FOR_PROC_WRAPPER_TO_RESOLVE"] = f"PLAIN:{CANARY_PLAIN}"

    # -- pwsup ----------------------------------------------------------------------------

    def options(self, **overrides: str | None) -> list[str]:
        """pwsup's options: small timings; with the API when online. An override of None
        drops the option; a flag's value is ""."""
        values: dict[str, str | None] = {
            "--process-termination-grace-period": str(GRACE),
            "--process-retry-delay": "0.3",
        }
        if self.api is not None:
            values.update({
                "--task-name": TASK,
                "--api-heartbeat-interval": str(HEARTBEAT),
                "--api-retry-delay": "0.1",
                "--api-request-timeout": "1",
                "--api-error-timeout": str(FINAL_TIMEOUT),
                "--api-final-update-timeout": str(FINAL_TIMEOUT),
                "--api-task-execution-creation-error-timeout": str(FINAL_TIMEOUT),
                "--api-task-execution-creation-conflict-timeout": str(FINAL_TIMEOUT),
                "--api-task-execution-creation-conflict-retry-delay": "0.1",
                "--shutdown-report-timeout": str(REPORT_CAP),
            })
        values.update(overrides)
        argv: list[str] = []
        for name, value in values.items():
            if value is None:
                continue
            argv.append(name)
            if value != "":
                argv.append(value)
        return argv

    def start(self, options: Sequence[str], command: Sequence[str], *,
              via: Sequence[str] = ()) -> Running:
        """pwsup, optionally exec'd by the EXEC_WRAPPER with `via` (see there)."""
        args = [PWSUP, *options, "--", *command]
        if via:
            run = self.launch([PYTHON, "-c", EXEC_WRAPPER, *via, "--", *args])
            run.expect("exec ")  # the wrapper's state is set; pwsup is (about to be) exec'd
            return run
        return self.launch(args)

    def launch(self, args: Sequence[str]) -> Running:
        run = Running(args, self.env, stdin=subprocess.PIPE)
        self.run = run
        self.runs.append(run)
        self.fault_at = run.started
        self.track()
        return run

    def track(self, *, everything: bool = False) -> None:
        """Remember every live process of the test's tree (pwsup's, that is); with
        `everything`, zombies too (a zombie's pidfd is readable: nothing to wait for)."""
        for pid in procs.pid_tree(os.getpid()):
            proc = procs.Proc.of(pid)
            if everything or proc.alive():
                self.seen.setdefault(pid, proc)

    def reporter(self, exclude: Iterable[procs.Proc] = (), timeout: float = SLACK) -> procs.Proc:
        """pwsup's (new) reporter process, by its title."""
        assert self.run is not None
        pwsup = self.run.pid
        skip = set(exclude)
        found: list[procs.Proc] = []

        def one() -> bool:
            found[:] = [p for p in map(procs.Proc.of, procs.children(pwsup))
                        if p.alive() and p not in skip
                        and (p.cmdline() or "").startswith("pwsup reporter")]
            return len(found) == 1

        procs.wait_until(one, timeout, "a (new) process titled 'pwsup reporter'")
        self.seen.setdefault(found[0].pid, found[0])
        return found[0]

    def ready(self, prefix: str = "ready", timeout: float = 10.0) -> procs.Proc:
        assert self.run is not None
        proc = self.run.expect_ready(prefix, timeout=timeout)
        self.track()
        return proc

    def wait_for(self, predicate: Callable[[RecordedRequest], bool], timeout: float = 10.0,
                 *, count: int = 1) -> RecordedRequest:
        assert self.api is not None
        found = self.api.wait_for(predicate, timeout, count=count)
        self.track()
        return found

    def expect_log(self, text: str, timeout: float = 10.0) -> str:
        assert self.run is not None
        return self.run.expect(lambda line: text in line, stream="err", timeout=timeout)

    def say(self, line: str) -> None:
        assert self.run is not None
        self.run.write(line + "\n")

    # -- faults ---------------------------------------------------------------------------

    def jitter(self, label: str) -> None:
        delay = self.rng.uniform(0, JITTER)
        self.jitters.append((label, round(delay, 4)))
        time.sleep(delay)  # on purpose: a random point inside the phase, not a wait

    def inject(self, label: str, action: Callable[[], object], *, jitter: bool = True) -> None:
        """Jitter, then the fault; its time is what `Expect.within` counts from."""
        self.track()
        if jitter:
            self.jitter(label)
        self.fault_at = time.monotonic()
        action()

    def signal(self, signum: int) -> Callable[[], None]:
        def send() -> None:
            assert self.run is not None
            self.run.signal(signum)
        return send

    def twice(self, signum: int) -> Callable[[], None]:
        """Two deliveries in quick succession, not one coalesced: the second is sent once
        pwsup has logged the first (it logs the first stop signal at once)."""
        def send() -> None:
            run = self.run
            assert run is not None
            run.signal(signum)
            self.expect_log(f"received {signal.Signals(signum).name}: stopping")
            with contextlib.suppress(ProcessLookupError):  # it may be gone already
                run.signal(signum)
        return send

    @staticmethod
    def kill(proc: procs.Proc) -> Callable[[], None]:
        def send() -> None:
            assert proc.alive(), f"{proc} is not running"
            os.kill(proc.pid, signal.SIGKILL)
        return send

    # -- the invariants -------------------------------------------------------------------

    def describe(self) -> str:
        lines = [f"case {self.case.id}; chaos seed {self.seed} (--chaos-seed {self.seed}); "
                 f"jitter {self.jitters}"]
        run = self.run
        if run is not None:
            args = [a if len(a) < 120 else "<script>" for a in run.args]
            state = "running" if run.returncode is None else f"exit {run.returncode}"
            lines += [f"{args!r} ({state})", "--- stdout ---", run.stdout.rstrip(),
                      "--- stderr ---", run.stderr.rstrip()]
        if self.api is not None:
            lines.append("API requests: " + repr(
                [(r.method, r.get("status"), r.behaviour, r.response_status)
                 for r in self.api.requests]))
        return "\n".join(lines)

    def check(self, expect: Expect, run: Running | None = None) -> None:
        """Every invariant, after the run; see the module docstring."""
        run = run or self.run
        assert run is not None
        self.checked = True
        why = self.describe
        # 1. no hang, and the exit code.
        try:
            at_exit = wait_for_exit(run, HARD_DEADLINE)
            code = run.wait(HARD_DEADLINE)
        except AssertionError as e:
            raise AssertionError(f"pwsup hangs: {e}\n{why()}") from None
        assert run.exited_at is not None
        assert code == expect.code, f"exit code {code}, expected {expect.code}\n{why()}"
        if expect.within is not None and self.fault_at is not None:
            took = run.exited_at - self.fault_at
            assert took <= expect.within + SLACK, (
                f"exited {took:.3f} s after the fault, more than {expect.within} s (+ "
                f"{SLACK:g} s for a busy machine)\n{why()}")
        if expect.not_before is not None and self.fault_at is not None:
            took = run.exited_at - self.fault_at
            assert took >= expect.not_before, (
                f"exited {took:.3f} s after the fault, before {expect.not_before} s\n{why()}")
        # 3. nothing left: at pwsup's own exit nothing (it reaps its reporter); then nothing.
        if code >= 0:
            outlived = [(p.pid, cmd) for p, cmd in at_exit]
            assert not outlived, f"still running when pwsup exited: {outlived}\n{why()}"
        self.track(everything=True)
        try:
            procs.wait_for_exit(list(self.seen.values()), LEFTOVER_BOUND)
        except AssertionError as e:
            raise AssertionError(f"pwsup's tree is not gone: {e}\n{why()}") from None
        procs.reap_zombie_children()
        me = os.getpid()
        left = [(pid, procs.state(pid), procs.cmdline(pid)) for pid in procs.pid_tree(me)]
        assert not left, f"processes (or zombies) left in the test's tree: {left}\n{why()}"
        _drain(run)
        out, err = run.stdout, run.stderr
        # 5. no secret in any output.
        for canary in CANARIES:
            assert canary not in out, f"a secret ({canary[:20]}...) on stdout\n{why()}"
            assert canary not in err, f"a secret ({canary[:20]}...) on stderr\n{why()}"
        # pwsup never crashes with a traceback.
        assert "Traceback" not in err, f"a traceback on stderr\n{why()}"
        for text in expect.logs:
            assert text in err, f"stderr lacks {text!r}\n{why()}"
        lines = run.lines("out")
        if expect.started is not None:
            started = any(line.startswith(("ready ", "attempt ")) for line in lines)
            assert started == expect.started, (
                f"the command {'did not start' if expect.started else 'started'}\n{why()}")
        for start in expect.output:
            assert any(line.startswith(start) for line in lines), (
                f"stdout lacks a line starting {start!r}\n{why()}")
        for line in expect.no_output:
            assert line not in lines, f"stdout has the line {line!r}\n{why()}"
        # 4 and 6. the report, and the protocol.
        self._check_report(expect, err, why)

    def _check_report(self, expect: Expect, err: str, why: Callable[[], str]) -> None:
        api = self.api
        requests = api.requests if api is not None else []
        if api is not None:
            assert api.violations == [], f"protocol violations: {api.violations}\n{why()}"
        created = [r for r in requests if r.method == "POST" and answered_ok(r)]
        assert len(created) <= 1, f"{len(created)} executions created\n{why()}"
        finals = [r for r in requests if is_final(r)]
        delivered = [r for r in finals if answered_ok(r)]
        lost_logged = any(marker in err for marker in LOST_MARKERS)
        report = expect.report
        if report == DELIVERED:
            assert len(delivered) == 1, f"{len(delivered)} final reports delivered\n{why()}"
            assert delivered[0].get("status") == expect.status, (
                f"final status {delivered[0].get('status')}, expected {expect.status}\n{why()}")
            assert not lost_logged, f"delivered, but logged as lost\n{why()}"
        elif report == LOST:
            assert not delivered, f"{len(delivered)} final report(s) delivered\n{why()}"
            assert lost_logged, f"the final report was lost without a word\n{why()}"
        elif report == REFUSED:
            assert not delivered, f"{len(delivered)} final report(s) delivered\n{why()}"
            assert [r.response_status for r in finals] == [409], f"finals: {finals}\n{why()}"
            assert "kept its own final status" in err, why()
        elif report == BEST_EFFORT:
            assert len(delivered) <= 1, f"{len(delivered)} final reports delivered\n{why()}"
            assert delivered or lost_logged, (
                f"the final report was lost without a word\n{why()}")
        elif report == UNREPORTED:
            assert not finals, f"final reports of an execution never created\n{why()}"
        elif report == ORPHANED:
            # pwsup died: its reporter terminated the command and reports the run ABORTED,
            # once, when the execution existed.
            assert "parent process is gone" in err, why()
            assert len(delivered) <= 1, f"{len(delivered)} final reports delivered\n{why()}"
            if [r for r in requests if r.method == "POST" and answered_ok(r)]:
                assert [r.get("status") for r in delivered] == ["ABORTED"], why()
        else:
            assert report == NONE, report
            assert not requests, f"API traffic where none was expected\n{why()}"

    def close(self) -> None:
        for run in self.runs:
            run.close()
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):
                closer()


def wait_for_exit(run: Running, timeout: float) -> list[tuple[procs.Proc, str]]:
    """Wait for the process to exit (its pidfd), reading its output meanwhile; return what
    was alive in the test's tree at that moment, with its command line. (Running.wait alone
    also waits for the output pipes to close, which a process that outlived pwsup holds.)"""
    deadline = time.monotonic() + timeout
    while run.exited_at is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"still running after {timeout:g} s")
        run._pump(remaining)
    alive = [p for p in map(procs.Proc.of, procs.pid_tree(os.getpid()))
             if p.alive() and not exiting(p.pid)]
    return [(p, p.cmdline() or "") for p in alive]


PF_EXITING = 0x4


def exiting(pid: int) -> bool:
    """Whether the process is already on its way out (killed, tearing down): PF_EXITING in
    the flags of /proc/<pid>/stat. Not a zombie yet, but no longer running anything."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return True
    return bool(int(data[data.rindex(")") + 2:].split()[6]) & PF_EXITING)


def _drain(run: Running) -> None:
    """Read what is left on the pipes (their last holders are gone by now)."""
    deadline = time.monotonic() + 2.0
    while any(not s.eof for s in run.streams.values()) and time.monotonic() < deadline:
        run._pump(deadline - time.monotonic())


def announced(run: Running, what: str) -> procs.Proc:
    """The process an already read `<what> <pid>` line announced."""
    (line,) = [line for line in run.lines() if line.startswith(f"{what} ")]
    return procs.Proc.of(int(line.split()[1]))


def child(*flags: str) -> list[str]:
    return [PYTHON, "-c", CHILD, *flags]


@pytest.fixture
def chaos(request: pytest.FixtureRequest, chaos_seed_value: int, chaos_rng: random.Random,
          tmp_path: Path) -> Iterator[Chaos]:
    world = Chaos(request.node.callspec.params["case"], chaos_seed_value, chaos_rng, tmp_path)
    try:
        yield world
    finally:
        world.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_matrix(case: Case, chaos: Chaos, request: pytest.FixtureRequest) -> None:
    if case.fault == "disk_full":
        chaos.full_disk = request.getfixturevalue("full_tmpfs")
    case.run(chaos)
    assert chaos.checked, "the case did not check the invariants"


# == option parsing ================================================================================
# pwsup has no handlers yet. A signal sent at the very start is held pending by a launcher
# that blocked it (as a process started from a thread with signals blocked would be), so it
# arrives, deterministically, while pwsup parses its options: pwsup unblocks it when its
# handlers are in place and must act on it then. (Not blocked, it simply kills pwsup.) No
# jitter: this phase's boundary is pwsup's first instruction.


@case("options", "SIGTERM", "acted on once the handlers exist: exit 143, the command never "
      "starts, the execution is created and ABORTED once")
def _options_sigterm(c: Chaos) -> None:
    c.online()
    c.start(c.options(), child("--linger", "0.3"), via=["--block", "SIGTERM"])
    c.inject("SIGTERM", c.signal(signal.SIGTERM), jitter=False)
    c.check(Expect(143, DELIVERED, "ABORTED", started=False, within=REPORT_CAP,
                   logs=("received SIGTERM: stopping",)))


@case("options", "SIGHUP", "not a stop signal, and no command to forward it to yet: "
      "dropped; the command runs normally and never sees it; SUCCEEDED once")
def _options_sighup(c: Chaos) -> None:
    c.online()
    c.start(c.options(), child("--SIGHUP", "report", "--linger", "0.3"),
            via=["--block", "SIGHUP"])
    c.inject("SIGHUP", c.signal(signal.SIGHUP), jitter=False)
    c.check(Expect(0, DELIVERED, "SUCCEEDED", no_output=("SIGHUP",)))


# == secret resolution =============================================================================
# The resolver fetches `-e arn:aws:secretsmanager:...` from a stand-in AWS endpoint that holds
# the request unanswered (tests/helpers/held_aws.py): once it holds it, the resolver is blocked
# in the middle of resolution. A PLAIN-resolved variable and the secret's content are canaries.


def resolving(c: Chaos) -> tuple[Running, procs.Proc]:
    """pwsup with its resolver blocked mid-resolution: (run, resolver)."""
    aws = c.held_aws()
    c.plain_secret()
    run = c.start(c.options(**{"--env": SECRET_ARN}), child("--linger", "0"))
    aws.wait_held(timeout=SLACK * 2)
    resolvers = [procs.Proc.of(pid) for pid in procs.children(run.pid)]
    assert len(resolvers) == 1, f"pwsup's children while resolving: {resolvers}"
    c.track()
    return run, resolvers[0]


@case("resolution", "SIGKILL_parent", "the resolver dies with it (PDEATHSIG); nothing "
      "started, nothing left")
def _resolution_sigkill_parent(c: Chaos) -> None:
    _, resolver = resolving(c)
    c.inject("SIGKILL pwsup", c.signal(signal.SIGKILL))
    c.check(Expect(-signal.SIGKILL, started=False))
    assert not resolver.alive()


@case("resolution", "SIGKILL_resolver", "exit 78: 'the secrets resolver died without an "
      "answer; nothing was started'")
def _resolution_sigkill_resolver(c: Chaos) -> None:
    _, resolver = resolving(c)
    c.inject("SIGKILL resolver", c.kill(resolver))
    c.check(Expect(78, started=False, within=0,
                   logs=("the secrets resolver died without an answer", "nothing was started")))


def _resolution_signal_case(signum: int) -> Callable[[Chaos], None]:
    def run(c: Chaos) -> None:
        _, resolver = resolving(c)
        c.inject(signal.Signals(signum).name, c.signal(signum))
        stop = signum
        if signum == signal.SIGHUP:  # dropped: a SIGTERM after it still ends the wait
            stop = signal.SIGTERM
            c.inject("SIGTERM", c.signal(stop), jitter=False)
        c.check(Expect(128 + stop, started=False, within=0))
        assert not resolver.alive()
    return run


for _signum in (signal.SIGTERM, signal.SIGINT):
    case("resolution", _signum.name,
         f"the resolver is killed at once; exit {128 + _signum}; nothing started"
         )(_resolution_signal_case(_signum))
case("resolution", "SIGHUP", "not a stop signal, and no command to forward it to yet: "
     "dropped; a SIGTERM after it kills the resolver at once: exit 143; nothing started"
     )(_resolution_signal_case(signal.SIGHUP))


@case("resolution", "AWS_unreachable", "a FILE location resolves, the AWS one cannot be "
      "fetched: exit 78, nothing started, the FILE secret in no output")
def _resolution_aws(c: Chaos) -> None:
    closed = free_port()
    c.env.update({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed}",
                  "AWS_ACCESS_KEY_ID": "AKIACHAOSMATRIX00000", "AWS_SECRET_ACCESS_KEY": "x" * 40,
                  "AWS_EC2_METADATA_DISABLED": "true"})
    c.plain_secret()
    options = [*c.options(), "--env", f"FILE:{c.secret_file()}",
               "--env", "arn:aws:secretsmanager:us-east-1:123456789012:secret:x"]
    c.start(options, child("--linger", "0"))
    # Counted from pwsup's start: its start-up, a resolver with boto3, and botocore's own
    # retries against the closed port.
    c.check(Expect(78, started=False, within=10,
                   logs=("could not resolve env location 2 (AWS_SM)", "nothing was started")))


@case("resolution", "disk_full", "the output file cannot be written: a clear error naming "
      "the file or ENOSPC, exit 78, nothing started, no file left")
def _resolution_disk_full(c: Chaos) -> None:
    output = c.full_disk / "resolved.env"
    c.plain_secret()
    options = [*c.options(), "--env", f"FILE:{c.secret_file()}",
               "--env-output-filename", str(output)]
    c.start(options, child("--linger", "0"))
    # Counted from pwsup's start: its start-up and a resolver; the write fails at once.
    c.check(Expect(78, started=False, within=5,
                   logs=("No space left on device", "nothing was started")))
    assert not output.exists()


@case("resolution", "metadata_hang", "the region lookup gives up after its 1 s timeout; "
      "the run goes on (exit 0) with a warning")
def _resolution_metadata(c: Chaos) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):  # so the region is looked up
        c.env.pop(name, None)
    c.env["ECS_CONTAINER_METADATA_URI_V4"] = c.silent_listener() + "/v4/chaos"
    c.plain_secret()
    c.start([*c.options(), "--env", f"FILE:{c.secret_file()}"], child("--linger", "0"))
    # The README: a hung metadata endpoint delays the command's start by at most 4 s.
    c.check(Expect(0, within=METADATA_BOUND, logs=("runtime metadata unavailable",)))


# == Task Execution creation =======================================================================
# Synchronisation: the fake server has recorded the start request (POST).


def is_post(r: RecordedRequest) -> bool:
    return r.method == "POST" and r.path == TASK_EXECUTIONS_PATH


def creating(c: Chaos, *behaviours: Any, always: Any = None, **overrides: str) -> Running:
    """pwsup whose start request (POST) meets `behaviours` (then `always`), once the fake
    server has recorded the first one. `overrides`: options, as for Chaos.options."""
    api = c.online()
    if behaviours:
        api.script("POST", TASK_EXECUTIONS_PATH, *behaviours)
    if always is not None:
        api.always("POST", always, path=TASK_EXECUTIONS_PATH)
    run = c.start(c.options(**overrides), child("--linger", "0.2"))
    c.wait_for(is_post)
    return run


@case("creation", "SIGKILL_parent", "the reporter sees its parent gone and exits; nothing "
      "started, nothing left, no final report")
def _creation_sigkill_parent(c: Chaos) -> None:
    creating(c, Hang())
    reporter = c.reporter()
    c.inject("SIGKILL pwsup", c.signal(signal.SIGKILL))
    c.check(Expect(-signal.SIGKILL, ORPHANED, started=False))
    assert not reporter.alive()


@case("creation", "SIGKILL_reporter", "a new reporter asks again (one execution created); "
      "the command runs; SUCCEEDED once")
def _creation_sigkill_reporter(c: Chaos) -> None:
    creating(c, Hang())
    reporter = c.reporter()
    c.inject("SIGKILL reporter", c.kill(reporter))
    c.check(Expect(0, DELIVERED, "SUCCEEDED"))
    assert c.api is not None
    posts = [r.behaviour for r in c.api.requests if is_post(r)]
    assert posts == ["Hang", None], f"start requests: {posts}\n{c.describe()}"


@case("creation", "SIGINT", "exit 130 within the shutdown report timeout; nothing started")
def _creation_sigint(c: Chaos) -> None:
    # Creation would go on retrying for LONG: the exit must come from the report cap.
    creating(c, always=Hang(), **{"--api-task-execution-creation-error-timeout": f"{LONG:g}"})
    c.inject("SIGINT", c.signal(signal.SIGINT))
    c.check(Expect(130, UNREPORTED, started=False, within=REPORT_CAP,
                   logs=("received SIGINT: stopping",)))


@case("creation", "SIGTERM_twice", "the second SIGTERM ends the wait for the report at once: "
      "exit 143 well within the report timeout; nothing started")
def _creation_sigterm_twice(c: Chaos) -> None:
    # Creation and the report cap both LONG: only the second SIGTERM can end the wait.
    creating(c, always=Hang(), **{"--api-task-execution-creation-error-timeout": f"{LONG:g}",
                                  "--shutdown-report-timeout": f"{LONG:g}"})
    c.inject("SIGTERM twice", c.twice(signal.SIGTERM))
    c.check(Expect(143, UNREPORTED, started=False, within=0))


@case("creation", "API_hang", "creation gives up at its error timeout; the command runs "
      "unreported (exit 0)")
def _creation_api_hang(c: Chaos) -> None:
    creating(c, always=Hang(), **{"--api-task-execution-creation-error-timeout": "1.5"})
    c.check(Expect(0, UNREPORTED, within=1.5, logs=("the command runs unreported",)))


@case("creation", "API_reset", "retried; the command starts; SUCCEEDED once")
def _creation_api_reset(c: Chaos) -> None:
    creating(c, Reset(), Reset())
    c.check(Expect(0, DELIVERED, "SUCCEEDED"))


@case("creation", "API_5xx", "retried; the command starts; SUCCEEDED once")
def _creation_api_5xx(c: Chaos) -> None:
    creating(c, Respond(503), Respond(500))
    c.check(Expect(0, DELIVERED, "SUCCEEDED"))


@case("creation", "API_409", "conflict retries every 0.1 s until the server lets it start; "
      "SUCCEEDED once")
def _creation_api_409(c: Chaos) -> None:
    creating(c, Respond(409), Respond(409), Respond(409))
    c.check(Expect(0, DELIVERED, "SUCCEEDED", logs=("concurrency conflict",)))


@case("creation", "API_409_forever", "conflict until the conflict timeout: exit 75, nothing "
      "started")
def _creation_api_409_forever(c: Chaos) -> None:
    creating(c, always=Respond(409), **{"--api-task-execution-creation-conflict-timeout": "1"})
    c.check(Expect(75, UNREPORTED, started=False, within=1,
                   logs=("not starting the command",)))


@case("creation", "API_429", "waits Retry-After (0.2 s) and retries; SUCCEEDED once")
def _creation_api_429(c: Chaos) -> None:
    throttled = Respond(429, headers={"Retry-After": "0.2"})
    creating(c, throttled, throttled)
    c.check(Expect(0, DELIVERED, "SUCCEEDED"))


@case("creation", "API_malformed", "created on the server, but the answer has no uuid: the "
      "command runs unreported (exit 0), said so")
def _creation_api_malformed(c: Chaos) -> None:
    creating(c, Malformed(process=True))
    c.check(Expect(0, UNREPORTED, logs=("no execution uuid", "the command runs unreported")))


@case("creation", "API_slow", "a 1.5 s answer is waited for; the command starts; SUCCEEDED "
      "once")
def _creation_api_slow(c: Chaos) -> None:
    creating(c, Slow(1.5))
    c.check(Expect(0, DELIVERED, "SUCCEEDED", within=1.5))


@case("creation", "metadata_hang", "the metadata fetch gives up (1 s per request); the start "
      "request follows; SUCCEEDED once")
def _creation_metadata(c: Chaos) -> None:
    c.env["ECS_CONTAINER_METADATA_URI_V4"] = c.silent_listener() + "/v4/chaos"
    c.env["AWS_REGION"] = "us-east-1"  # (no region lookup in a resolver: there is none)
    creating(c)
    c.check(Expect(0, DELIVERED, "SUCCEEDED", within=METADATA_BOUND))


@case("creation", "Rollbar_hang", "the start request is refused (400), Rollbar hangs: the "
      "command runs unreported at once; pwsup's exit is not held up")
def _creation_rollbar(c: Chaos) -> None:
    rollbar = c.with_rollbar()
    rollbar.always(RollbarHang())
    creating(c, Respond(400))
    c.fault_at = time.monotonic()
    c.ready()
    rollbar.wait_for_requests(1, timeout=SLACK)
    c.check(Expect(0, UNREPORTED, within=ROLLBAR_TIMEOUT,
                   logs=("the command runs unreported",)))


# == the file descriptor sweep (start: offline; creation: online) ==================================

FD_LIMITS = (5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 20)
"""Below 5 the interpreter itself cannot start."""


def fd_sweep(c: Chaos, online: bool, extra: Sequence[str] = ()) -> None:
    """pwsup under RLIMIT_NOFILE = 5 ... 20. At every limit it must either run the command
    (exit 0) or refuse with a clear message before starting it — never a traceback, never
    a hang, never a command left behind. pwsup is started with SIGTERM ignored, so the
    command inherits that and outlives a pwsup that dies on it (PDEATHSIG is SIGTERM)."""
    problems: list[str] = []
    options = list(extra)
    if online:  # what takes descriptors in the reporter: status listener, log capture
        options += ["--enable-status-update-listener", "--status-update-socket-port",
                   str(free_port(socket.SOCK_DGRAM)), "--num-log-lines-sent-on-success", "5"]
    for limit in FD_LIMITS:
        if online and c.api is not None:
            c.api.clear_records()
        run = c.start([*c.options(), *options], ["sh", "-c", "echo ready; exec sleep 0.2"],
                      via=["--ignore", "SIGTERM", "--nofile", str(limit)])
        try:
            at_exit = wait_for_exit(run, HARD_DEADLINE)
            code = run.wait(HARD_DEADLINE)
        except AssertionError:
            problems.append(f"{limit}: hangs")
            procs.kill_tree(run.pid)
            continue
        survivors = list(at_exit)
        ran = "ready" in run.lines("out")
        err = run.stderr
        last = (err.strip().splitlines() or [""])[-1]
        if "Traceback" in err:
            problems.append(f"{limit}: exit {code}, traceback ending {last!r}"
                            + (" after the command started" if ran else ""))
        elif code != 0 and (ran or "Too many open files" not in err):
            problems.append(f"{limit}: exit {code} without a clear message: {last!r}")
        if survivors:
            problems.append(f"{limit}: left running: {[cmd for _, cmd in survivors]}")
        procs.wait_for_exit([p for p, _ in survivors], 5)
        procs.reap_zombie_children()
    assert not problems, ("RLIMIT_NOFILE sweep (limit: outcome):\n  " + "\n  ".join(problems)
                          + f"\n{c.describe()}")


@case("start", "fd_exhaustion", "offline (the command starts before the reporter): at each "
      "limit the command runs, or pwsup refuses clearly before starting it; no traceback")
def _start_fd(c: Chaos) -> None:
    c.start(c.options(), child("--linger", "0"), via=["--nofile", "20"])
    c.check(Expect(0))  # every invariant, on a run at the sweep's largest limit
    fd_sweep(c, online=False)


@case("creation", "fd_exhaustion", "online (the reporter starts first): at each limit the "
      "command runs, or pwsup refuses clearly before starting it; no traceback")
def _creation_fd(c: Chaos) -> None:
    c.online()
    c.start(c.options(), child("--linger", "0"), via=["--nofile", "20"])
    c.check(Expect(0, DELIVERED, "SUCCEEDED"))  # every invariant, at the largest limit
    fd_sweep(c, online=True)


@case("resolution", "fd_exhaustion", "the resolver's pipe and process (a FILE and a PLAIN "
      "location): at each limit the command runs, or pwsup refuses clearly before starting "
      "it; no traceback")
def _resolution_fd(c: Chaos) -> None:
    c.plain_secret()
    resolving = ["--env", f"FILE:{c.secret_file()}"]
    c.start([*c.options(), *resolving], child("--linger", "0"), via=["--nofile", "20"])
    c.check(Expect(0))  # every invariant, on a run at the sweep's largest limit
    fd_sweep(c, online=False, extra=resolving)


# == child start ===================================================================================
# Synchronisation: the --send-pid update (sent right after the spawn) was recorded.


def has_pid(r: RecordedRequest) -> bool:
    return r.method == "PATCH" and r.get("pid") is not None


def starting(c: Chaos, *patch_behaviours: Any, command: Sequence[str] = (),
             **overrides: str) -> tuple[Running, procs.Proc]:
    api = c.online()
    if patch_behaviours:
        api.script("PATCH", TASK_EXECUTION_PATH, *patch_behaviours)
    run = c.start([*c.options(**overrides), "--send-pid"], command or child("--linger", "5"))
    request = c.wait_for(has_pid)
    return run, procs.Proc.of(int(request.get("pid")))


@case("start", "SIGTERM", "forwarded to the new command, which dies of it: exit 143, "
      "ABORTED once")
def _start_sigterm(c: Chaos) -> None:
    starting(c)
    c.inject("SIGTERM", c.signal(signal.SIGTERM))
    c.check(Expect(143, DELIVERED, "ABORTED", started=None, within=REPORT_CAP))


@case("start", "SIGKILL_child", "exit 137 at once, FAILED once")
def _start_sigkill_child(c: Chaos) -> None:
    _, command = starting(c)
    c.inject("SIGKILL command", c.kill(command))
    c.check(Expect(137, DELIVERED, "FAILED", started=None, within=0))


@case("start", "API_hang", "the pid update hangs; the command runs and its exit is reported "
      "at once on the other connection; SUCCEEDED once")
def _start_api_hang(c: Chaos) -> None:
    linger = 0.3
    # The pid update hangs for its whole (LONG) request timeout: an exit that waited for it
    # would come far too late.
    run, _ = starting(c, Hang(), command=child("--linger", f"{linger:g}"),
                      **{"--api-request-timeout": f"{LONG:g}"})
    c.ready()
    assert c.api is not None
    hung = c.api.wait_for(lambda r: r.behaviour == "Hang")
    c.check(Expect(0, DELIVERED, "SUCCEEDED"))
    assert run.exited_at is not None
    assert run.exited_at < hung.timestamp + LONG, (
        f"the exit waited for the hung update\n{c.describe()}")
    assert run.exited_at - hung.timestamp < linger + SLACK, c.describe()


@case("start", "disk_full", "the input file cannot be written: exit 78 with the reason, "
      "nothing started, nothing reported")
def _start_disk_full(c: Chaos) -> None:
    c.online()
    options = [*c.options(), "--input-value", "some input",
               "--input-filename", str(c.full_disk / "input.txt")]
    c.start(options, child("--linger", "0"))
    c.check(Expect(78, NONE, started=False, within=0,
                   logs=("No space left on device", "nothing was started")))


# == running =======================================================================================
# The command sends status updates every 50 ms; synchronisation: a heartbeat carrying them
# was accepted.


def running(c: Chaos, *flags: str, status: bool = True, options: Sequence[str] = ()) -> tuple[
        Running, procs.Proc]:
    c.online()
    listener = (["--enable-status-update-listener", "--status-update-socket-port",
                 str(free_port(socket.SOCK_DGRAM))] if status else [])
    run = c.start([*c.options(), *listener, *options], child("--status", *flags))
    command = c.ready()
    if status:
        c.wait_for(is_status_heartbeat)
    return run, command


@case("running", "SIGKILL_parent", "the reporter terminates the command's group (TERM, "
      "grace, KILL) and exits; nothing left")
def _running_sigkill_parent(c: Chaos) -> None:
    _, command = running(c, "--SIGTERM", "ignore")
    c.inject("SIGKILL pwsup", c.signal(signal.SIGKILL))
    c.check(Expect(-signal.SIGKILL, ORPHANED))
    assert not command.alive()


@case("running", "SIGKILL_reporter", "a new reporter; heartbeats with status values resume; "
      "one execution; SUCCEEDED once")
def _running_sigkill_reporter(c: Chaos) -> None:
    _, command = running(c)
    reporter = c.reporter()
    c.inject("SIGKILL reporter", c.kill(reporter))
    c.reporter(exclude=[reporter])
    killed = c.fault_at or 0.0
    c.wait_for(lambda r: is_status_heartbeat(r) and r.timestamp > killed)
    assert command.alive()
    c.say("exit 0")
    c.check(Expect(0, DELIVERED, "SUCCEEDED"))


@case("running", "SIGKILL_child", "exit 137 at once, FAILED once")
def _running_sigkill_child(c: Chaos) -> None:
    _, command = running(c)
    c.inject("SIGKILL command", c.kill(command))
    c.check(Expect(137, DELIVERED, "FAILED", within=0))


@case("running", "SIGKILL_grandchild", "the command runs on; the dead grandchild is reaped, "
      "no zombie; SUCCEEDED once")
def _running_sigkill_grandchild(c: Chaos) -> None:
    run, command = running(c, "--grandchild")
    grandchild = announced(run, "grandchild")
    c.inject("SIGKILL grandchild", c.kill(grandchild))
    killed = c.fault_at or 0.0
    c.wait_for(lambda r: is_status_heartbeat(r) and r.timestamp > killed)
    assert command.alive()
    c.say("exit 0")
    c.check(Expect(0, DELIVERED, "SUCCEEDED"))


@case("running", "SIGTERM", "forwarded; the command dies of it: exit 143, ABORTED once, "
      "within the report timeout")
def _running_sigterm(c: Chaos) -> None:
    running(c)
    c.inject("SIGTERM", c.signal(signal.SIGTERM))
    c.check(Expect(143, DELIVERED, "ABORTED", within=REPORT_CAP))


@case("running", "SIGINT", "forwarded; the command dies of it: exit 130, ABORTED once")
def _running_sigint(c: Chaos) -> None:
    running(c)
    c.inject("SIGINT", c.signal(signal.SIGINT))
    c.check(Expect(130, DELIVERED, "ABORTED", within=REPORT_CAP))


@case("running", "SIGHUP", "forwarded, not a stop: the command sees it and runs on; "
      "SUCCEEDED once")
def _running_sighup(c: Chaos) -> None:
    run, _ = running(c, "--SIGHUP", "report")
    c.inject("SIGHUP", c.signal(signal.SIGHUP))
    run.expect("SIGHUP")
    c.say("exit 0")
    c.check(Expect(0, DELIVERED, "SUCCEEDED"))


@case("running", "SIGTERM_twice", "both forwarded; one grace period from the first: SIGKILL "
      "after it, exit 137, ABORTED once")
def _running_sigterm_twice(c: Chaos) -> None:
    run, _ = running(c, "--SIGTERM", "report")
    c.inject("SIGTERM twice", c.twice(signal.SIGTERM))
    run.expect("SIGTERM")
    c.check(Expect(137, DELIVERED, "ABORTED", not_before=GRACE - 0.05,
                   within=GRACE + REPORT_CAP))


def recovering(c: Chaos, *behaviours: Any) -> None:
    """Running; the next heartbeats meet `behaviours`; then the API recovers, the status
    values reach it again, and the command exits 0."""
    running(c)
    assert c.api is not None
    api = c.api
    c.inject("API fault", lambda: api.script("PATCH", TASK_EXECUTION_PATH, *behaviours))
    c.wait_for(lambda r: r.behaviour is not None, count=len(behaviours))
    recovered = time.monotonic()
    c.wait_for(lambda r: is_status_heartbeat(r) and r.timestamp > recovered)
    c.say("exit 0")
    c.check(Expect(0, DELIVERED, "SUCCEEDED", within=HARD_DEADLINE))


@case("running", "API_reset", "heartbeats retried; the status values arrive after the "
      "outage; SUCCEEDED once")
def _running_api_reset(c: Chaos) -> None:
    recovering(c, Reset(), Reset(), Reset())


@case("running", "API_5xx", "heartbeats retried; the status values arrive after the outage; "
      "SUCCEEDED once")
def _running_api_5xx(c: Chaos) -> None:
    recovering(c, Respond(500), Respond(502), Respond(503))


@case("running", "API_409", "the server stopped the execution: the command is terminated, "
      "exit 75; the server keeps its STOPPED status (final answered 409)")
def _running_api_409(c: Chaos) -> None:
    running(c)
    assert c.api is not None
    api = c.api
    (execution_uuid,) = api.executions
    c.inject("stop on the server", lambda: api.mark_stopped(execution_uuid))
    c.check(Expect(75, REFUSED, within=HEARTBEAT + GRACE + REPORT_CAP,
                   logs=("the server stopped the execution",)))


@case("running", "API_slow", "a heartbeat trickles for 2 s; the command's exit is reported "
      "at once on the other connection; SUCCEEDED once")
def _running_api_slow(c: Chaos) -> None:
    running(c)
    assert c.api is not None
    api = c.api
    trickle = 2.0
    c.inject("slow API", lambda: api.script("PATCH", TASK_EXECUTION_PATH, Slow(trickle)))
    slow = c.wait_for(lambda r: r.behaviour == "Slow")
    c.fault_at = time.monotonic()
    c.say("exit 0")
    c.check(Expect(0, DELIVERED, "SUCCEEDED", within=0))
    # "At once" as an order: the final update reached the server while the heartbeat was
    # still trickling, so it did not wait for that connection.
    (final,) = [r for r in api.requests if is_final(r)]
    assert final.timestamp < slow.timestamp + trickle, (
        f"the final update came {final.timestamp - slow.timestamp:.3f} s after the slow "
        f"heartbeat began, after its {trickle:g} s trickle\n{c.describe()}")


@case("running", "Rollbar_hang", "heartbeats refused (400) are reported to a Rollbar that "
      "hangs: nothing waits for it; SUCCEEDED once, exit not held up")
def _running_rollbar(c: Chaos) -> None:
    rollbar = c.with_rollbar()
    rollbar.always(RollbarHang())
    running(c)
    assert c.api is not None
    api = c.api
    c.inject("API 400", lambda: api.script("PATCH", TASK_EXECUTION_PATH, Respond(400)))
    rollbar.wait_for_requests(1, timeout=5)
    c.fault_at = time.monotonic()
    c.say("exit 0")
    c.check(Expect(0, DELIVERED, "SUCCEEDED", within=ROLLBAR_TIMEOUT))


@case("running", "status_port_taken", "warns that it cannot listen; the run goes on; "
      "SUCCEEDED once")
def _running_status_port(c: Chaos) -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    port = str(taken.getsockname()[1])
    try:
        _, command = running(c, status=False, options=[
            "--enable-status-update-listener", "--status-update-socket-port", port])
        c.wait_for(lambda r: r.get("status") == "RUNNING" and answered_ok(r))
        assert command.alive()
        c.say("exit 0")
        c.check(Expect(0, DELIVERED, "SUCCEEDED", logs=("cannot listen for status updates",)))
    finally:
        taken.close()


# == the retry delay ===============================================================================
# The first attempt exits 3, `-r 1`, a 1 s delay; synchronisation: the "retrying in" line.


def between_attempts(c: Chaos, *flags: str, online: bool = True,
                     retry_delay: float = RETRY_DELAY) -> Running:
    if online:
        c.online()
    opts = c.options(**{"--process-max-retries": "1", "--process-retry-delay": f"{retry_delay:g}"})
    run = c.start(opts, child("--fail-first", str(c.tmp / "attempts"), *flags))
    c.ready("attempt")
    c.expect_log("retrying in")
    return run


@case("retry", "SIGKILL_reporter", "a new reporter; the retry happens on time; SUCCEEDED "
      "once, with failed_attempts 1")
def _retry_sigkill_reporter(c: Chaos) -> None:
    between_attempts(c, "--linger", "0")
    reporter = c.reporter()
    c.inject("SIGKILL reporter", c.kill(reporter))
    c.check(Expect(0, DELIVERED, "SUCCEEDED", output=("ready ",)))
    assert c.api is not None
    (final,) = [r for r in c.api.requests if is_final(r) and answered_ok(r)]
    assert final.get("failed_attempts") == 1, c.describe()


@case("retry", "SIGKILL_resolver", "with --config-ttl the retry resolves the secrets again; "
      "that resolver killed: the retry runs with the previous values (exit 0)")
def _retry_sigkill_resolver(c: Chaos) -> None:
    aws = c.held_aws(answers=1)
    c.plain_secret()
    opts = c.options(**{"--process-max-retries": "1", "--process-retry-delay": "0.1",
                        "--config-ttl": "0.05", "--env": SECRET_ARN})
    run = c.start(opts, child("--fail-first", str(c.tmp / "attempts"), "--linger", "0"))
    c.ready("attempt")
    aws.wait_held(timeout=SLACK * 2)  # the retry's resolver is fetching now
    resolvers = [p for p in map(procs.Proc.of, procs.children(run.pid))
                 if p.alive() and not (p.cmdline() or "").startswith("pwsup reporter")]
    assert len(resolvers) == 1, resolvers
    c.inject("SIGKILL resolver", c.kill(resolvers[0]))
    c.check(Expect(0, NONE, output=("ready ",), logs=("resolving the secrets again failed",)))


@case("retry", "SIGTERM", "no second attempt: exit 3 (the last attempt's code), ABORTED once")
def _retry_sigterm(c: Chaos) -> None:
    between_attempts(c, "--linger", "0", retry_delay=LONG)  # the stop must not wait it out
    c.inject("SIGTERM", c.signal(signal.SIGTERM))
    c.check(Expect(3, DELIVERED, "ABORTED", within=REPORT_CAP))
    assert c.run is not None
    assert not any(line.startswith("ready ") for line in c.run.lines()), c.describe()


@case("retry", "SIGINT_twice", "offline (the report side is final-SIGTERM_twice): no second "
      "attempt, exit 3 (the last attempt's code) at once")
def _retry_sigint_twice(c: Chaos) -> None:
    between_attempts(c, "--linger", "0", online=False, retry_delay=LONG)
    c.inject("SIGINT twice", c.twice(signal.SIGINT))
    c.check(Expect(3, NONE, within=0))
    assert c.run is not None
    assert not any(line.startswith("ready ") for line in c.run.lines()), c.describe()


@case("retry", "SIGHUP", "nothing to forward it to: dropped; the retry runs and never sees "
      "it; SUCCEEDED once")
def _retry_sighup(c: Chaos) -> None:
    between_attempts(c, "--SIGHUP", "report", "--linger", "0.2")
    c.inject("SIGHUP", c.signal(signal.SIGHUP))
    c.check(Expect(0, DELIVERED, "SUCCEEDED", output=("ready ",), no_output=("SIGHUP",)))


@case("retry", "API_hang", "the failed-attempt update hangs; the retry still starts on time "
      "and its success is reported once")
def _retry_api_hang(c: Chaos) -> None:
    api = c.online()
    api.script("PATCH", TASK_EXECUTION_PATH, Hang())
    retry_delay = 0.3
    # The failed-attempt update hangs for its whole (LONG) request timeout.
    opts = c.options(**{"--process-max-retries": "1", "--process-retry-delay": f"{retry_delay:g}",
                        "--api-heartbeat-interval": "-1", "--api-request-timeout": f"{LONG:g}"})
    run = c.start(opts, child("--fail-first", str(c.tmp / "attempts"), "--linger", "0"))
    c.ready("attempt")
    hung = c.wait_for(lambda r: r.behaviour == "Hang")
    c.ready()
    retried = time.monotonic()
    assert retried < hung.timestamp + LONG, f"the retry waited for the API\n{c.describe()}"
    assert retried - hung.timestamp < retry_delay + SLACK, c.describe()
    c.check(Expect(0, DELIVERED, "SUCCEEDED", within=HARD_DEADLINE), run)


# == time-limit escalation =========================================================================
# `-t 0.5`; the command reports SIGTERM and runs on; synchronisation: it printed SIGTERM.


def escalating(c: Chaos, *flags: str) -> tuple[Running, procs.Proc]:
    c.online()
    run = c.start(c.options(**{"--process-timeout": "0.5"}),
                  child("--SIGTERM", "report", *flags))
    command = c.ready()
    run.expect("SIGTERM")
    c.track()
    return run, command


@case("timeout", "SIGKILL_parent", "the reporter ends the group (TERM, grace, KILL); "
      "nothing left")
def _timeout_sigkill_parent(c: Chaos) -> None:
    _, command = escalating(c)
    c.inject("SIGKILL pwsup", c.signal(signal.SIGKILL))
    c.check(Expect(-signal.SIGKILL, ORPHANED))
    assert not command.alive()


@case("timeout", "SIGKILL_reporter", "the parent's escalation goes on (KILL after the "
      "grace): exit 124, TERMINATED_AFTER_TIME_OUT once")
def _timeout_sigkill_reporter(c: Chaos) -> None:
    escalating(c)
    reporter = c.reporter()
    c.inject("SIGKILL reporter", c.kill(reporter))
    c.check(Expect(124, DELIVERED, "TERMINATED_AFTER_TIME_OUT", within=GRACE + REPORT_CAP))


@case("timeout", "SIGKILL_child", "exit 124 at once, TERMINATED_AFTER_TIME_OUT once")
def _timeout_sigkill_child(c: Chaos) -> None:
    _, command = escalating(c)
    c.inject("SIGKILL command", c.kill(command))
    c.check(Expect(124, DELIVERED, "TERMINATED_AFTER_TIME_OUT", within=0))


@case("timeout", "SIGKILL_grandchild", "the command is still KILLed at the end of the grace: "
      "exit 124; no zombie")
def _timeout_sigkill_grandchild(c: Chaos) -> None:
    run, _ = escalating(c, "--grandchild")
    grandchild = announced(run, "grandchild")
    c.inject("SIGKILL grandchild", c.kill(grandchild))
    c.check(Expect(124, DELIVERED, "TERMINATED_AFTER_TIME_OUT", within=GRACE))


@case("timeout", "SIGTERM", "stop during the escalation: KILL at the original deadline (not "
      "extended); the time limit decided the attempt: exit 124, TERMINATED_AFTER_TIME_OUT")
def _timeout_sigterm(c: Chaos) -> None:
    escalating(c)
    c.inject("SIGTERM", c.signal(signal.SIGTERM))
    c.check(Expect(124, DELIVERED, "TERMINATED_AFTER_TIME_OUT", within=GRACE + REPORT_CAP))


@case("timeout", "SIGHUP", "forwarded during the grace period; the escalation goes on: "
      "exit 124")
def _timeout_sighup(c: Chaos) -> None:
    run, _ = escalating(c, "--SIGHUP", "report")
    c.inject("SIGHUP", c.signal(signal.SIGHUP))
    run.expect("SIGHUP")
    c.check(Expect(124, DELIVERED, "TERMINATED_AFTER_TIME_OUT", within=GRACE))


# == shutdown grace ================================================================================
# pwsup got SIGTERM; the command reports it and runs on; a 1 s grace period.


def shutting_down(c: Chaos, *flags: str, grace: float = SHUTDOWN_GRACE,
                  **overrides: str) -> tuple[Running, procs.Proc]:
    c.online()
    options = c.options(**{"--process-termination-grace-period": f"{grace:g}", **overrides})
    run = c.start(options, child("--SIGTERM", "report", "--status", *flags))
    command = c.ready()
    c.wait_for(lambda r: r.method == "POST")
    c.jitter("SIGTERM")
    c.fault_at = time.monotonic()  # before sending: the grace period cannot start earlier
    run.signal(signal.SIGTERM)
    run.expect("SIGTERM")
    c.track()
    return run, command


@case("shutdown", "SIGKILL_parent", "the reporter takes over the group (TERM, grace, KILL); "
      "nothing left")
def _shutdown_sigkill_parent(c: Chaos) -> None:
    _, command = shutting_down(c)
    c.inject("SIGKILL pwsup", c.signal(signal.SIGKILL))
    c.check(Expect(-signal.SIGKILL, ORPHANED))
    assert not command.alive()


@case("shutdown", "SIGKILL_reporter", "KILL after the grace; the new reporter delivers "
      "ABORTED once within the report timeout; exit 137")
def _shutdown_sigkill_reporter(c: Chaos) -> None:
    shutting_down(c)
    reporter = c.reporter()
    c.inject("SIGKILL reporter", c.kill(reporter))
    c.check(Expect(137, DELIVERED, "ABORTED", within=SHUTDOWN_GRACE + REPORT_CAP))


@case("shutdown", "SIGKILL_child", "exit 137 at once (no waiting out the grace); ABORTED "
      "once")
def _shutdown_sigkill_child(c: Chaos) -> None:
    _, command = shutting_down(c, grace=LONG)  # a grace period it must not wait out
    c.inject("SIGKILL command", c.kill(command))
    c.check(Expect(137, DELIVERED, "ABORTED", within=0))


@case("shutdown", "SIGINT", "a second stop signal (forwarded; the command survives it) changes "
      "nothing: KILL at the end of the first grace period, exit 137, ABORTED once")
def _shutdown_sigint(c: Chaos) -> None:
    shutting_down(c, "--SIGINT", "report")
    term_at = c.fault_at or 0.0
    c.inject("SIGINT", c.signal(signal.SIGINT))
    assert c.run is not None
    c.check(Expect(137, DELIVERED, "ABORTED"))
    assert c.run.exited_at is not None
    took = c.run.exited_at - term_at
    assert SHUTDOWN_GRACE - 0.05 <= took <= SHUTDOWN_GRACE + REPORT_CAP + SLACK, (
        f"exited {took:.3f} s after SIGTERM\n{c.describe()}")


@case("shutdown", "API_hang", "the final report hangs: given up after the shutdown report "
      "timeout and logged as lost; exit 137")
def _shutdown_api_hang(c: Chaos) -> None:
    # The final update's own deadline is LONG: only the shutdown report cap ends the wait.
    shutting_down(c, **{"--api-final-update-timeout": f"{LONG:g}"})
    assert c.api is not None
    api = c.api
    c.inject("API hangs", lambda: api.always("PATCH", Hang(), path=TASK_EXECUTION_PATH))
    c.check(Expect(137, LOST, within=SHUTDOWN_GRACE + REPORT_CAP))


@case("shutdown", "API_5xx", "the final update meets 503s until the API recovers within the "
      "report timeout: ABORTED delivered once")
def _shutdown_api_5xx(c: Chaos) -> None:
    shutting_down(c)
    assert c.api is not None
    api = c.api
    c.inject("API 503", lambda: api.always("PATCH", Respond(503), path=TASK_EXECUTION_PATH))
    c.wait_for(lambda r: is_final(r) and r.response_status == 503)
    api.clear_always()
    c.check(Expect(137, DELIVERED, "ABORTED", within=SHUTDOWN_GRACE + REPORT_CAP))


# == the final update ==============================================================================
# No heartbeats (so scripted PATCH faults meet the final update); the command exits 3.


def finishing(c: Chaos, *behaviours: Any, always: Any = None, **overrides: str) -> Running:
    """pwsup whose command has exited 3 and whose final update (PATCH) met `behaviours`
    (then `always`): the fake server has recorded it. No heartbeats."""
    api = c.online()
    if behaviours:
        api.script("PATCH", TASK_EXECUTION_PATH, *behaviours)
    if always is not None:
        api.always("PATCH", always, path=TASK_EXECUTION_PATH)
    run = c.start(c.options(**{"--api-heartbeat-interval": "-1", **overrides}), child())
    c.ready()
    c.wait_for(lambda r: r.method == "POST")
    c.say("exit 3")
    c.wait_for(is_final)
    return run


@case("final", "SIGKILL_parent", "the reporter holds the final report, and the API recovers "
      "within the final update timeout: FAILED delivered once; nothing left")
def _final_sigkill_parent(c: Chaos) -> None:
    finishing(c, Hang())
    reporter = c.reporter()
    c.inject("SIGKILL pwsup", c.signal(signal.SIGKILL))
    c.check(Expect(-signal.SIGKILL, DELIVERED, "FAILED"))
    assert not reporter.alive()


@case("final", "SIGKILL_reporter", "a new reporter sends the final update again: FAILED "
      "delivered once; exit 3")
def _final_sigkill_reporter(c: Chaos) -> None:
    finishing(c, Hang())
    reporter = c.reporter()
    c.inject("SIGKILL reporter", c.kill(reporter))
    c.check(Expect(3, DELIVERED, "FAILED", within=FINAL_TIMEOUT))


@case("final", "SIGTERM", "the wait for a hung final update is cut to the shutdown report "
      "timeout; logged as lost; exit 3")
def _final_sigterm(c: Chaos) -> None:
    # The final update's own deadline is LONG: only the shutdown report cap ends the wait.
    finishing(c, always=Hang(), **{"--api-final-update-timeout": f"{LONG:g}"})
    c.inject("SIGTERM", c.signal(signal.SIGTERM))
    c.check(Expect(3, LOST, within=REPORT_CAP))


@case("final", "SIGTERM_twice", "the second SIGTERM ends the wait at once: exit 3; the loss "
      "is logged")
def _final_sigterm_twice(c: Chaos) -> None:
    # Both deadlines LONG: only the second SIGTERM can end the wait.
    finishing(c, always=Hang(), **{"--api-final-update-timeout": f"{LONG:g}",
                                   "--shutdown-report-timeout": f"{LONG:g}"})
    c.inject("SIGTERM twice", c.twice(signal.SIGTERM))
    c.check(Expect(3, BEST_EFFORT, within=0))


@case("final", "API_409", "the server keeps its own status: not retried, logged; exit 3")
def _final_api_409(c: Chaos) -> None:
    finishing(c, Respond(409))
    c.check(Expect(3, REFUSED, within=0))


@case("final", "API_malformed", "processed by the server, answered with malformed JSON: "
      "counts as delivered (once, not retried); exit 3")
def _final_api_malformed(c: Chaos) -> None:
    finishing(c, Malformed(process=True))
    c.check(Expect(3, DELIVERED, "FAILED", within=0))


@case("final", "API_slow", "a 1.5 s answer (within the 5 s request timeout) is waited for: "
      "FAILED delivered once, not sent twice; exit 3")
def _final_api_slow(c: Chaos) -> None:
    finishing(c, Slow(1.5), **{"--api-request-timeout": "5"})
    c.check(Expect(3, DELIVERED, "FAILED", within=1.5))


@case("final", "Rollbar_hang", "the final update is refused (400) and reported to a Rollbar "
      "that hangs: logged as lost, exit 3 without waiting for Rollbar")
def _final_rollbar(c: Chaos) -> None:
    rollbar = c.with_rollbar()
    rollbar.always(RollbarHang())
    finishing(c, Respond(400))
    c.fault_at = time.monotonic()
    c.check(Expect(3, LOST, within=ROLLBAR_TIMEOUT))
    assert rollbar.requests, c.describe()


# == embedded: run_isolated ========================================================================
# A program calls run_isolated; the worker announces the phase it blocks in.


def embedded(c: Chaos, phase: str) -> tuple[Running, procs.Proc]:
    run = c.launch([PYTHON, "-c", EMBEDDED_CALLER, phase])
    run.expect("caller ")
    worker = c.ready(phase)
    return run, worker


def _embedded_cases() -> None:
    for phase in ("args", "running", "returning"):
        def sigkill_worker(c: Chaos, phase: str = phase) -> None:
            _, worker = embedded(c, phase)
            c.inject("SIGKILL worker", c.kill(worker))
            c.check(Expect(1, started=None, within=0, output=(
                f"outcome WorkerCrashed: worker (pid {worker.pid}) was killed by SIGKILL "
                "(signal 9): killed from outside or by the out-of-memory killer",)))

        def sigterm_caller(c: Chaos, phase: str = phase) -> None:
            _, worker = embedded(c, phase)
            c.inject("SIGTERM caller", c.signal(signal.SIGTERM))
            c.check(Expect(-signal.SIGTERM, started=None, within=0))
            assert not worker.alive()

        def sigint_caller(c: Chaos, phase: str = phase) -> None:
            _, worker = embedded(c, phase)
            c.inject("SIGINT caller", c.signal(signal.SIGINT))
            c.check(Expect(130, started=None, within=GRACE,
                           output=("outcome KeyboardInterrupt",)))
            assert not worker.alive()

        where = f"embedded_{phase}"
        case(where, "SIGKILL_worker", "WorkerCrashed naming SIGKILL and its likely cause; "
             "the caller goes on")(sigkill_worker)
        if phase == "running":
            case(where, "SIGTERM", "the caller dies of it (default action), the worker with "
                 "it (PDEATHSIG): nothing left")(sigterm_caller)
        case(where, "SIGINT", "the worker is stopped (SIGTERM, grace, KILL), then "
             "KeyboardInterrupt in the caller")(sigint_caller)


_embedded_cases()
CASES.sort(key=lambda c: (list(PHASES).index(c.phase), list(FAULTS).index(c.fault)))


# == the cells without a case ======================================================================

_CHAOS = "tests/chaos/"
ELSEWHERE: dict[tuple[str, str], str] = {
    ("creation", "SIGTERM"):
        _CHAOS + "test_hung_api.py::test_sigterm_while_creation_hangs_exits_without_starting_"
        "the_command",
    ("running", "API_hang"):
        _CHAOS + "test_hung_api.py::test_sigterm_is_forwarded_at_once_while_heartbeats_hang, "
        "::test_exit_is_noticed_at_once_when_only_a_heartbeat_hangs",
    ("timeout", "API_hang"):
        _CHAOS + "test_hung_api.py::test_time_limit_fires_on_time_while_heartbeats_hang",
    ("final", "API_hang"):
        _CHAOS + "test_hung_api.py::test_exit_is_noticed_at_once_and_a_hung_final_update_is_"
        "capped, ::test_final_update_survives_an_outage_and_is_delivered_once[503-reset-hang]",
    ("final", "API_reset"):
        _CHAOS + "test_hung_api.py::test_final_update_survives_an_outage_and_is_delivered_"
        "once[503-reset-hang]",
    ("final", "API_5xx"):
        _CHAOS + "test_hung_api.py::test_final_update_survives_an_outage_and_is_delivered_"
        "once[503-503]",
    ("retry", "SIGKILL_parent"):
        _CHAOS + "test_chaos_reporter.py::test_killed_parent_during_a_retry_wait_leaves_"
        "nothing_running",
    ("embedded_running", "SIGINT_twice"):
        "tests/unit/test_run_isolated.py::test_second_ctrl_c_skips_the_grace_period",
    ("embedded_running", "SIGKILL_parent"):
        "tests/unit/test_run_isolated.py::test_worker_dies_with_its_caller (SIGKILL of the "
        "caller)",
}
"""Cells an existing test already covers (they are not repeated here)."""

NOT_APPLICABLE: dict[tuple[str, str], str] = {}
"""Cells that make no sense, with the reason. Built by the rules below, most specific
first; a rule never overrides a case, a cell covered elsewhere, or an earlier rule."""

_API = ("API_hang", "API_reset", "API_5xx", "API_409", "API_409_forever", "API_429",
        "API_malformed", "API_slow")
_EMBEDDED = ("embedded_args", "embedded_running", "embedded_returning")
_PWSUP_PHASES = tuple(p for p in PHASES if p not in _EMBEDDED)


def _na(phases: Iterable[str], faults: Iterable[str], reason: str) -> None:
    cases = {(c.phase, c.fault) for c in CASES}
    for phase in phases:
        for fault in faults:
            cell = (phase, fault)
            if cell not in cases and cell not in ELSEWHERE:
                NOT_APPLICABLE.setdefault(cell, reason)


# Cases dropped as repeats of others (the same code path, the same outcome).
_na(("running", "final"), ("API_429",), "one decision function serves every request kind: "
    "Retry-After is honoured as in creation-API_429")
_na(("running",), ("API_malformed",), "a 2xx is a success whatever its body "
    "(final-API_malformed); only the start request needs the body (creation-API_malformed)")
_na(("start",), ("SIGKILL_reporter",), "the same as running-SIGKILL_reporter: a new "
    "reporter learns the attempt from the seed")
_na(("shutdown",), ("SIGHUP",), "forwarded during a grace period: as timeout-SIGHUP")
_na(("creation", "final"), ("SIGHUP",), "no command to forward it to, and not a stop "
    "signal: ignored, as in options-SIGHUP and retry-SIGHUP")
_na(("embedded_args", "embedded_returning"), ("SIGTERM",), "the caller dies of it whatever "
    "the worker is doing: embedded_running-SIGTERM")

# Embedded mode has no pwsup parent, reporter, resolver, API, files or command.
_na(_EMBEDDED, ("SIGKILL_parent",), "SIGKILL of the caller: PDEATHSIG takes the worker along "
    "(tests/unit/test_run_isolated.py::test_worker_dies_with_its_caller; one phase suffices)")
_na(_EMBEDDED, ("SIGINT_twice",), "a second Ctrl-C skips the grace period: covered in fn's "
    "running phase (the worker's phase makes no difference to the caller)")
_na(_EMBEDDED, ("SIGHUP",), "the caller's own disposition decides; by default it dies of it, "
    "exactly like the SIGTERM cases")
_na(_EMBEDDED, ("SIGTERM_twice",), "the first SIGTERM already kills the caller (default "
    "disposition)")
_na(_EMBEDDED, [f for f in FAULTS if f not in ("SIGKILL_worker", "SIGTERM", "SIGINT")],
    "run_isolated has no reporter, resolver, API, Rollbar, status listener, output files or "
    "command: pwsup-only fault")
_na(_PWSUP_PHASES, ("SIGKILL_worker",), "only run_isolated has a worker")

# Processes that do not exist in a phase.
_na(("options",), ("SIGKILL_parent",), "nothing but pwsup exists yet: a SIGKILL just ends "
    "it, with nothing to leave behind (and no handshake could time it before the handlers)")
_na(("options", "resolution", "creation"), ("SIGKILL_child", "SIGKILL_grandchild"),
    "the command is not started yet")
_na(("options", "resolution"), ("SIGKILL_reporter",), "the reporter starts after resolution")
_na(("start",), ("SIGKILL_grandchild",), "the command has had no time to start anything")
_na(("retry",), ("SIGKILL_child", "SIGKILL_grandchild"), "nothing runs between attempts "
    "(leftovers are terminated before the retry is scheduled)")
_na(("final",), ("SIGKILL_child", "SIGKILL_grandchild"), "the command and whatever it left "
    "are gone before the final update is sent")
_na(("start",), ("SIGKILL_parent",), "the same as running-SIGKILL_parent: the reporter knows "
    "the group from the moment of the spawn")
_na(("shutdown",), ("SIGKILL_grandchild",), "the same escalation as timeout-SIGKILL_grandchild")
_na([p for p in _PWSUP_PHASES if p not in ("resolution", "retry")], ("SIGKILL_resolver",),
    "a resolver exists only while secrets are resolved: at start-up, and before a retry "
    "with --config-ttl")

# Signals.
_na(("options",), ("SIGINT",), "the same path as options-SIGTERM: a pending stop signal")
_na(("options",), ("SIGTERM_twice", "SIGINT_twice"), "standard signals do not queue: two "
    "pending SIGTERMs are one")
_na(("resolution",), ("SIGTERM_twice", "SIGINT_twice"), "the first signal already ends pwsup")
_na(("creation",), ("SIGINT_twice",), "the same path as creation-SIGTERM_twice")
_na(("start",), ("SIGINT", "SIGHUP", "SIGTERM_twice", "SIGINT_twice"), "a freshly spawned "
    "command is a running command: as in the running phase")
_na(("running",), ("SIGINT_twice",), "the same path as running-SIGTERM_twice")
_na(("retry",), ("SIGINT",), "the same path as retry-SIGTERM")
_na(("retry",), ("SIGTERM_twice",), "the same path as retry-SIGINT_twice")
_na(("timeout",), ("SIGINT",), "the same path as timeout-SIGTERM")
_na(("timeout", "shutdown"), ("SIGTERM_twice", "SIGINT_twice"), "a stop signal during the "
    "grace period is the second one: shutdown-SIGINT, running-SIGTERM_twice")
_na(("shutdown",), ("SIGTERM",), "a second SIGTERM during the shutdown grace period is "
    "running-SIGTERM_twice")
_na(("final",), ("SIGINT",), "the same path as final-SIGTERM")
_na(("final",), ("SIGINT_twice",), "the same path as final-SIGTERM_twice")

# The API, Rollbar and the metadata endpoint.
_na(("options", "resolution"), (*_API, "Rollbar_hang"), "no request before the secrets are "
    "resolved: the reporter starts after")
_na([p for p in _PWSUP_PHASES if p != "creation"], ("API_409_forever",), "only the start "
    "request treats 409 as a conflict to retry")
_na(("start",), _API, "the pid update is an ordinary RUNNING update: the running-API_* cases "
    "(start-API_hang checks it does not hold up the run)")
_na(("retry",), _API, "the failed-attempt update is an ordinary RUNNING update: the "
    "running-API_* cases (retry-API_hang checks it does not delay the retry)")
_na(("timeout",), _API, "the escalation never waits on the API; its updates are the "
    "running-API_* cases, its final report the final-API_* cases")
_na(("shutdown",), _API, "the final report during shutdown is the final update under a "
    "shorter cap: the final-API_* cases (shutdown-API_hang checks the cap)")
_na(("running", "final"), ("API_409_forever",), "only the start request retries 409")
_na([p for p in _PWSUP_PHASES if p not in ("creation", "running", "final")],
    ("Rollbar_hang",), "Rollbar hears only of failed API requests and undeliverable final "
    "reports: probed where they happen (creation, running, final)")
_na([p for p in _PWSUP_PHASES if p not in ("resolution", "creation")], ("metadata_hang",),
    "runtime metadata is fetched at resolution (region lookup) and before the start "
    "request, then cached")
_na(("options",), ("metadata_hang",), "nothing is fetched while parsing options")
_na([p for p in _PWSUP_PHASES if p != "running"], ("status_port_taken",), "the listener "
    "opens with the reporter and matters only while the command runs: running-"
    "status_port_taken")

# Resources.
_na([p for p in _PWSUP_PHASES if p not in ("resolution", "start")], ("disk_full",),
    "pwsup writes files only at start-up: the resolver's output files (resolution) and the "
    "input file (start)")
_na([p for p in _PWSUP_PHASES if p not in ("resolution", "start", "creation")],
    ("fd_exhaustion",),
    "descriptors are allocated at start-up: the sweeps (resolution: with secrets, start: "
    "offline, creation: online) apply the limit from pwsup's first instruction")
_na([p for p in _PWSUP_PHASES if p != "resolution"], ("AWS_unreachable",), "secrets are "
    "fetched only at resolution (the --config-ttl refresh before a retry is the same "
    "resolver: retry-SIGKILL_resolver covers its failure)")


def cell_of(phase: str, fault: str) -> tuple[str, str]:
    """("case", id) | ("elsewhere", test) | ("n/a", reason) | ("missing", "")."""
    for c in CASES:
        if (c.phase, c.fault) == (phase, fault):
            return "case", c.id
    if (phase, fault) in ELSEWHERE:
        return "elsewhere", ELSEWHERE[phase, fault]
    if (phase, fault) in NOT_APPLICABLE:
        return "n/a", NOT_APPLICABLE[phase, fault]
    return "missing", ""


_SHORT = {"options": "opt", "resolution": "res", "creation": "cre", "start": "sta",
          "running": "run", "retry": "rty", "timeout": "tmo", "shutdown": "shu",
          "final": "fin", "embedded_args": "e:a", "embedded_running": "e:r",
          "embedded_returning": "e:v"}


def summary_lines(outcomes: Mapping[tuple[str, str], str]) -> list[str]:
    """The terminal summary (conftest.py): faults x phases, with each case's outcome."""
    symbol = {"passed": "ok", "failed": "FAIL", "skipped": "skip"}
    counts = {k: sum(1 for v in outcomes.values() if v == k)
              for k in ("passed", "failed", "skipped")}
    cells = len(PHASES) * len(FAULTS)
    elsewhere = len(ELSEWHERE)
    lines = [f"{len(outcomes)} of {len(CASES)} cases ran: {counts['passed']} passed, "
             f"{counts['failed']} failed, {counts['skipped']} skipped",
             f"{cells} cells ({len(FAULTS)} faults × {len(PHASES)} phases): {len(CASES)} "
             f"cases, {elsewhere} covered by other tests, {len(NOT_APPLICABLE)} N/A",
             "",
             "fault \\ phase".ljust(18) + " " + " ".join(f"{_SHORT[p]:>4}" for p in PHASES)]
    for fault in FAULTS:
        row = []
        for phase in PHASES:
            kind, _ = cell_of(phase, fault)
            text = {"case": symbol.get(outcomes.get((phase, fault), ""), "."),
                    "elsewhere": "ext", "n/a": "-", "missing": "?"}[kind]
            row.append(f"{text:>4}")
        lines.append(f"{fault:<18} " + " ".join(row))
    per_phase = [sum(1 for c in CASES if c.phase == phase) for phase in PHASES]
    lines.append(f"{'(cases)':<18} " + " ".join(f"{n:>4}" for n in per_phase))
    lines += ["", "ok passed · FAIL failed · skip skipped · . not run · ext covered by "
              "another test · - N/A (reasons: docs/chaos.md)"]
    failed = sorted(f"{p}-{f}" for (p, f), v in outcomes.items() if v == "failed")
    if failed:
        lines.append("failed: " + ", ".join(failed))
    return lines


def markdown() -> str:
    """The matrix as Markdown, for docs/chaos.md (`python tests/chaos/test_matrix.py`)."""
    reasons: dict[str, int] = {}
    for fault in FAULTS:
        for phase in PHASES:
            kind, text = cell_of(phase, fault)
            if kind == "n/a" and text not in reasons:
                reasons[text] = len(reasons) + 1
    refs: dict[str, int] = {}
    for text in ELSEWHERE.values():
        refs.setdefault(text, len(refs) + 1)
    out = ["| fault \\ phase | " + " | ".join(f"`{_SHORT[p]}`" for p in PHASES) + " |",
           "|---|" + "---|" * len(PHASES)]
    for fault in FAULTS:
        row = []
        for phase in PHASES:
            kind, text = cell_of(phase, fault)
            row.append({"case": "**●**", "elsewhere": f"e{refs.get(text, 0)}",
                        "n/a": f"n{reasons.get(text, 0)}", "missing": "?"}[kind])
        out.append(f"| `{fault}` | " + " | ".join(row) + " |")
    out += ["", "Phases: " + "; ".join(f"`{_SHORT[p]}` {p} — {d}" for p, d in PHASES.items())
            + ".", "", "Faults:", ""]
    out += [f"- `{f}`: {d}" for f, d in FAULTS.items()]
    out += ["", "Covered by other tests:", ""]
    out += [f"- e{n}: `{text}`" for text, n in refs.items()]
    out += ["", "Not applicable:", ""]
    out += [f"- n{n}: {text}" for text, n in reasons.items()]
    out += ["", "The cases and their expected outcomes:", "", "| case | expected outcome |",
            "|---|---|"]
    out += [f"| `{c.id}` | {c.expected} |" for c in CASES]
    return "\n".join(out) + "\n"


def test_matrix_accounts_for_every_cell() -> None:
    """Each (phase, fault) is exactly one of: a case, covered elsewhere, N/A with a reason."""
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    missing = [(p, f) for p in PHASES for f in FAULTS if cell_of(p, f)[0] == "missing"]
    assert not missing, f"cells with neither a case nor a reason: {missing}"
    cases = {(c.phase, c.fault) for c in CASES}
    assert not cases & set(ELSEWHERE), "a case repeats a test that exists elsewhere"
    assert not cases & set(NOT_APPLICABLE)
    assert all(p in PHASES and f in FAULTS for p, f in ELSEWHERE)


def test_docs_show_the_current_matrix() -> None:
    """docs/chaos.md carries the table this module builds (regenerate it with
    `python tests/chaos/test_matrix.py`)."""
    page = Path(__file__).resolve().parents[2] / "docs" / "chaos.md"
    assert markdown() in page.read_text(encoding="utf-8"), (
        "docs/chaos.md is stale: paste the output of `python tests/chaos/test_matrix.py`")


if __name__ == "__main__":
    sys.stdout.write(markdown())
