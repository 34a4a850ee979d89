"""Embedded-mode tests' shared parts: a fake server whose embedded reporter is closed after
the test, the environment without pwsup's variables, and wrapper settings that report to
that server."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from helpers.fake_cloudreactor import FakeCloudReactor

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pwsup.compat import ProcWrapperParams


@contextmanager
def reported_to(task: str) -> Iterator[FakeCloudReactor]:
    """A fake server knowing `task`; afterwards the caller's embedded reporter (one per
    caller process) is closed, so the next test starts a new one."""
    with FakeCloudReactor() as server:
        server.create_task(task)
        yield server
    from pwsup.embedded import monitor as embedded_monitor

    if embedded_monitor._current is not None:  # the reporter ends when its pipe closes
        embedded_monitor._current.close()
        embedded_monitor._current = None


def bare_env() -> dict[str, str]:
    """os.environ without PROC_WRAPPER_*/PWSUP_* variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PROC_WRAPPER_", "PWSUP_"))}


def online_params(api: FakeCloudReactor, task: str, **settings: Any) -> ProcWrapperParams:
    """Wrapper settings reporting `task` to `api`, no retry delay, then `settings`."""
    from pwsup.compat import ProcWrapperParams

    params = ProcWrapperParams(env=bare_env())
    params.task_name = task
    params.api_base_url = api.base_url
    params.api_key = api.api_key
    params.process_retry_delay = 0
    for name, value in settings.items():
        setattr(params, name, value)
    return params


@contextmanager
def nothing_left_behind() -> Iterator[None]:
    """Around a test: no new file descriptor, child process (not even a zombie) or thread
    after it. run_isolated's keeper (one per caller, for its whole life) is started first:
    it is no leftover. Threads older than the test may end meanwhile."""
    import gc
    import threading

    import psutil

    from helpers import procs

    def children() -> set[int]:
        return {p.pid for p in psutil.Process().children(recursive=True)}

    procs.keeper_started()
    fds, before, threads = set(os.listdir("/proc/self/fd")), children(), set(threading.enumerate())
    yield
    gc.collect()
    assert children() - before == set()
    assert set(os.listdir("/proc/self/fd")) - fds == set()
    assert set(threading.enumerate()) - threads == set()


def sleeps_in_poll(native_id: int) -> bool:
    """Whether this process's thread `native_id` sleeps in poll() or select() (its wchan):
    the event a test awaits before it acts on a thread that must already be waiting."""
    with open(f"/proc/self/task/{native_id}/wchan") as f:
        return "poll" in f.read()
