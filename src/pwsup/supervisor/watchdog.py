"""The offline watchdog: the reporter process reduced to what an unreported run needs of it.

With nothing to report, the reporter's one duty is to outlive a SIGKILLed (or OOM-killed)
parent and end the run's processes: the command's group and every holder of the run's
cookie. That duty needs no API client, no logging module and no message classes, and in a
forked process every module imported, every object created, costs private memory the
parent's copy no longer shares. So offline (and outside ECS sidecar mode, whose reporter
polls the task metadata) the parent forks this loop instead of `reporter.Reporter`: it
blocks on the pipe, learns a retry's new process group from the messages (only then are
the message classes imported), and at EOF before a `Finish` ends what is left, the same
way the reporter does (`end_orphaned_run`). Measured: PSS summed over pwsup's processes
drops from ~13 MiB to ~7.5 MiB for `pwsup -- sleep` (benchmarks/, "memory").
"""

from __future__ import annotations

import os
import select

from pwsup.util.rawsignal import signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

    from pwsup.ipc.channel import Channel
    from pwsup.ipc.messages import Message
    from pwsup.supervisor.seed import ReporterSeed
    from pwsup.util.log import Log

IGNORED = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1,
           signal.SIGUSR2, signal.SIGWINCH, signal.SIGTTIN, signal.SIGTTOU, signal.SIGPIPE)
"""The job-control and termination signals a process group receives together (a Ctrl-C,
`kill -TERM -<pgid>`): the parent decides when the run ends, not its helpers."""
NICENESS = 5
"""Background work: when CPU is short, the parent (signals, escalation, exit) and the
command come first — its teardown when killed at the end included."""


def settle(seed: ReporterSeed, log: Log, role: str) -> None:
    """The first steps of the reporter and of the watchdog after the fork: the group's
    signals ignored, every signal unblocked, lower priority, the process title."""
    for signum in IGNORED:
        signal.signal(signum, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    os.nice(NICENESS)
    log.process = role
    try:
        from pwsup.util.title import set_title
    except OSError:  # out of descriptors to load it: a nicety, not worth the watchdog
        return
    set_title(seed.title)


def watch(seed: ReporterSeed, channel: Channel, log: Log) -> NoReturn:
    """The watchdog's life: wait for the pipe's EOF; end the run if the parent died."""
    try:
        settle(seed, log, "reporter")
        finished = _wait_for_eof(seed, channel, log)
        if not finished:
            end_orphaned_run(seed, log)
    except BaseException as e:
        log.error(f"watchdog failed: {e!r}")
        os._exit(70)
    os._exit(0 if finished else 1)


def _wait_for_eof(seed: ReporterSeed, channel: Channel, log: Log) -> bool:
    """Follow the parent's messages until EOF; whether a `Finish` came first."""
    finished = False
    while not channel.eof:
        poller = select.poll()
        poller.register(channel.read_fd, select.POLLIN)
        if channel.pending_output:
            poller.register(channel.write_fd, select.POLLOUT)
        for fd, _events in poller.poll():
            if fd == channel.write_fd:
                channel.flush()
        for message in channel.receive(lambda why: log.error(f"bad message: {why}")):
            finished = _follow(seed, channel, message) or finished
    return finished


def _follow(seed: ReporterSeed, channel: Channel, message: Message) -> bool:
    """Track the running attempt's group; answer what the offline sink answers. True for
    the run's `Finish`."""
    from pwsup.ipc import messages as m

    if isinstance(message, m.AttemptStarted):
        seed.pgid, seed.group_signals = message.pgid, message.group_signals
        seed.attempt = (message.attempt, message.pid)
    elif isinstance(message, m.AttemptEnded):
        seed.pgid = seed.attempt = None
    elif isinstance(message, m.Begin):
        channel.send(m.Permit(None))
    elif isinstance(message, m.Finish):
        channel.send(m.FinishDelivered(delivered=False, detail="offline"))
        return True
    return False


def end_orphaned_run(seed: ReporterSeed, log: Log) -> None:
    """The parent is gone: end what is left of the run — the command's process group and
    every process carrying the run's cookie (a setsid() daemon is in another group, and
    without the parent, the subreaper, it is no longer in pwsup's tree) — with SIGTERM, the
    grace period, SIGKILL. --keep-descendants leaves all but the command's group be (its
    process alone, with --no-process-group-termination)."""
    from pwsup.supervisor.sweep import Sweep

    log.warning("pwsup's parent process is gone; terminating the command")
    pgid = seed.pgid
    group = pgid if pgid is not None and seed.group_signals else None
    alone = (pgid,) if pgid is not None and group is None else ()
    cookie = None if seed.params.keep_descendants else seed.cookie
    grace = seed.params.process_termination_grace_period
    if Sweep(group=group, cookie=cookie, pids=alone).terminate(grace):
        log.warning(f"processes of the command ignored SIGTERM for {grace:g} s: "
                    "sending SIGKILL")
