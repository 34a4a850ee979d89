"""proc_wrapper's Python API under its own names, so existing code migrates by changing an
import: `from proc_wrapper import StatusUpdater` becomes `from pwsup.compat import
StatusUpdater`.
"""

from __future__ import annotations

from pwsup.status import DEFAULT_PORT as DEFAULT_STATUS_UPDATE_PORT
from pwsup.status import StatusUpdater

__all__ = ["DEFAULT_STATUS_UPDATE_PORT", "StatusUpdater"]
