"""The log as the settings configure it: level, JSON lines, timestamps, redaction.

Every process that logs on a run's behalf — the parent, and the caller of an embedded run —
builds its log here, so the same settings always give the same log, with the API key and
the Rollbar token registered for redaction before the first line.
"""

from __future__ import annotations

from pwsup.util.log import LEVELS, Log

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pwsup.config.params import Params


def make_log(params: Params | None) -> Log:
    """The log for this process; the defaults while there are no valid settings yet."""
    if params is None:
        return Log("parent")
    log = Log("parent", LEVELS[params.log_level], json_lines=params.log_format == "json",
              timestamps=params.include_timestamps_in_log, redact=not params.log_secrets)
    for secret in (params.api_key, params.rollbar_access_token):
        log.add_secret(secret)
    return log
