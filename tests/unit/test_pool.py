"""IsolatedPool: values and exceptions come back, a crash or a timeout fails only its own
task, workers are recycled, nothing is left behind (every test checks fds, child processes
and threads), no /dev/shm and no multiprocessing.

Tasks are module-level functions (they are pickled by name). A task reports to the test
through a pipe created before the pool, so every worker inherits it: the test waits on
the pipe, never on the clock.
"""

from __future__ import annotations

import concurrent.futures
import gc
import os
import select
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import wait
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import psutil
import pytest

from helpers import procs
from helpers.bounds import EVENT_TIMEOUT, SLACK
from helpers.embedded import nothing_left_behind
from pwsup.embedded.pool import IsolatedPool, PoolFuture
from pwsup.errors import (
    ArgumentsNotPicklable,
    ExceptionNotPicklable,
    RemoteTraceback,
    ResultNotPicklable,
    WorkerCrashed,
    WorkerTimeout,
)
from pwsup.util.usage import Usage

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

SRC = Path(__file__).resolve().parents[2] / "src"


# -- fixtures and helpers ----------------------------------------------------------------------


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def child_pids() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest.fixture(autouse=True)
def _nothing_left_behind() -> Iterator[None]:
    with nothing_left_behind():
        yield


@contextmanager
def channel() -> Iterator[tuple[int, int]]:
    """A pipe for tasks to report on: create it before the pool, so workers inherit it."""
    r, w = os.pipe()
    try:
        yield r, w
    finally:
        os.close(r)
        os.close(w)


def read_ints(fd: int, count: int) -> list[int]:
    """`count` whitespace-separated numbers from `fd`, waiting for each with select."""
    data = b""
    deadline = time.monotonic() + EVENT_TIMEOUT
    while len(data.split()) < count or not data.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"no report within {EVENT_TIMEOUT:g} s (have {data!r})"
        data += os.read(fd, 4096)
    return [int(x) for x in data.split()]


def say(fd: int, *numbers: int) -> None:
    os.write(fd, (" ".join(map(str, numbers)) + "\n").encode())


def add(a: int, b: int = 0, *, c: int = 0) -> int:
    return a + b + c


def echo_kwargs(**kwargs: Any) -> dict[str, Any]:
    return kwargs


def pid() -> int:
    return os.getpid()


def raise_value_error(message: str) -> NoReturn:
    raise ValueError(message)


def kill_myself() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def report_and_sleep(fd: int) -> None:
    say(fd, os.getpid())
    time.sleep(60)


def ignore_term_and_sleep(fd: int) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    say(fd, os.getpid())
    time.sleep(60)


def start_children_and_sleep(fd: int) -> None:
    """A child in the worker's group, a setsid'd one (another session and group), then
    report all three pids and never return."""
    stay = subprocess.Popen(["sleep", "60"])
    away = subprocess.Popen(["sleep", "60"], start_new_session=True)
    say(fd, os.getpid(), stay.pid, away.pid)
    time.sleep(60)


def start_daemon(fd: int) -> int:
    """Leave a setsid'd sleeper running and return: it belongs to the worker now."""
    away = subprocess.Popen(["sleep", "60"], start_new_session=True)
    say(fd, away.pid)
    return os.getpid()


def wait_for_byte(fd: int) -> int:
    os.read(fd, 1)
    return os.getpid()


_hoard: list[bytes] = []


def hoard(megabytes: int) -> int:
    """Keep `megabytes` of touched memory in the worker after returning."""
    _hoard.append(b"x" * (megabytes << 20))
    return os.getpid()


_initialized: list[str] = []


def remember(value: str) -> None:
    _initialized.append(value)


def initialized() -> list[str]:
    return _initialized


def burn(seconds: float) -> int:
    end = time.process_time() + seconds
    n = 0
    while time.process_time() < end:
        n += 1
    return n


class NeedsTwoArguments(Exception):
    def __init__(self, a: str, b: str) -> None:
        super().__init__(f"{a} {b}")


def raise_needs_two() -> NoReturn:
    raise NeedsTwoArguments("a", "b")


def return_lock() -> threading.Lock:
    return threading.Lock()


def gone(pids: list[int], timeout: float = EVENT_TIMEOUT) -> None:
    procs.wait_for_exit([procs.Proc.of(p) for p in pids], timeout)


# -- values and exceptions ---------------------------------------------------------------------


def test_values_come_back_with_args_and_kwargs() -> None:
    with IsolatedPool(2) as pool:
        future = pool.submit(add, 1, 2, c=3)
        assert isinstance(future, PoolFuture)
        assert future.result(EVENT_TIMEOUT) == 6
        assert list(pool.map(add, range(20), range(20))) == [2 * i for i in range(20)]


def test_every_keyword_goes_to_fn_even_timeout() -> None:
    """submit() reserves no keyword name; submit_with() takes fn's arguments as values."""
    with IsolatedPool(1, timeout=30) as pool:
        assert pool.submit(echo_kwargs, timeout=1, fn=2).result() == {"timeout": 1, "fn": 2}
        assert pool.submit_with(echo_kwargs, (), {"timeout": 3}, timeout=30).result() == {
            "timeout": 3}


def test_exception_comes_back_with_the_worker_traceback_as_cause() -> None:
    with IsolatedPool(1) as pool, pytest.raises(ValueError, match=r"^bad input$") as caught:
        pool.submit(raise_value_error, "bad input").result()
    cause = caught.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "in raise_value_error" in str(cause)


def test_outcomes_that_do_not_pickle_are_named() -> None:
    with IsolatedPool(1) as pool:
        with pytest.raises(ResultNotPicklable, match=r"_thread\.lock"):
            pool.submit(return_lock).result()
        with pytest.raises(ExceptionNotPicklable, match="NeedsTwoArguments"):
            pool.submit(raise_needs_two).result()
        assert pool.submit(add, 1).result() == 1


def test_arguments_that_do_not_pickle_fail_only_their_future() -> None:
    """Named at once, in the caller; the other tasks run."""
    with IsolatedPool(1) as pool:
        good = pool.submit(add, 1, 2)
        bad = pool.submit(add, threading.Lock())
        lam = pool.submit(lambda: 1)
        kw = pool.submit(echo_kwargs, x=threading.Lock())
        with pytest.raises(ArgumentsNotPicklable, match=r"^argument 0 \(_thread.lock\)"):
            bad.result(0)
        with pytest.raises(ArgumentsNotPicklable, match=r"^fn \(function\)"):
            lam.result(0)
        with pytest.raises(ArgumentsNotPicklable, match=r"^keyword argument 'x'"):
            kw.result(0)
        assert good.result() == 3


def test_sys_exit_in_a_task_is_a_crash_of_that_task_only() -> None:
    with IsolatedPool(1) as pool:
        with pytest.raises(WorkerCrashed, match="exited with code 4") as caught:
            pool.submit(sys.exit, 4).result()
        assert caught.value.exitcode == 4
        assert pool.submit(add, 5).result() == 5


def test_usage_of_each_task() -> None:
    with IsolatedPool(1) as pool:
        future = pool.submit(burn, 0.05)
        future.result()
        usage = future.usage
    assert isinstance(usage, Usage)
    assert usage.user_seconds + usage.system_seconds >= 0.05
    assert usage.wall_seconds >= 0.05
    assert usage.max_rss_bytes > 0


# -- crashes and timeouts ----------------------------------------------------------------------


def test_a_worker_killed_mid_task_fails_only_that_task() -> None:
    """The task SIGKILLs its own worker; the tasks around it succeed, on other workers."""
    with IsolatedPool(2) as pool:
        futures = [pool.submit(add, i) for i in range(10)]
        doomed = pool.submit(kill_myself)
        futures += [pool.submit(add, i) for i in range(10, 20)]
        with pytest.raises(WorkerCrashed, match="killed by SIGKILL") as caught:
            doomed.result(EVENT_TIMEOUT)
        assert caught.value.signal == signal.SIGKILL
        assert [f.result(EVENT_TIMEOUT) for f in futures] == list(range(20))
        assert doomed.usage is None


def test_tasks_held_ahead_by_a_dying_worker_run_elsewhere() -> None:
    """One worker, a backlog: it holds the next task ahead while the first kills it; that
    task never started, so it runs on the replacement and succeeds."""
    with IsolatedPool(1) as pool:
        doomed = pool.submit(kill_myself)
        after = [pool.submit(add, i) for i in range(5)]
        with pytest.raises(WorkerCrashed):
            doomed.result(EVENT_TIMEOUT)
        assert [f.result(EVENT_TIMEOUT) for f in after] == list(range(5))


def test_a_worker_killed_from_outside_is_replaced() -> None:
    with channel() as (r, w), IsolatedPool(1) as pool:
        running = pool.submit(report_and_sleep, w)
        [worker] = read_ints(r, 1)
        os.kill(worker, signal.SIGKILL)
        with pytest.raises(WorkerCrashed, match=f"pid {worker}.*SIGKILL"):
            running.result(EVENT_TIMEOUT)
        assert pool.submit(pid).result(EVENT_TIMEOUT) != worker


def test_timeout_stops_the_task_its_children_and_a_setsid_daemon() -> None:
    """WorkerTimeout once the worker is reaped and everything it started is gone."""
    with channel() as (r, w), IsolatedPool(1, timeout=0.5, grace=30) as pool:
        future = pool.submit(start_children_and_sleep, w)
        worker, stay, away = read_ints(r, 3)
        with pytest.raises(WorkerTimeout, match=r"within its 0\.5 s timeout.*SIGTERM$"):
            future.result(EVENT_TIMEOUT)
        gone([worker, stay, away], timeout=SLACK)  # SIGTERM did it: no 30 s grace
        assert pool.submit(pid).result(EVENT_TIMEOUT) != worker


def test_timeout_escalates_to_sigkill_after_the_grace_period() -> None:
    with channel() as (r, w), IsolatedPool(1, timeout=0.3, grace=0.5) as pool:
        start = time.monotonic()
        future = pool.submit(ignore_term_and_sleep, w)
        [worker] = read_ints(r, 1)
        with pytest.raises(WorkerTimeout, match=r"SIGKILL.*after the 0\.5 s grace period"):
            future.result(EVENT_TIMEOUT)
        assert time.monotonic() - start >= 0.3 + 0.5
        assert not procs.alive(worker)


def test_per_call_timeout_and_other_tasks_unaffected() -> None:
    """submit_with's timeout applies to that call only; a task on another worker runs on."""
    with channel() as (r, w), IsolatedPool(2) as pool:
        slow = pool.submit(wait_for_byte, r)
        hung = pool.submit_with(report_and_sleep, (w,), timeout=0.3, )
        with pytest.raises(WorkerTimeout):
            hung.result(EVENT_TIMEOUT)
        os.write(w, b"go")
        assert isinstance(slow.result(EVENT_TIMEOUT), int)


def test_a_thread_waiting_for_a_result_sleeps_after_a_brief_spin() -> None:
    """result() polls the reply pipe for SPIN (50 µs) before it sleeps: waiting half a second
    for a task costs the waiting thread milliseconds of CPU time, not the half second."""
    with channel() as (r, w), IsolatedPool(1) as pool:
        pool.submit(pid).result(EVENT_TIMEOUT)  # a warm worker, so the task goes straight to it
        future = pool.submit(wait_for_byte, r)
        used: list[float] = []

        def wait() -> None:
            start = time.thread_time()
            future.result(EVENT_TIMEOUT)
            used.append(time.thread_time() - start)

        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(0.5)  # the scenario: a task that takes half a second
        os.write(w, b"x")
        waiter.join(EVENT_TIMEOUT)
        assert len(used) == 1
        assert used[0] < 0.1


def test_result_exception_and_map_wait_their_timeout_once() -> None:
    """result(timeout=T), exception(timeout=T) and map(..., timeout=T) on tasks running in
    workers raise TimeoutError after T: at least T, and well before 2T, which they took
    when the wait on the reply pipe and the stdlib's wait each had the whole T. T is SLACK,
    so a busy machine has 0.9 T to spare."""
    limit = SLACK
    with channel() as (report_r, report_w), channel() as (release_r, release_w), \
            IsolatedPool(3) as pool:
        running = [pool.submit(report_and_wait, release_r, report_w) for _ in range(3)]
        read_ints(report_r, 3)  # each on a worker of its own, so result() waits on its pipe
        os.write(release_w, b"x")
        done, _ = concurrent.futures.wait(running, EVENT_TIMEOUT,
                                           concurrent.futures.FIRST_COMPLETED)
        assert len(done) == 1
        waiting = [f for f in running if f not in done]
        map_called = time.monotonic()  # map's T counts from here
        mapped = pool.map(report_and_wait, [release_r], [report_w], timeout=limit)
        read_ints(report_r, 1)  # on the idle worker
        elapsed: dict[str, float] = {}

        def timed(name: str, wait: Callable[[], object]) -> None:
            start = map_called if name == "map" else time.monotonic()
            with pytest.raises(TimeoutError):
                wait()
            elapsed[name] = time.monotonic() - start

        waiters = [threading.Thread(target=timed, args=args) for args in (
            ("result", lambda: waiting[0].result(timeout=limit)),
            ("exception", lambda: waiting[1].exception(timeout=limit)),
            ("map", lambda: list(mapped)))]
        for waiter in waiters:
            waiter.start()
        for waiter in waiters:
            waiter.join(EVENT_TIMEOUT)
        os.write(release_w, b"xyz")  # the three tasks end
        assert sorted(elapsed) == ["exception", "map", "result"]
        for name, seconds in elapsed.items():
            assert limit <= seconds < 1.9 * limit, (name, seconds)


# -- recycling ---------------------------------------------------------------------------------


def test_max_tasks_per_worker_recycles() -> None:
    with IsolatedPool(1, max_tasks_per_worker=2) as pool:
        pids = [pool.submit(pid).result(EVENT_TIMEOUT) for _ in range(6)]
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4] == pids[5]
    assert len(set(pids)) == 3


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_memory_limit_recycles_a_worker_that_grew() -> None:
    """A worker's resident set starts at the caller's (fork): the limit is 30 MiB above
    that. 60 MiB kept after a task: the next task has a new worker. Tasks that keep
    nothing stay on one worker."""
    with IsolatedPool(1) as probe:
        start = probe.submit(rss).result(EVENT_TIMEOUT)
    with IsolatedPool(1, memory_limit=start + (30 << 20)) as pool:
        quiet = {pool.submit(pid).result(EVENT_TIMEOUT) for _ in range(5)}
        grown = pool.submit(hoard, 60).result(EVENT_TIMEOUT)
        after = pool.submit(pid).result(EVENT_TIMEOUT)
    assert quiet == {grown}
    assert after != grown


@pytest.mark.slow
@pytest.mark.parametrize(("max_tasks", "memory_limit"), [(1, None), (None, 1)],
                         ids=["max-tasks", "memory-limit"])
def test_workers_recycled_after_every_task_never_lose_one(max_tasks: int | None,
                                                          memory_limit: int | None) -> None:
    """Every task retires its worker, so workers are forked while others end (in their
    own threads) or retire (in the thread waiting for a result): a new worker must never
    close its own pipes because an ended worker's descriptor had the same number. Before
    that was so, 8 to 17 of these 1,500 tasks failed with WorkerCrashed (exit 70, EBADF
    in the worker), every run."""
    with IsolatedPool(2, max_tasks_per_worker=max_tasks, memory_limit=memory_limit) as pool:
        futures = [pool.submit(abs, -i) for i in range(1500)]
        failed = [f.exception(EVENT_TIMEOUT) for f in futures]
    assert [e for e in failed if e is not None] == []
    assert [f.result(0) for f in futures] == list(range(1500))


def test_initializer_runs_once_per_worker() -> None:
    with IsolatedPool(1, max_tasks_per_worker=2, initializer=remember,
                      initargs=("ready",)) as pool:
        assert [pool.submit(initialized).result() for _ in range(3)] == [["ready"]] * 3


def test_a_failing_initializer_fails_each_task_with_its_exception() -> None:
    with IsolatedPool(1, initializer=raise_value_error, initargs=("no config",)) as pool:
        for _ in range(2):
            with pytest.raises(ValueError, match="no config") as caught:
                pool.submit(add, 1).result(EVENT_TIMEOUT)
            assert "in raise_value_error" in str(caught.value.__cause__)


# -- shutdown and what is left -----------------------------------------------------------------


def test_shutdown_ends_the_workers_and_what_their_tasks_left() -> None:
    with channel() as (r, w):
        pool = IsolatedPool(2)
        workers = [pool.submit(start_daemon, w).result(EVENT_TIMEOUT) for _ in range(2)]
        daemons = read_ints(r, 2)
        assert all(procs.alive(p) for p in daemons)
        pool.shutdown()
        for p in [*workers, *daemons]:
            assert not procs.alive(p)


def test_shutdown_waits_for_running_and_queued_tasks() -> None:
    with channel() as (r, w):
        pool = IsolatedPool(1)
        first = pool.submit(wait_for_byte, r)
        queued = [pool.submit(add, i) for i in range(3)]
        threading.Timer(0.1, os.write, (w, b"x")).start()
        pool.shutdown(wait=True)
        assert first.done()
        assert [f.result(0) for f in queued] == [0, 1, 2]


def test_shutdown_cancel_futures() -> None:
    with channel() as (r, w), channel() as (go_r, go_w):
        pool = IsolatedPool(1)
        first = pool.submit(report_and_wait, go_r, w)
        read_ints(r, 1)  # running, so not cancellable
        queued = [pool.submit(add, i) for i in range(5)]
        pool.shutdown(wait=False, cancel_futures=True)
        # The first may have been handed to the busy worker ahead (then RUNNING).
        assert all(f.cancelled() for f in queued[1:])
        with pytest.raises(RuntimeError, match="after shutdown"):
            pool.submit(add, 1)
        os.write(go_w, b"x")
        assert isinstance(first.result(EVENT_TIMEOUT), int)
        assert queued[0].cancelled() or queued[0].result(EVENT_TIMEOUT) == 0
        pool.shutdown(wait=True)


def report_and_wait(r: int, w: int) -> int:
    """Report on `w`, then wait for a byte on `r` (another pipe: a byte read from the
    report's own pipe could be the report's)."""
    say(w, os.getpid())
    os.read(r, 1)
    return os.getpid()


def test_a_garbage_collected_pool_ends_its_workers() -> None:
    with channel() as (r, w):
        pool = IsolatedPool(2)
        workers = [pool.submit(start_daemon, w).result(EVENT_TIMEOUT) for _ in range(2)]
        daemons = read_ints(r, 2)
        thread = pool._manager.thread
        del pool
        gc.collect()
        assert thread is not None
        thread.join(EVENT_TIMEOUT)
        assert not thread.is_alive()
        for p in [*workers, *daemons]:
            assert not procs.alive(p)


class ManagerBug(Exception):
    """Stands for a bug in the manager thread."""


def fail_in_the_manager() -> NoReturn:
    raise ManagerBug("a bug in the manager thread")


def test_a_broken_pool_fails_what_it_holds_and_leaves_no_descriptor(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The manager thread itself fails (a bug, made here by its deadline check raising):
    the running task and the queued one fail with that error, the worker ends, submit()
    says the pool is broken, and after shutdown() none of the pool's descriptors (not
    the worker's eventfd either) is left open. Waiting goes through the stdlib, so no
    waiting thread watches the worker and closes its eventfd instead."""
    with channel() as (r, w), channel() as (go_r, _go_w):
        fds = open_fds()
        pool = IsolatedPool(1)
        running = pool.submit(report_and_wait, go_r, w)
        worker = read_ints(r, 1)[0]  # running, and it cannot answer: nothing reaches go_r
        monkeypatch.setattr(pool._manager, "_check_deadlines", fail_in_the_manager)
        queued = pool.submit(add, 1)  # wakes the manager, which fails
        done, _ = wait([running, queued], timeout=EVENT_TIMEOUT)
        assert done == {running, queued}
        assert all(isinstance(f.exception(0), ManagerBug) for f in done)
        with pytest.raises(RuntimeError, match="broken"):
            pool.submit(add, 2)
        pool.shutdown()
        gone([worker])
        assert open_fds() - fds == set()


EXIT_SCRIPT = """
import os, subprocess, sys, time
sys.path.insert(0, {tests!r})
from unit.test_pool import start_daemon
from pwsup import IsolatedPool

r, w = os.pipe()
pool = IsolatedPool(2)
worker = pool.submit(start_daemon, w).result(30)
os.read(r, 64)
print("ready", flush=True)
sys.stdin.read()
{ending}
"""


@pytest.mark.parametrize("ending", ["", "del pool", "pool.submit(time.sleep, 0.2)"],
                         ids=["open", "collected", "task-queued"])
def test_interpreter_exit_without_shutdown_leaves_nothing(ending: str) -> None:
    """The script leaves a daemon behind in a task and exits without shutdown(); every
    process it started (its process tree while it runs) is gone once it has exited."""
    tests = str(Path(__file__).resolve().parents[1])
    code = EXIT_SCRIPT.format(tests=tests, ending=ending)
    with subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True,
                          env={**os.environ, "PYTHONPATH": str(SRC)}) as script:
        try:
            assert script.stdout is not None
            assert script.stdin is not None
            assert script.stdout.readline() == "ready\n"
            started = [procs.Proc.of(p) for p in procs.pid_tree(script.pid)]
            assert len(started) >= 2  # a worker and the daemon
            script.stdin.close()
            assert script.wait(EVENT_TIMEOUT) == 0
            procs.wait_for_exit(started, EVENT_TIMEOUT)
        finally:
            procs.kill_tree(script.pid)


def test_a_forked_child_does_not_own_the_pool() -> None:
    """In a child the caller forks, submit() raises and shutdown() leaves the workers be;
    the caller's pool works on."""
    with IsolatedPool(1) as pool:
        worker = pool.submit(pid).result(EVENT_TIMEOUT)
        child = os.fork()
        if child == 0:
            code = 1
            try:
                try:
                    pool.submit(pid)
                except RuntimeError as e:
                    code = 0 if "forked copy" in str(e) else 2
                pool.shutdown()
            finally:
                os._exit(code)
        assert os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 0
        assert pool.submit(pid).result(EVENT_TIMEOUT) == worker


# -- platform ----------------------------------------------------------------------------------

SHM_SCRIPT = """
import os, sys
from pwsup import IsolatedPool
def add(a, b):
    return a + b
with IsolatedPool(2, timeout=30) as pool:
    assert list(pool.map(add, range(100), range(100))) == [2 * i for i in range(100)]
print(sorted(os.listdir("/dev/shm")), sorted(m for m in sys.modules if "multiprocessing" in m))
"""


def test_no_dev_shm_and_no_multiprocessing() -> None:
    """In a mount namespace of its own with an empty /dev/shm (so nothing else on the
    machine writes there), a pool runs 100 tasks: /dev/shm is still empty, and neither
    multiprocessing nor _multiprocessing was imported."""
    shell = ('mount -t tmpfs -o size=1m tmpfs /dev/shm && exec "$0" -c "$1"')
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                             shell, sys.executable, SHM_SCRIPT], capture_output=True,
                            text=True, timeout=60, check=False,
                            env={**os.environ, "PYTHONPATH": str(SRC)})
    if result.returncode != 0 and "Traceback" not in result.stderr:
        pytest.skip(f"no private mount namespace here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] []"


def test_bad_settings_are_rejected() -> None:
    for name, value in (("max_workers", 0), ("timeout", 0), ("grace", -1),
                        ("max_tasks_per_worker", 0), ("memory_limit", 0)):
        with pytest.raises(ValueError, match=f"^{name} must be"):
            IsolatedPool(**{name: value})
    with pytest.raises(TypeError):
        IsolatedPool(initializer=3)  # type: ignore[arg-type]
