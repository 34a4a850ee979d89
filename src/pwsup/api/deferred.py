"""Two modules requests imports eagerly, made lazy in the reporter.

requests imports `charset_normalizer` when it is imported, only to guess the encoding of a
response that names none (`Response.apparent_encoding`, `Response.text`), and `idna`, only
to encode a host name that is not ASCII. The reporter talks JSON to hosts with ASCII names,
and these two cost it 1.6 MiB and 0.3 MiB of private memory (measured), per supervised
service. So before the reporter imports requests, each is registered in `sys.modules` as
a stand-in: a module that answers what requests reads while it is imported (the name, the
spec and path, charset_normalizer's `__version__`), and that imports the real module on the first
use of anything else and from then on serves every attribute from it. A response without a
charset, an internationalized host name: both work as before, the first one paying for the
import.

A stand-in is registered only when the real module is installed and not imported yet, and
charset_normalizer's only when its version can be read from the installed distribution
without importing anything new (`importlib.metadata`, which urllib3 2 imports anyway); in
every other case requests imports what it always did.
"""

from __future__ import annotations

import importlib
import sys
import threading
import types

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFERRED = {"charset_normalizer": "charset-normalizer", "idna": None}
"""Module → the distribution its `__version__` is read from (None: requests needs none)."""


class Deferred(types.ModuleType):
    """Stands in for a module until something other than its name is asked of it."""

    _lock = threading.Lock()

    def __getattr__(self, attr: str) -> Any:
        """Called for every attribute the stand-in lacks: all but what requests reads while
        it is imported."""
        return getattr(self._real(), attr)

    def _real(self) -> types.ModuleType:
        """The real module, imported the first time (in place of the stand-in in
        `sys.modules`; the stand-in stays wherever requests keeps it)."""
        with self._lock:
            name = self.__name__
            if sys.modules.get(name) is self:
                del sys.modules[name]
            return importlib.import_module(name)


def defer_unused_imports() -> None:
    """Register the stand-ins (call before importing requests)."""
    import importlib.util

    import urllib3  # noqa: F401 - requests' own first import; decides whether versions are free

    for name, distribution in DEFERRED.items():
        if name in sys.modules:
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        module = Deferred(name)
        module.__spec__ = spec
        if spec.submodule_search_locations is not None:  # `from <package> import x` reads it
            module.__path__ = list(spec.submodule_search_locations)
        if distribution is not None:
            version = _installed_version(distribution)
            if version is None:
                continue
            module.__version__ = version  # type: ignore[attr-defined]
        sys.modules[name] = module


def _installed_version(distribution: str) -> str | None:
    """The distribution's version, if reading it imports nothing new."""
    metadata = sys.modules.get("importlib.metadata")
    if metadata is None:
        return None
    try:
        return str(metadata.version(distribution))
    except Exception:  # missing or unreadable metadata: no stand-in
        return None
