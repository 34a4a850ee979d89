"""The command starts with the signal state pwsup was given: mask and ignored signals."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

import pytest

from helpers.runner import print_signals_cmd, pwsup_cmd, python_cmd, run

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from helpers.runner import Running

RESET_BY_DESIGN = frozenset({signal.SIGPIPE, signal.SIGXFSZ})
SETTABLE = frozenset(int(s) for s in signal.valid_signals())
"""What the launcher can set. Not the two real-time signals libc reserves for itself (32,
33): a process cannot change them, and a Python 3.13 started by Python 3.13's
`subprocess` (as the launcher is, under pytest) has them ignored from its first
instruction, so everything below it inherits that, whatever pwsup does."""
"""Python ignores these at start-up (so a Python launcher passes them on ignored); pwsup
resets them to the default for the command, like `subprocess` does."""

LAUNCHER = """
    import os, signal, sys
    blocked, ignored = ({int(n) for n in arg.split(",") if n} for arg in sys.argv[1:3])
    for signum in signal.valid_signals():
        try:  # whatever the test process inherited (e.g. INT/QUIT ignored under `&`): gone
            signal.signal(signum, signal.SIG_IGN if signum in ignored else signal.SIG_DFL)
        except (OSError, ValueError):
            pass  # SIGKILL, SIGSTOP and the signals libc reserves
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    os.execv(sys.argv[3], sys.argv[3:])
    """
"""Starts pwsup (argv[3:]) with exactly the signals of argv[1] blocked and exactly those of
argv[2] ignored (every other disposition at its default)."""

SHOW_SIGNAL_STATE = """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("SigBlk:", "SigIgn:")):
                print(line, end="")
    """


def launcher_cmd(blocked: Iterable[int], ignored: Iterable[int], *argv: str) -> list[str]:
    def numbers(signals: Iterable[int]) -> str:
        return ",".join(str(int(s)) for s in signals)

    return python_cmd(LAUNCHER, numbers(blocked), numbers(ignored), *argv)


def signal_sets(status_lines: str) -> dict[str, set[int]]:
    """{"SigBlk": {...}, "SigIgn": {...}} decoded from /proc/<pid>/status hex masks."""
    sets = {}
    for line in status_lines.splitlines():
        key, _, mask = line.partition(":")
        bits = int(mask.strip(), 16)
        sets[key] = {n + 1 for n in range(bits.bit_length()) if bits >> n & 1}
    return sets


SIGNAL_STATES = {
    "nothing blocked or ignored": (set(), set()),
    "like a background job under nohup": (
        {signal.SIGUSR1, signal.SIGTERM, signal.SIGALRM, signal.SIGCHLD,
         signal.SIGRTMIN + 2},
        {signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR2, signal.SIGTSTP}),
    "forwarded signals blocked, others ignored": (
        {signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR2, signal.SIGWINCH},
        {signal.SIGTERM, signal.SIGALRM, signal.SIGTTIN}),
}


@pytest.mark.parametrize(("blocked", "ignored"), list(SIGNAL_STATES.values()),
                         ids=list(SIGNAL_STATES))
def test_command_starts_with_the_signal_mask_and_ignored_signals_pwsup_was_given(
        env: dict[str, str], blocked: set[int], ignored: set[int]) -> None:
    """The command's SigBlk/SigIgn are what pwsup's launcher blocked/ignored."""
    result = run(launcher_cmd(blocked, ignored,
                              *pwsup_cmd(python_cmd(SHOW_SIGNAL_STATE))), env)
    assert result.returncode == 0, result
    state = signal_sets(result.stdout)
    assert state["SigBlk"] == {int(s) for s in blocked}, result
    assert state["SigIgn"] & SETTABLE - RESET_BY_DESIGN == {int(s) for s in ignored}, result


def test_the_signal_state_is_kept_across_secret_resolution(env: dict[str, str]) -> None:
    """With secrets to resolve first (a resolver process, SIGINT's and SIGCHLD's handling
    changed meanwhile), an ignored SIGINT and SIGCHLD still reach the command ignored, and
    an ignored SIGCHLD does not cost pwsup its resolver's answer (it reaps it itself)."""
    blocked = {signal.SIGUSR1}
    ignored = {signal.SIGINT, signal.SIGQUIT, signal.SIGCHLD}
    show = python_cmd(SHOW_SIGNAL_STATE + """
    import os
    print(os.environ["RESOLVED"])
    """)
    result = run(launcher_cmd(blocked, ignored, *pwsup_cmd(show)),
                 {**env, "RESOLVED_FOR_PROC_WRAPPER_TO_RESOLVE": "PLAIN:yes"})
    assert result.returncode == 0, result
    assert "Traceback" not in result.stderr, result
    assert result.stdout.splitlines()[-1] == "yes", result
    state = signal_sets("\n".join(result.stdout.splitlines()[:-1]))
    assert state["SigBlk"] == {int(s) for s in blocked}, result
    assert state["SigIgn"] & SETTABLE - RESET_BY_DESIGN == {int(s) for s in ignored}, result


def test_sigpipe_and_sigxfsz_are_reset_to_default_for_the_command(env: dict[str, str]) -> None:
    """Ignored SIGPIPE/SIGXFSZ (as any Python launcher passes them on) are not inherited."""
    blocked: set[int] = set()
    ignored = {signal.SIGUSR2}
    result = run(launcher_cmd(blocked, ignored,
                              *pwsup_cmd(["cat", "/proc/self/status"])), env)
    assert result.returncode == 0, result
    status = "\n".join(line for line in result.stdout.splitlines()
                       if line.startswith(("SigBlk:", "SigIgn:")))
    state = signal_sets(status)
    assert state["SigIgn"] & SETTABLE == {signal.SIGUSR2}, result
    assert state["SigBlk"] == set(), result


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1, signal.SIGINT],
                         ids=lambda s: s.name)
def test_signal_blocked_by_the_launcher_is_still_forwarded(
        start: Callable[..., Running], signum: signal.Signals) -> None:
    """A signal blocked by whoever started pwsup is still forwarded to the command."""
    # pwsup unblocks the signals it handles for itself only: the command inherits the mask
    # with them blocked, so print_signals unblocks them itself (--unblock).
    pwsup = start(launcher_cmd({signal.SIGTERM, signal.SIGUSR1, signal.SIGINT}, set(),
                               *pwsup_cmd(print_signals_cmd("--unblock",
                                                            "--exit-on", f"{signum.name}=0"))))
    pwsup.expect_ready()
    pwsup.signal(signum)  # the launcher exec'd pwsup: same pid
    assert pwsup.read_line() == signum.name, pwsup.describe()
    assert pwsup.wait() == 0, pwsup.describe()
