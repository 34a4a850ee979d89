"""Messages and the non-blocking channel between pwsup's processes."""

from __future__ import annotations

import os

import pytest

from pwsup.ipc import messages as m
from pwsup.ipc.channel import Channel, channel_pair
from pwsup.util.record import FrozenError, Record

ALL = [
    m.Begin(started_at="2026-01-01T00:00:00+00:00"),
    m.AttemptStarted(attempt=1, pid=10, pgid=10),
    m.AttemptEnded(attempt=1, exit_code=3, timed_out=False, failed_attempts=1,
                   timed_out_attempts=0, will_retry=True),
    m.AttemptEnded(attempt=2, exit_code=143, timed_out=False, failed_attempts=2,
                   timed_out_attempts=0, will_retry=False,
                   usage={"user_seconds": 0.5, "system_seconds": 0.01,
                          "max_rss_bytes": 1 << 27, "wall_seconds": 1.5},
                   total_usage={"user_seconds": 0.9, "system_seconds": 0.02,
                                "max_rss_bytes": 1 << 27, "wall_seconds": 3.0},
                   memory_exceeded={"rss_bytes": 1 << 27, "limit_bytes": 100 << 20}),
    m.StatusUpdate(fields={"success_count": 3, "other_runtime_metadata": {"a": [1]}}),
    m.Finish(status="FAILED", exit_code=3, failed_attempts=1, timed_out_attempts=0,
             finished_at="2026-01-01T00:00:01+00:00", extra={"debug_log_tail": "x"}),
    m.Permit(execution_uuid="abc"), m.Deny(exit_code=75, reason="conflict"),
    m.StopRequested(reason="stopped"), m.FinishDelivered(delivered=True),
]


@pytest.mark.parametrize("message", ALL, ids=lambda x: type(x).__name__)
def test_every_message_round_trips(message: m.Message) -> None:
    """Encoding then decoding gives an equal, frozen message."""
    decoded = m.decode(m.encode(message))
    assert decoded == message
    assert isinstance(decoded, Record)
    with pytest.raises(FrozenError):
        decoded.x = 1  # type: ignore[union-attr]


@pytest.mark.parametrize("payload", [
    b"", b"garbage", m.encode(m.Permit("x")).replace(b"Permit", b"Permot"),
    __import__("marshal").dumps((99, "Permit", ("x",))),
    __import__("marshal").dumps((1, "Permit", ("x", "extra", "fields"))),
    __import__("marshal").dumps(42),
])
def test_bad_frames_raise_decode_error(payload: bytes) -> None:
    """Anything that is not a message of this protocol raises DecodeError, nothing else."""
    with pytest.raises(m.DecodeError):
        m.decode(payload)


def test_channel_carries_messages_both_ways_and_reports_bad_frames() -> None:
    """Frames arrive whole and in order; a bad frame is reported and skipped."""
    a, b = channel_pair()
    try:
        for message in ALL:
            a.send(message)
        os.write(a.write_fd, (5).to_bytes(4, "big") + b"junk!")
        a.send(m.Permit("after"))
        bad: list[str] = []
        assert b.receive(bad.append) == [*ALL, m.Permit("after")]
        assert len(bad) == 1
        b.send(m.Permit("back"))
        assert a.receive(bad.append) == [m.Permit("back")]
    finally:
        a.close()
        b.close()


def test_channel_send_never_blocks_when_the_pipe_is_full() -> None:
    """A stalled reader cannot block the sender: output queues until flushed."""
    a, b = channel_pair()
    try:
        big = m.StatusUpdate(fields={"blob": "x" * 200_000})
        a.send(big)
        a.send(big)
        assert a.pending_output
        received: list[m.Message] = []
        while len(received) < 2:
            received += b.receive(pytest.fail)
            a.flush()
        assert received == [big, big]
        assert not a.pending_output
    finally:
        a.close()
        b.close()


def test_channel_sees_eof_when_the_peer_closes() -> None:
    """EOF marks the peer as gone (how parent and reporter watch each other)."""
    a, b = channel_pair()
    a.send(m.Permit("last"))
    a.close()
    try:
        assert b.receive(lambda why: None) == [m.Permit("last")]
        assert b.eof
        b.send(m.Permit("to nobody"))  # EPIPE is absorbed, not raised
        assert b.write_closed
    finally:
        b.close()


def test_oversized_frame_resets_the_inbox() -> None:
    """A length beyond the limit is reported instead of buffered forever."""
    r, w = os.pipe()
    channel = Channel(r, w)
    try:
        os.write(w, (1 << 30).to_bytes(4, "big"))
        bad: list[str] = []
        assert channel.receive(bad.append) == []
        assert len(bad) == 1
        assert "over the limit" in bad[0]
    finally:
        channel.close()
