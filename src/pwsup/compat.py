"""proc_wrapper's Python API under its own names: migrating is changing an import.

    from pwsup.compat import ProcWrapper, ProcWrapperParams   # was: from proc_wrapper import ...

This module is the public name only; the implementation is `pwsup.embedded.procwrapper`.
"""

from pwsup.embedded.procwrapper import (
    DEFAULT_STATUS_UPDATE_PORT,
    ConfigurationError,
    ProcWrapper,
    ProcWrapperParams,
    StatusUpdater,
)

__all__ = ["DEFAULT_STATUS_UPDATE_PORT", "ConfigurationError", "ProcWrapper",
           "ProcWrapperParams", "StatusUpdater"]
