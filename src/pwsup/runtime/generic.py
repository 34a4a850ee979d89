"""Generic metadata: what is true anywhere, used when nothing more specific is detected.

Both types are "Unknown", as proc_wrapper sends them: the server then knows the run
happened outside any execution method it can launch, and forces auto-created Tasks passive.
This fetcher does no I/O beyond asking the kernel for the host name, so it cannot fail and
is the fallback whenever another fetcher does.
"""

from __future__ import annotations

from pwsup.runtime.context import FetchContext, Fetcher, host_name
from pwsup.runtime.model import RuntimeMetadata, Scalars, assemble

NAME = "Generic"


def metadata() -> RuntimeMetadata:
    """Generic metadata for this host."""
    return assemble(Scalars(), source=NAME, hostname=host_name())


def _fetch(ctx: FetchContext) -> RuntimeMetadata:
    return metadata()


FETCHER = Fetcher(NAME, applies=lambda ctx: True, fetch=_fetch, requirement="nothing")
