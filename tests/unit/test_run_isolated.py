"""run_isolated: values and exceptions come back, retries, timeouts, Ctrl-C, status updates,
no /dev/shm needed, and nothing left behind (every test checks fds and child processes)."""

from __future__ import annotations

import atexit
import ctypes
import errno
import faulthandler
import functools
import itertools
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import psutil
import pytest

from helpers import procs
from pwsup.embedded import handle
from pwsup.embedded.isolated import run_isolated, update_status
from pwsup.errors import (
    ExceptionNotPicklable,
    IsolationError,
    RemoteTraceback,
    ResultNotPicklable,
    ResultNotUnpicklable,
    TransferError,
    WorkerCrashed,
    WorkerTimeout,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

THREADED_FORK = pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded:DeprecationWarning")
"""Python 3.12+ warns when a multi-threaded process forks; these tests fork on purpose
while a helper thread waits to send SIGINT."""


# -- fixtures and helpers ----------------------------------------------------------------------


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def child_pids() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest.fixture(autouse=True)
def nothing_left_behind() -> Iterator[None]:
    """Every test: no new file descriptor and no child process (not even a zombie) after.
    The keeper (one per caller, for its whole life) is started first: it is no leftover."""
    procs.keeper_started()
    fds, children = open_fds(), child_pids()
    yield
    assert child_pids() - children == set()
    assert open_fds() - fds == set()


@contextmanager
def handshake() -> Iterator[tuple[int, int]]:
    """A pipe the worker inherits through the fork: it writes, the test reads."""
    r, w = os.pipe()
    try:
        yield r, w
    finally:
        os.close(r)
        os.close(w)


def read_pid(fd: int) -> int:
    return int(os.read(fd, 32))


EVENT_TIMEOUT = 30.0
"""How long a test waits for an event before it fails: generous, since the machine may be
busy, and a broken run_isolated fails the test rather than slowing it."""


class Interrupter(threading.Thread):
    """Presses Ctrl-C for a test: waits for the worker's pid on `ready_fd`, then for each
    of `waits` waits for that event (called with the pid) and sends SIGINT to this process.
    SIGINT is blocked in this thread, so the kernel delivers it to the main thread, which
    is waiting in run_isolated: a Ctrl-C, as a terminal sends it. A wait that times out is
    recorded in `errors` and the SIGINT sent anyway, so the main thread is never left
    waiting for it."""

    def __init__(self, ready_fd: int, waits: tuple[Callable[[int], None], ...]) -> None:
        super().__init__(daemon=True)
        self.ready_fd = ready_fd
        self.waits = waits
        self.pids: list[int] = []
        self.errors: list[AssertionError] = []

    def run(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        pid = read_pid(self.ready_fd)
        self.pids.append(pid)
        for wait in self.waits:
            try:
                wait(pid)
            except AssertionError as e:
                self.errors.append(e)
            os.kill(os.getpid(), signal.SIGINT)


def interrupt_after(ready_fd: int, *waits: Callable[[int], None]) -> Interrupter:
    """Start an Interrupter; without `waits`, one Ctrl-C as soon as the worker is ready."""
    thread = Interrupter(ready_fd, waits or (lambda pid: None,))
    thread.start()
    return thread


def until_reaped(pid: int) -> None:
    """Wait until the caller has reaped the worker `pid` (no event says so: poll)."""
    procs.wait_until(lambda: pid not in child_pids(), EVENT_TIMEOUT,
                     f"the caller to reap its worker {pid}")


def until_sigterm_reported(ready_fd: int) -> Callable[[int], None]:
    """A wait for `sleep_reporting_term`'s word that its worker got SIGTERM."""
    def wait(pid: int) -> None:
        ready, _, _ = select.select([ready_fd], [], [], EVENT_TIMEOUT)
        assert ready, f"worker {pid} did not report SIGTERM within {EVENT_TIMEOUT:g} s"
        assert os.read(ready_fd, 1) == b"T"

    return wait


def add(a: int, b: int = 0, *, c: int = 0) -> int:
    return a + b + c


def raise_value_error(message: str) -> NoReturn:
    raise ValueError(message)


def sleep_ignoring_term(ready_fd: int | None = None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if ready_fd is not None:
        os.write(ready_fd, str(os.getpid()).encode())
    time.sleep(60)


def sleep_reporting_term(ready_fd: int) -> None:
    """Carries on after SIGTERM, like sleep_ignoring_term, but writes b"T" to `ready_fd`
    when it comes: the test then knows the grace period has begun."""
    signal.signal(signal.SIGTERM, lambda *_: os.write(ready_fd, b"T"))
    os.write(ready_fd, str(os.getpid()).encode())
    time.sleep(60)


def report_ready_and_sleep(ready_fd: int) -> None:
    os.write(ready_fd, str(os.getpid()).encode())
    time.sleep(60)


class NeedsTwoArguments(Exception):
    """Pickles, but does not unpickle: __init__ wants two arguments, args holds one."""

    def __init__(self, a: str, b: str) -> None:
        super().__init__(f"{a} {b}")


# -- values and exceptions ---------------------------------------------------------------------


def test_returns_the_value_with_args_and_kwargs() -> None:
    """Positional and keyword arguments reach fn; its value comes back."""
    assert run_isolated(add, 1, 2, c=3) == 6


def test_returns_a_10_mb_value() -> None:
    """A value much larger than the pipe's buffer comes back whole."""
    value = run_isolated(lambda: bytes(range(256)) * 40960)
    assert len(value) == 10 * 1024 * 1024
    assert value == bytes(range(256)) * 40960


def test_arguments_are_not_pickled() -> None:
    """The fork copies arguments: a lock, a lambda and an open pipe are fine."""
    with handshake() as (r, w):
        result = run_isolated(lambda lock, f, fd: (lock.acquire(), f(), os.write(fd, b"x")),
                              threading.Lock(), lambda: 5, w)
        assert result == (True, 5, 1)
        assert os.read(r, 1) == b"x"


def test_fn_may_take_a_keyword_called_fn() -> None:
    """fn is positional-only, so `fn=` goes to fn."""
    assert run_isolated(lambda fn: fn * 2, fn=21) == 42


def test_reserved_keyword_names_reach_fn_through_partial() -> None:
    """timeout= is run_isolated's; bind fn's own `timeout` with functools.partial."""
    assert run_isolated(functools.partial(lambda timeout: timeout, timeout=7), timeout=5) == 7


def test_exception_is_reraised_with_the_worker_traceback_as_cause() -> None:
    """fn's own exception type and message, with a RemoteTraceback naming fn's frames."""
    with pytest.raises(ValueError, match=r"^bad input$") as caught:
        run_isolated(raise_value_error, "bad input")
    cause = caught.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert str(cause) == cause.traceback
    assert "Traceback (most recent call last)" in str(cause)
    assert "in raise_value_error" in str(cause)
    assert "ValueError: bad input" in str(cause)
    assert not isinstance(caught.value, IsolationError)


def test_calling_fn_with_wrong_arguments_is_fns_type_error() -> None:
    """A bad call is raised like any of fn's exceptions, traceback included."""
    with pytest.raises(TypeError, match="unexpected keyword argument 'nope'") as caught:
        run_isolated(add, 1, nope=2)
    assert isinstance(caught.value.__cause__, RemoteTraceback)


def test_exception_that_cannot_be_unpickled_is_named_with_its_traceback() -> None:
    """Caught in the worker (which still has the traceback), not in the caller."""
    def fn() -> None:
        raise NeedsTwoArguments("a", "b")

    with pytest.raises(ExceptionNotPicklable, match="NeedsTwoArguments") as caught:
        run_isolated(fn)
    assert caught.value.type_name.endswith("NeedsTwoArguments")
    assert "missing 1 required positional argument" in caught.value.reason
    assert "NeedsTwoArguments: a b" in str(caught.value.__cause__)


def test_result_that_cannot_be_unpickled_in_the_caller() -> None:
    """ResultNotUnpicklable, naming the reason; never a hang."""
    with pytest.raises(ResultNotUnpicklable, match="RuntimeError: refused to load"):
        run_isolated(LoadFails)


class LoadFails:
    def __reduce__(self) -> tuple[Callable[[], NoReturn], tuple[()]]:
        return (_refuse_to_load, ())


def _refuse_to_load() -> NoReturn:
    raise RuntimeError("refused to load")


def test_sys_exit_in_fn_is_a_crash_not_an_exit_of_the_caller() -> None:
    """SystemExit ends the worker; the caller gets WorkerCrashed with the code."""
    with pytest.raises(WorkerCrashed, match="exited with code 4") as caught:
        run_isolated(sys.exit, 4)
    assert (caught.value.exitcode, caught.value.signal) == (4, None)
    assert isinstance(caught.value.pid, int)


def test_worker_output_appears_once_before_the_value(capfd: pytest.CaptureFixture[str]) -> None:
    """fn's prints are flushed before it exits; the caller's unflushed output is not
    printed a second time by the worker."""
    print("caller says hi", end="")
    run_isolated(lambda: print("worker says hi", end=""))
    out = capfd.readouterr().out
    assert out.count("caller says hi") == 1
    assert out.count("worker says hi") == 1


# -- retries -----------------------------------------------------------------------------------


def record_attempt(attempts_file: Path) -> int:
    """Count an attempt in a file (the worker's memory is gone after each); return its
    number."""
    with attempts_file.open("a") as f:
        f.write("x")
    return len(attempts_file.read_text())


def fail_until(attempts_file: Path, succeed_on: int) -> int:
    """Raise until attempt number `succeed_on`."""
    attempt = record_attempt(attempts_file)
    if attempt < succeed_on:
        raise RuntimeError(f"attempt {attempt} failed")
    return attempt


def fail_until_timed(attempts_file: Path, starts_file: Path, succeed_on: int) -> int:
    """fail_until, noting when each attempt started (CLOCK_MONOTONIC is system-wide, so
    the worker's readings compare with each other's)."""
    with starts_file.open("a") as f:
        f.write(f"{time.monotonic()}\n")
    return fail_until(attempts_file, succeed_on)


def test_retries_until_success_waiting_between_attempts(tmp_path: Path) -> None:
    """Three attempts, each starting at least retry_delay (0.2 s) after the one before."""
    attempts, starts_file = tmp_path / "attempts", tmp_path / "starts"
    assert run_isolated(fail_until_timed, attempts, starts_file, 3, retries=5,
                        retry_delay=0.2) == 3
    starts = [float(line) for line in starts_file.read_text().split()]
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert len(gaps) == 2
    assert min(gaps) >= 0.2, gaps
    assert max(gaps) < EVENT_TIMEOUT, gaps  # a delay, not a stall: 0.2 s was asked for


def test_last_failure_is_raised_when_retries_run_out(tmp_path: Path) -> None:
    """retries=2: three attempts, and the third one's exception is raised."""
    attempts = tmp_path / "attempts"
    with pytest.raises(RuntimeError, match="attempt 3 failed"):
        run_isolated(fail_until, attempts, 99, retries=2)
    assert attempts.read_text() == "xxx"


def test_crashes_and_timeouts_are_retried(tmp_path: Path) -> None:
    """A crash, then a timeout, then success."""
    attempts = tmp_path / "attempts"

    def fn() -> str:
        n = record_attempt(attempts)
        if n == 1:
            os._exit(1)
        if n == 2:
            time.sleep(60)
        return "third time"

    assert run_isolated(fn, retries=2, timeout=0.5, grace=0.5) == "third time"


def test_transfer_errors_are_not_retried(tmp_path: Path) -> None:
    """An unpicklable value would fail the same way again: one attempt only."""
    attempts = tmp_path / "attempts"

    def fn() -> threading.Lock:
        record_attempt(attempts)
        return threading.Lock()

    with pytest.raises(ResultNotPicklable):
        run_isolated(fn, retries=3)
    assert attempts.read_text() == "x"


@THREADED_FORK
def test_ctrl_c_interrupts_the_retry_delay() -> None:
    """A 30 s retry delay ends at the first Ctrl-C."""
    with handshake() as (r, w):
        def fn() -> NoReturn:
            os.write(w, str(os.getpid()).encode())
            raise RuntimeError("try again later")

        thread = interrupt_after(r, until_reaped)  # Ctrl-C once the delay has begun
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            run_isolated(fn, retries=1, retry_delay=30)
        took = time.monotonic() - start
        thread.join()
    assert thread.errors == []
    assert took < 30  # the 30 s retry delay did not run out


# -- timeouts and Ctrl-C -----------------------------------------------------------------------


def test_timeout_stops_the_worker_with_sigterm() -> None:
    """A worker that ends on SIGTERM is gone at the timeout, without the grace period."""
    start = time.monotonic()
    with pytest.raises(WorkerTimeout, match=r"within its 0\.3 s timeout.*SIGTERM$") as caught:
        run_isolated(time.sleep, 60, timeout=0.3, grace=10)
    took = time.monotonic() - start
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.timeout == 0.3
    assert 0.3 <= took < 0.3 + 10  # not before the timeout; the 10 s grace did not run out


def test_worker_ignoring_sigterm_is_killed_at_the_end_of_the_grace_period() -> None:
    """Elapsed time is timeout + grace; the message says SIGKILL was needed."""
    start = time.monotonic()
    with pytest.raises(WorkerTimeout, match=r"SIGKILL.*after the 0\.5 s grace period"):
        run_isolated(sleep_ignoring_term, timeout=0.5, grace=0.5)
    took = time.monotonic() - start
    assert took >= 0.5 + 0.5  # SIGKILL only once timeout and grace period have passed
    assert took < EVENT_TIMEOUT  # and it came: fn itself would sleep 60 s


@THREADED_FORK
def test_ctrl_c_stops_the_worker_and_is_reraised() -> None:
    """SIGINT to the caller while it waits: KeyboardInterrupt, and the worker is gone."""
    with handshake() as (r, w):
        thread = interrupt_after(r)
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            run_isolated(report_ready_and_sleep, w, grace=30)
        took = time.monotonic() - start
        thread.join()
    assert took < 30  # SIGTERM ended it: the 30 s grace period did not run out
    (pid,) = thread.pids
    assert pid not in child_pids()


@THREADED_FORK
def test_second_ctrl_c_skips_the_grace_period() -> None:
    """A worker carrying on after SIGTERM with a 60 s grace: the second Ctrl-C, sent once
    the grace period has begun, kills it at once."""
    with handshake() as (r, w):
        thread = interrupt_after(r, lambda pid: None, until_sigterm_reported(r))
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            run_isolated(sleep_reporting_term, w, grace=60)
        took = time.monotonic() - start
        thread.join()
    assert thread.errors == []
    assert took < 60  # the 60 s grace period did not run out


def test_worker_ignores_sigint() -> None:
    """A Ctrl-C at a terminal reaches the whole group: the worker carries on."""
    def fn() -> str:
        os.kill(os.getpid(), signal.SIGINT)
        return "still here"

    assert run_isolated(fn) == "still here"


# -- the worker's environment ------------------------------------------------------------------


PR_GET_PDEATHSIG = 2


def worker_setup() -> dict[str, object]:
    libc = ctypes.CDLL(None, use_errno=True)
    pdeathsig = ctypes.c_int(0)
    libc.prctl(PR_GET_PDEATHSIG, ctypes.byref(pdeathsig), 0, 0, 0)
    return {
        "SIGINT": signal.getsignal(signal.SIGINT),
        "SIGTERM": signal.getsignal(signal.SIGTERM),
        "SIGUSR1": signal.getsignal(signal.SIGUSR1),
        "pdeathsig": pdeathsig.value,
        "faulthandler": faulthandler.is_enabled(),
        "blocked": signal.pthread_sigmask(signal.SIG_BLOCK, []),
    }


def test_worker_resets_handlers_sets_pdeathsig_and_enables_faulthandler() -> None:
    """SIGINT ignored, the caller's handlers back to default, PDEATHSIG=SIGKILL."""
    previous = signal.signal(signal.SIGUSR1, lambda *_: None)
    try:
        setup = run_isolated(worker_setup)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert setup == {"SIGINT": signal.SIG_IGN, "SIGTERM": signal.SIG_DFL,
                     "SIGUSR1": signal.SIG_DFL, "pdeathsig": signal.SIGKILL,
                     "faulthandler": True, "blocked": set()}


def test_worker_has_the_callers_signal_mask() -> None:
    """Signals blocked around the fork are unblocked again on both sides; what the caller
    itself blocked stays blocked in the worker."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
    try:
        setup = run_isolated(worker_setup)
        assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == {signal.SIGUSR2}
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR2})
    assert setup["blocked"] == {signal.SIGUSR2}


CALLER_SCRIPT = """
import os, time
from pwsup.embedded.isolated import run_isolated

def fn():
    print(os.getpid(), flush=True)
    time.sleep(60)

run_isolated(fn)
"""


LOST = "status is unknown: something else in this process reaped it"


@pytest.mark.parametrize(("reaper", "crash_message"), [
    ("SIGCHLD ignored", LOST),  # the kernel reaps at once: the status is always lost
    ("waitpid(-1) loop", f"{LOST}|exited with code 3"),  # whichever waitpid comes first
])
def test_worker_reaped_by_someone_else(reaper: str, crash_message: str) -> None:
    """A caller that auto-reaps children (or runs its own reaper) still gets values back,
    and a crash without an exit status says why the status is missing."""
    if reaper == "SIGCHLD ignored":
        previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    else:
        previous = signal.signal(signal.SIGCHLD, lambda *_: reap_all())
    try:
        assert run_isolated(add, 1, 2) == 3
        with pytest.raises(WorkerCrashed, match=crash_message) as caught:
            run_isolated(os._exit, 3)
    finally:
        signal.signal(signal.SIGCHLD, previous)
    assert caught.value.signal is None


def reap_all() -> None:
    """What a supervisor's SIGCHLD handler does: reap every exited child, ours included."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def test_worker_dies_with_its_caller() -> None:
    """PR_SET_PDEATHSIG: a caller killed with SIGKILL (no cleanup at all) takes its worker
    along."""
    with subprocess.Popen([sys.executable, "-c", CALLER_SCRIPT], stdout=subprocess.PIPE,
                          text=True) as caller:
        assert caller.stdout is not None
        worker = procs.Proc.of(int(caller.stdout.readline()))
        assert worker.alive()
        caller.kill()
        caller.wait()
    assert procs.exits_within(worker, 10)


def test_worker_never_runs_atexit_handlers(tmp_path: Path) -> None:
    """Neither the caller's nor fn's own: the worker leaves through os._exit."""
    marker = tmp_path / "atexit-ran"

    def touch() -> None:
        marker.touch()

    atexit.register(touch)
    try:
        run_isolated(lambda: atexit.register(touch) and None)
    finally:
        atexit.unregister(touch)
    assert not marker.exists()


def test_called_from_a_thread() -> None:
    """A worker forked from a non-main thread works the same."""
    results: list[object] = []
    thread = threading.Thread(target=lambda: results.append(run_isolated(worker_setup)))
    thread.start()
    thread.join()
    assert results == [run_isolated(worker_setup)]


def test_nested_run_isolated_brings_errors_back_intact() -> None:
    """A WorkerCrashed raised in a worker pickles back to the outer caller."""
    with pytest.raises(WorkerCrashed, match="exited with code 9") as caught:
        run_isolated(run_isolated, os._exit, 9)
    assert caught.value.exitcode == 9


@pytest.mark.parametrize("error", [
    WorkerCrashed("m", pid=1, exitcode=None, signal=signal.SIGKILL),
    WorkerTimeout("m", timeout=1.5, pid=2),
    ResultNotPicklable("m", type_name="t", reason="r"),
    ExceptionNotPicklable("m", type_name="t", reason="r"),
    ResultNotUnpicklable("m", type_name="t", reason="r"),
    RemoteTraceback("Traceback ...\nValueError: x\n"),
], ids=lambda e: type(e).__name__)
def test_errors_pickle_with_their_fields(error: Exception) -> None:
    """Every error crosses a pipe unchanged (type, message, attributes)."""
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


def test_transfer_errors_are_isolation_errors() -> None:
    assert issubclass(ResultNotPicklable, TransferError)
    assert issubclass(WorkerTimeout, IsolationError)
    assert issubclass(WorkerTimeout, TimeoutError)


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"timeout": 0}, ValueError), ({"timeout": -1}, ValueError),
    ({"timeout": float("nan")}, ValueError), ({"retries": -1}, ValueError),
    ({"retries": 1.5}, ValueError), ({"retry_delay": -1}, ValueError),
    ({"grace": -1}, ValueError),
])
def test_bad_settings_are_rejected_before_forking(kwargs: dict[str, Any],
                                                  error: type[Exception]) -> None:
    with pytest.raises(error):
        run_isolated(int, **kwargs)


def test_non_callable_is_rejected() -> None:
    with pytest.raises(TypeError, match="needs a callable"):
        run_isolated(42)  # type: ignore[arg-type]


# -- status updates ----------------------------------------------------------------------------


def report_progress() -> str:
    for i in range(3):
        assert update_status(step=i, message=f"step {i}")
    return "done"


def test_status_updates_reach_on_status_in_order_before_the_value() -> None:
    """Each update_status() call, in order, in the caller's thread."""
    seen: list[tuple[dict[str, Any], int]] = []
    result = run_isolated(report_progress,
                          on_status=lambda f: seen.append((f, threading.get_ident())))
    assert result == "done"
    assert [f for f, _ in seen] == [{"step": i, "message": f"step {i}"} for i in range(3)]
    assert {ident for _, ident in seen} == {threading.get_ident()}


def test_status_updates_without_on_status_are_dropped() -> None:
    assert run_isolated(report_progress) == "done"


def test_update_status_outside_a_worker_is_a_no_op() -> None:
    assert update_status(step=1) is False


def test_many_status_updates_from_threads_stay_whole() -> None:
    """Frames from fn's threads never interleave."""
    def fn() -> int:
        def spam(n: int) -> None:
            for i in range(200):
                update_status(thread=n, i=i, pad="x" * 5000)

        threads = [threading.Thread(target=spam, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return 1

    seen: list[dict[str, Any]] = []
    assert run_isolated(fn, on_status=seen.append) == 1
    assert len(seen) == 800
    for n in range(4):
        assert [f["i"] for f in seen if f["thread"] == n] == list(range(200))


def test_on_status_raising_stops_the_worker_and_propagates() -> None:
    def fn() -> None:
        update_status(x=1)
        time.sleep(60)

    def on_status(fields: dict[str, Any]) -> None:
        raise LookupError("caller-side bug")

    start = time.monotonic()
    with pytest.raises(LookupError, match="caller-side bug"):
        run_isolated(fn, on_status=on_status, grace=30)
    assert time.monotonic() - start < 30  # stopped by SIGTERM, not after the 30 s grace


# -- platform ----------------------------------------------------------------------------------


def no_semlock(*args: object, **kwargs: object) -> NoReturn:
    raise OSError(errno.ENOSYS, "Function not implemented (no /dev/shm, as on AWS Lambda)")


def test_works_without_semaphores(monkeypatch: pytest.MonkeyPatch) -> None:
    """With SemLock failing and multiprocessing.synchronize unimportable, everything still
    works: values, exceptions, status updates, timeouts."""
    import _multiprocessing

    monkeypatch.setattr(_multiprocessing, "SemLock", no_semlock)
    monkeypatch.setitem(sys.modules, "multiprocessing.synchronize", None)
    with pytest.raises(ImportError):
        import multiprocessing.synchronize  # noqa: F401
    with pytest.raises(OSError, match="Function not implemented"):
        _multiprocessing.SemLock(1, 1, 1, "x", False)

    seen: list[dict[str, Any]] = []
    assert run_isolated(report_progress, on_status=seen.append) == "done"
    assert len(seen) == 3
    with pytest.raises(ValueError, match="x"):
        run_isolated(raise_value_error, "x")
    with pytest.raises(WorkerTimeout):
        run_isolated(time.sleep, 60, timeout=0.2)


def test_does_not_import_multiprocessing() -> None:
    """run_isolated never touches multiprocessing (checked in a fresh interpreter)."""
    code = ("import sys\n"
            "from pwsup.embedded.isolated import run_isolated\n"
            "assert run_isolated(lambda: 42) == 42\n"
            "print(sorted(m for m in sys.modules if 'multiprocessing' in m))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("fn", ["value", "crash", "timeout"])
def test_works_without_pidfd(monkeypatch: pytest.MonkeyPatch, fn: str) -> None:
    """Where pidfd_open is unavailable, pipe EOF and waitpid do the job."""
    monkeypatch.setattr(handle, "pidfd_open", lambda pid: None)
    if fn == "value":
        assert run_isolated(add, 2, 3) == 5
    elif fn == "crash":
        with pytest.raises(WorkerCrashed, match="SIGKILL"):
            run_isolated(lambda: os.kill(os.getpid(), signal.SIGKILL))
    else:
        start = time.monotonic()
        with pytest.raises(WorkerTimeout, match="SIGKILL"):
            run_isolated(sleep_ignoring_term, timeout=0.3, grace=0.3)
        took = time.monotonic() - start
        assert took >= 0.3 + 0.3  # SIGKILL only once timeout and grace period have passed
        assert took < EVENT_TIMEOUT  # and it came: fn itself would sleep 60 s


def test_many_calls_leave_nothing_behind() -> None:
    """Fifty mixed calls; the autouse fixture checks fds and children afterwards."""
    for i in range(50):
        if i % 3 == 0:
            assert run_isolated(add, i) == i
        elif i % 3 == 1:
            with pytest.raises(ValueError, match="x"):
                run_isolated(raise_value_error, "x")
        else:
            with pytest.raises(WorkerCrashed):
                run_isolated(os._exit, 1)
