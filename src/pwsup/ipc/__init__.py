"""Messages between pwsup processes and the channel that carries them.

`STATUS_UPDATE_PORT` is here because the status datagrams are one more channel between
processes — the command's `StatusUpdater` and the reporter's listener — and both ends, the
option table and the client, must agree on it without importing each other.
"""

STATUS_UPDATE_PORT = 2373
"""The UDP port status updates go to when none is configured (proc_wrapper's)."""
