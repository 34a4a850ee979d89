"""HeldInterrupt: a Ctrl-C in a block that holds descriptors briefly is acted on after it.

A second Ctrl-C while run_isolated stops a worker used to land, now and then, between the
opening of a descriptor (a /proc file, a pidfd) and the code that closes or records it:
the descriptor leaked. The block holds the interrupt back and raises it at its end.
"""

from __future__ import annotations

import os
import signal
import threading

import pytest

from pwsup.supervisor.sweep import Sweep
from pwsup.util.rawsignal import HeldInterrupt


def test_a_ctrl_c_in_the_block_is_raised_at_its_end() -> None:
    reached_end: list[bool] = []

    def block() -> None:
        with HeldInterrupt():
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # bytecodes enough for Python to run the handler
                pass
            reached_end.append(True)

    with pytest.raises(KeyboardInterrupt):
        block()
    assert reached_end == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_without_a_ctrl_c_nothing_happens() -> None:
    with HeldInterrupt() as held:
        pass
    assert not held.came
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_sigint_stays_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with HeldInterrupt():
            os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_outside_the_main_thread_it_changes_nothing() -> None:
    seen: list[object] = []

    def run() -> None:
        with HeldInterrupt() as held:
            seen.append(held.previous)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == [None]


def test_a_sweep_s_scan_leaves_no_descriptor_when_interrupted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The Ctrl-C comes while the scan holds a freshly opened descriptor: it is raised
    only once the descriptor is recorded, and closing the sweep leaves none open."""
    from pwsup.supervisor import procs

    child = os.fork()
    if child == 0:
        os.setpgid(0, 0)
        signal.pause()
        os._exit(0)
    os.setpgid(child, child)
    real_open = procs.pidfd_open

    def open_then_interrupt(pid: int) -> int | None:
        fd = real_open(pid)
        os.kill(os.getpid(), signal.SIGINT)  # between the open and the recording
        for _ in range(1000):
            pass
        return fd

    monkeypatch.setattr(procs, "pidfd_open", open_then_interrupt)
    before = set(os.listdir("/proc/self/fd"))
    sweep = Sweep(group=child, cookie=None)
    try:
        with pytest.raises(KeyboardInterrupt):
            sweep.signal(0)
        assert list(sweep.tracked) == [child]
    finally:
        sweep.close()
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
    assert set(os.listdir("/proc/self/fd")) - before == set()
