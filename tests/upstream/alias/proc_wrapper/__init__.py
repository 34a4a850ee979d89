"""proc_wrapper's public names, taken from pwsup, for upstream's own tests only.

This package lives under tests/ and is put on `sys.path` by `tests/upstream/conftest.py`
for that tier alone; it is never installed, so it cannot shadow a real `proc_wrapper`.
"""

from pwsup.compat import ProcWrapper as _ProcWrapper
from pwsup.compat import ProcWrapperParams, StatusUpdater

from ._missing import NotProvided


class ProcWrapper(_ProcWrapper):
    """pwsup's ProcWrapper, plus two private constants upstream's tests read at import."""

    _EXIT_CODE_CONFIGURATION_ERROR = 78
    _STATUS_UPDATE_KEY_LAST_APP_HEARTBEAT_AT = "last_app_heartbeat_at"


CONFIG_MERGE_STRATEGY_SHALLOW = "SHALLOW"
make_arg_parser = NotProvided("make_arg_parser")
ConfigResolver = NotProvided("ConfigResolver")
ConfigResolverParams = NotProvided("ConfigResolverParams")
DefaultRuntimeMetadataFetcher = NotProvided("DefaultRuntimeMetadataFetcher")

__all__ = ["CONFIG_MERGE_STRATEGY_SHALLOW", "ConfigResolver", "ConfigResolverParams",
           "DefaultRuntimeMetadataFetcher", "ProcWrapper", "ProcWrapperParams",
           "StatusUpdater", "make_arg_parser"]
