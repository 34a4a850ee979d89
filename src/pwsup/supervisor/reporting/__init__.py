"""What the reporter process does, one concern a module.

```
sink.py             the Sink protocol and the offline sink (reports nowhere)
api_sink.py         the CloudReactor sink: start, heartbeats, status updates, final report
status_listener.py  the UDP socket the command's status updates arrive on
log_capture.py      the command's output, tee'd, with a tail for the final report
rollbar.py          Rollbar items for failures the operator should hear about
```
"""
