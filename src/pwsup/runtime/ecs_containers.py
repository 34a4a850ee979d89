"""Which ECS container is the main one, which is the monitor (pwsup's own), and sidecar mode.

pwsup runs either inside the container it supervises (main = monitor = the current
container), or as a sidecar next to the main container, reporting that container's exit
instead of running a command. The rules (proc_wrapper's), from the names given with
`--main-container-name` / `--monitor-container-name` / `--sidecar-container-mode`:

- the monitor is the named one, else the container pwsup runs in (the current container);
- the main container is the named one; else, in sidecar mode, the only other application
  container of the task; else the monitor itself;
- sidecar mode is what was given, else on when main and monitor are different containers.

Only `NORMAL` containers count as "other": on EC2 with awsvpc networking the task metadata
also lists the agent's pause containers, which never run application code.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pwsup.runtime.model import JsonDict
from pwsup.util.record import Record

LOG = logging.getLogger("pwsup.runtime")


class ContainerRoles(Record):
    """The outcome of classification; `main` is the main container's task entry."""

    monitor_name: str | None
    main_name: str | None
    sidecar: bool
    main: JsonDict | None


def application_containers(containers: Sequence[JsonDict]) -> list[JsonDict]:
    """The containers that run application code (Type NORMAL, or no Type in old agents)."""
    return [c for c in containers if c.get("Type", "NORMAL") == "NORMAL"]


def by_name(containers: Sequence[JsonDict], name: str | None) -> JsonDict | None:
    """The container called `name`, if the task has one."""
    return next((c for c in containers if name and c.get("Name") == name), None)


def classify(containers: Sequence[JsonDict], current_name: str | None, *,
             main_name: str | None, monitor_name: str | None,
             sidecar: bool | None) -> ContainerRoles:
    """Apply the rules of the module docstring."""
    monitor = monitor_name or current_name
    main = main_name or _implicit_main(containers, monitor, sidecar)
    is_sidecar = sidecar if sidecar is not None else bool(main and monitor and main != monitor)
    entry = by_name(containers, main)
    if main and entry is None:
        LOG.warning("ECS task metadata lists no container named %r (the main container)", main)
    return ContainerRoles(monitor_name=monitor, main_name=main, sidecar=is_sidecar, main=entry)


def _implicit_main(containers: Sequence[JsonDict], monitor: str | None,
                   sidecar: bool | None) -> str | None:
    if not sidecar:
        return monitor
    others = [c.get("Name") for c in application_containers(containers)
              if c.get("Name") != monitor]
    if len(others) == 1 and isinstance(others[0], str):
        return others[0]
    LOG.warning("sidecar mode, but the main container is not clear among %d other "
                "containers: set --main-container-name", len(others))
    return None
