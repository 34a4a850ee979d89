"""Status updates: the datagram parser (reporter side) and StatusUpdater (task side)."""

from __future__ import annotations

import json
import socket

from hypothesis import given
from hypothesis import strategies as st

from pwsup.status import StatusUpdater
from pwsup.supervisor.reporting.status_listener import StatusParser, open_listener, receive_all


def parser(max_bytes: int = 65536) -> tuple[StatusParser, list[str]]:
    warnings: list[str] = []
    clock = iter(range(0, 10**6, 100))  # every warning is outside the rate-limit window
    return StatusParser(max_bytes, warnings.append, clock=lambda: float(next(clock))), warnings


def line(obj: object) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def test_status_keys_are_accepted_and_reserved_keys_dropped() -> None:
    """Counts, message, metadata pass; `status` and `exit_code` never do."""
    p, warnings = parser()
    fields = p.feed(line({"success_count": 3, "status": "SUCCEEDED", "exit_code": 0,
                          "last_status_message": "ok", "other_runtime_metadata": {"a": 1}}))
    assert fields == {"success_count": 3, "last_status_message": "ok",
                      "other_runtime_metadata": {"a": 1}}
    assert any("'status'" in w for w in warnings)


def test_messages_split_across_datagrams_and_several_per_datagram() -> None:
    """A message may span datagrams; a datagram may carry several (latest value wins)."""
    p, _ = parser()
    data = line({"success_count": 1}) + line({"success_count": 2, "error_count": 1})
    assert p.feed(data[:10]) == {}
    assert p.feed(data[10:]) == {"success_count": 2, "error_count": 1}


def test_oversize_message_is_dropped_without_losing_the_next() -> None:
    """Unlike upstream, a too-long message does not corrupt the one after it."""
    p, warnings = parser(max_bytes=100)
    big = line({"last_status_message": "x" * 500})
    assert p.feed(big[:60]) == {}
    assert p.feed(big[60:] + line({"success_count": 7})) == {"success_count": 7}
    assert any("maximum" in w for w in warnings)


def test_wrong_types_and_garbage_are_dropped() -> None:
    """Wrong types, non-objects, invalid JSON and invalid UTF-8 are ignored."""
    p, warnings = parser()
    assert p.feed(line({"success_count": "3", "error_count": True})) == {}
    assert p.feed(b"[1, 2]\n{not json\n\xff\xfe\n") == {}
    assert len(warnings) == 5


def test_warnings_are_rate_limited() -> None:
    """A flood of bad messages produces one warning per window, not one per message."""
    warnings: list[str] = []
    p = StatusParser(1000, warnings.append, clock=lambda: 5.0)
    for _ in range(100):
        p.feed(b"junk\n")
    assert len(warnings) == 1


@given(st.lists(st.binary(max_size=300), max_size=20))
def test_parser_never_raises_on_arbitrary_bytes(datagrams: list[bytes]) -> None:
    """Whatever arrives, the parser returns accepted fields and raises nothing."""
    p = StatusParser(200, lambda _: None)
    for datagram in datagrams:
        fields = p.feed(datagram)
        assert set(fields) <= {"success_count", "error_count", "skipped_count",
                               "expected_count", "last_status_message",
                               "other_runtime_metadata", "last_app_heartbeat_at"}


def test_listener_reads_a_60k_datagram_whole() -> None:
    """Datagrams up to 64 KiB arrive whole (upstream truncated at 4 KiB)."""
    sock = open_listener("127.0.0.1", 0, 65536)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        message = "m" * 60_000
        sender.sendto(line({"last_status_message": message}), sock.getsockname())
        p, _ = parser()
        import select

        select.select([sock], [], [], 5)
        assert receive_all(sock, p) == {"last_status_message": message}
    finally:
        sender.close()
        sock.close()


def test_status_updater_sends_what_the_listener_accepts() -> None:
    """StatusUpdater's datagrams parse into the same fields, including extra_props."""
    sock = open_listener("127.0.0.1", 0, 65536)
    host, port = sock.getsockname()
    env = {"PROC_WRAPPER_ENABLE_STATUS_UPDATE_LISTENER": "1",
           "PROC_WRAPPER_STATUS_UPDATE_HOST": host,
           "PROC_WRAPPER_STATUS_UPDATE_SOCKET_PORT": str(port)}
    try:
        with StatusUpdater(incremental_count_mode=True, environ=env) as updater:
            updater.send_update(success_count=2, extra_props={"step": 1})
            updater.send_update(success_count=3, error_count=0, last_status_message="m")
        import select

        p, _ = parser()
        fields: dict[str, object] = {}
        while len(fields) < 3:
            assert select.select([sock], [], [], 5)[0], "no datagram arrived"
            fields.update(receive_all(sock, p))
        assert fields == {"success_count": 5, "other_runtime_metadata": {"step": 1},
                          "last_status_message": "m"}
    finally:
        sock.close()


def test_status_updater_is_a_no_op_when_disabled_and_never_raises() -> None:
    """Without the listener variable nothing is sent; send errors are swallowed."""
    updater = StatusUpdater(environ={})
    updater.send_update(success_count=1)
    assert updater._socket is None
    broken = StatusUpdater(environ={"PROC_WRAPPER_ENABLE_STATUS_UPDATE_LISTENER": "TRUE",
                                    "PROC_WRAPPER_STATUS_UPDATE_HOST": "256.0.0.1"})
    broken.send_update(success_count=1, extra_props={"x": object()})
    broken.shutdown()
