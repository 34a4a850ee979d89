"""How long tests wait, and which durations they assert.

Tests run on busy machines (two cores shared with other work), where any process may wait
its turn for a CPU. So a test never asserts a speed — speed is measured in benchmarks/ —
and never synchronises by sleeping. What it may assert about time:

- the *order* of events: the command got SIGTERM while the API request still hung; the
  final update arrived before the slow heartbeat had finished;
- a *lower* bound the product documents: SIGKILL comes no earlier than the grace period
  (a busy machine only ever makes things later);
- an *upper* bound: what the product documents (a grace period, a time limit, a report
  timeout; 0 for "at once") plus `SLACK`. A test that tells "at once" from "after waiting
  for X" makes X (a grace period, a retry delay, a hung request) longer than that bound, so
  the assertion still fails when pwsup waits for X.

Waiting for an event that should come (a line, a request, an exit) uses a deadline too,
and a generous one: only a failing test ever waits it out.
"""

from __future__ import annotations

SLACK = 5.0
"""Seconds a busy machine may add to a documented duration before a test calls it broken:
enough for a few Python start-ups and forks waiting for a CPU."""

DEFAULT_GRACE_PERIOD = 30.0
"""--process-termination-grace-period's documented default. A test that checks pwsup does
*not* wait out a grace period runs with it (or with another long one)."""

EVENT_TIMEOUT = 15.0
"""How long a test waits for an event that should come at once (a `ready` line, a request
the fake server records, a new reporter process) before it calls the run broken."""

EXIT_TIMEOUT = 20.0
"""How long a test waits for pwsup to exit when nothing documented keeps it running that
long; a test that expects a longer run passes its own."""
