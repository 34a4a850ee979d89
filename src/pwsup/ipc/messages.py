"""Every message that crosses a process boundary, one frozen record per meaning.

```
 parent ──Begin, AttemptStarted, AttemptEnded, StatusUpdate, Finish──▶ reporter
 parent ◀──Permit, Deny, StopRequested, MainContainerExited, FinishDelivered── reporter
 worker ──StatusUpdate──▶ parent (embedded mode, forwarded to the reporter)
```

Fields hold plain data only (str, int, float, bool, None, and dicts/lists/tuples of
those), so a message encodes with `marshal` — built in, fast, and unable to run code —
as `(PROTOCOL, type name, field values)`. Both ends are always the same build of pwsup
(the reporter is forked from the parent), but the version still guards against a
mismatched frame being misread: anything that does not decode raises `DecodeError`,
which the receiver logs and skips.
"""

from __future__ import annotations

import marshal

from pwsup.errors import PwsupError
from pwsup.util.record import Record, astuple, field

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PROTOCOL = 1


class DecodeError(PwsupError, ValueError):
    """A frame that is not a valid message of this protocol version."""


# -- parent → reporter -----------------------------------------------------------------------


class Begin(Record):
    """Create (or attach to) the execution; answer with Permit or Deny.

    Sent once per run, before the first attempt, when the run is reported."""

    started_at: str
    """ISO-8601 UTC time the run began."""
    input_value: Any = None
    """Embedded mode: the call's data, sent with --send-input-value (plain JSON data)."""


class AttemptStarted(Record):
    """The command is running. `pgid` is the group to terminate if the parent dies."""

    attempt: int
    pid: int
    pgid: int
    group_signals: bool = True
    """False with --no-process-group-termination: signal the pid, not the group."""


class AttemptEnded(Record):
    """An attempt is over. `exit_code` is shell-style: 128+N for death by signal N."""

    attempt: int
    exit_code: int
    timed_out: bool
    failed_attempts: int
    timed_out_attempts: int
    will_retry: bool
    usage: dict[str, float | int] | None = None
    """What the attempt cost (`Usage.as_dict()`: four numbers), None when it never ran."""
    total_usage: dict[str, float | int] | None = None
    """What every attempt of the run so far cost together (CPU and wall times added up,
    the largest peak RSS)."""
    memory_exceeded: dict[str, int] | None = None
    """`{"rss_bytes": …, "limit_bytes": …}` when --memory-limit ended the attempt."""


class StatusUpdate(Record):
    """Progress from the running code (embedded mode): merged into the next update."""

    fields: dict[str, Any]


class Finish(Record):
    """The run is over: deliver the final status, then exit.

    `shutdown` means pwsup was told to stop (SIGTERM/SIGINT), so the delivery is capped by
    --shutdown-report-timeout instead of --api-final-update-timeout."""

    status: str
    exit_code: int | None
    failed_attempts: int
    timed_out_attempts: int
    finished_at: str
    shutdown: bool = False
    stop_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Further fields of the final update (output value, log tails)."""


# -- reporter → parent -----------------------------------------------------------------------


class Permit(Record):
    """Start the command. `execution_uuid` is None when the run is not reported."""

    execution_uuid: str | None


class Deny(Record):
    """Do not start the command; exit with `exit_code` (75 conflict, 77 key refused, ...)."""

    exit_code: int
    reason: str


class StopRequested(Record):
    """The server stopped the execution: terminate the command, exit 75."""

    reason: str


class MainContainerExited(Record):
    """ECS sidecar mode: the main container exited with this code (from the metadata)."""

    exit_code: int


class FinishDelivered(Record):
    """The final report reached the server (`delivered`) or could not be delivered."""

    delivered: bool
    detail: str = ""


Message = (Begin | AttemptStarted | AttemptEnded | StatusUpdate | Finish
           | Permit | Deny | StopRequested | MainContainerExited | FinishDelivered)

_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (Begin, AttemptStarted, AttemptEnded, StatusUpdate, Finish,
                Permit, Deny, StopRequested, MainContainerExited, FinishDelivered)
}


def encode(message: Message) -> bytes:
    return marshal.dumps((PROTOCOL, type(message).__name__, astuple(message)))


def decode(payload: bytes) -> Message:
    """Rebuild a message, or raise DecodeError saying why not."""
    try:
        version, name, values = marshal.loads(payload)
    except (ValueError, EOFError, TypeError) as e:
        raise DecodeError(f"undecodable frame ({e})") from None
    if version != PROTOCOL:
        raise DecodeError(f"protocol {version!r}, expected {PROTOCOL}")
    cls = _TYPES.get(name) if isinstance(name, str) else None
    if cls is None or not isinstance(values, tuple):
        raise DecodeError(f"unknown message type {name!r}")
    try:
        message: Message = cls(*values)
    except TypeError as e:
        raise DecodeError(f"bad fields for {name}: {e}") from None
    return message
