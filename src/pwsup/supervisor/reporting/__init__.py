"""What the reporter process does, one concern a module.

```
sink.py             the Sink protocol and the offline sink (reports nowhere)
api_sink.py         the CloudReactor sink: the start request and the final report
api_updates.py      heartbeats and RUNNING updates (status values, attempts, pid)
api_bodies.py       the request bodies, from params, runtime metadata and captured output
api_calls.py        requests on worker threads; retries and watchdogs as loop deadlines
status_listener.py  the UDP socket the command's status updates arrive on
log_capture.py      the command's output, tee'd, with a tail for the final report
rollbar.py          Rollbar reports for failures the operator should hear about: delivery
rollbar_items.py    what a Rollbar item holds, and the values and secrets it never holds
```

The retry policy itself (what an answer means, how long to wait, when to give up) is a pure
value in `pwsup.api.policy`.
"""
