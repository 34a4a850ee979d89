"""The parent's end of the reporter: forking it, talking to it, restarting it.

The parent keeps the run's reporting state in a `seed.ReporterSeed` (the execution, the running
attempt, a pending start or final report). A reporter forked later — after the previous
one died — starts from that state and is sent what it needs to pick up where the last one
stopped, so a killed reporter costs at most the request it was in the middle of.

Message classes are imported only when a message is actually sent: an offline run with a
single attempt never needs one, because the reporter is forked after the command started
and learns its process group from the seed.
"""

from __future__ import annotations

from pwsup.ipc.channel import Channel, channel_pair
from pwsup.supervisor import forking, procs
from pwsup.util.rawsignal import signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

    from pwsup.ipc import messages as m
    from pwsup.supervisor.seed import ReporterSeed
    from pwsup.util.log import Log

RESTART_DELAYS = (0.05, 0.2, 0.5, 1.0, 2.0, 5.0)
"""Backoff between reporter restarts; after the last one pwsup carries on without one."""


class ReporterLink:
    def __init__(self, seed: ReporterSeed, log: Log) -> None:
        self.seed = seed
        self.log = log
        self.channel: Channel | None = None
        self.pid: int | None = None
        self.restarts = 0
        self._pair: tuple[Channel, Channel] | None = None

    def prepare(self) -> None:
        """Make the pipes now, so that start() needs no new descriptor."""
        self._pair = channel_pair()

    def start(self, close_fds: tuple[int, ...]) -> None:
        """Fork a reporter and send what it must pick up."""
        pair, self._pair = self._pair, None
        ours, theirs = pair or channel_pair()
        try:
            pid = forking.fork(lambda _mask: _reporter_main(self.seed, theirs, self.log),
                               what="the reporter",
                               close_fds=(ours.read_fd, ours.write_fd, *close_fds))
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.channel, self.pid = ours, pid
        if self.seed.begin is not None:
            self.channel.send(self.seed.begin)
        if self.seed.finish is not None:
            self.channel.send(self.seed.finish)

    def send(self, message: m.Message) -> None:
        if self.channel is not None:
            self.channel.send(message)

    def begin(self, started_at: str, input_value: object = None) -> None:
        from pwsup.ipc.messages import Begin

        self.seed.begin = Begin(started_at=started_at, input_value=input_value)
        self.send(self.seed.begin)

    def attempt_started(self, number: int, pid: int) -> None:
        """Record the running attempt; tell a running reporter (a new one reads the seed)."""
        self.seed.attempt, self.seed.pgid = (number, pid), pid
        if self.channel is not None:
            from pwsup.ipc.messages import AttemptStarted

            self.send(AttemptStarted(attempt=number, pid=pid, pgid=pid,
                                     group_signals=self.seed.group_signals))

    def attempt_ended(self, message: m.AttemptEnded) -> None:
        self.seed.attempt = self.seed.pgid = None
        self.seed.ended = message
        self.send(message)

    def finish(self, message: m.Finish) -> None:
        self.seed.finish = message
        self.send(message)

    def permitted(self, execution_uuid: str | None) -> None:
        self.seed.execution_uuid = execution_uuid
        self.seed.begin = None  # a restarted reporter must not create a second execution

    @property
    def restarts_left(self) -> bool:
        return self.restarts < len(RESTART_DELAYS)

    def next_restart_delay(self) -> float | None:
        """The delay before the next restart, or None when restarts are used up."""
        if self.restarts >= len(RESTART_DELAYS):
            return None
        delay = RESTART_DELAYS[self.restarts]
        self.restarts += 1
        return delay

    def lost(self) -> None:
        """Drop our end of the pipe (after EOF, or to tell the reporter to go)."""
        if self.channel is not None:
            self.channel.close()
        self.channel = None

    def kill(self) -> None:
        """Stop the reporter at once (it has nothing left to deliver).

        SIGKILL goes first: closing the pipe first would let it see EOF and take it for
        the parent's death."""
        if self.pid is not None and self.channel is not None:
            procs.send_signal(self.pid, signal.SIGKILL, group=False)
        self.lost()


def _reporter_main(seed: ReporterSeed, channel: Channel, log: Log) -> NoReturn:
    """The reporter, or offline (outside ECS sidecar mode, which polls the task metadata)
    the watchdog it is reduced to there: nothing to report, so nothing more to import.

    The reporter first moves every object inherited from the parent to the collector's
    permanent generation (`gc.freeze`): its collections never visit them, so they do not
    write to (and copy) the pages it shares with the parent — 0.3 MiB per service measured
    with `pwsup -- sleep` reporting, more under an embedded caller's large heap. (The
    watchdog allocates too little to collect: nothing to gain there.)"""
    if not (seed.params.online or seed.params.sidecar_container_mode):
        from pwsup.supervisor.watchdog import watch

        watch(seed, channel, log)
    import gc

    gc.freeze()
    from pwsup.supervisor.reporter import reporter_main

    reporter_main(seed, channel, log)
