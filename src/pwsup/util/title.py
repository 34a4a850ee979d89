"""Process titles (`pwsup: <task>`, `pwsup reporter: <task>`), cheaply.

setproctitle's package `__init__` imports `logging` — only to log that its C module is
missing — and on a small machine that import costs more than half of Python's own start-up,
on every run of the supervisor. So the C module is loaded directly from the installed
package; if anything about that fails, the ordinary `import setproctitle` is used. Titles
never contain the command's arguments (they may hold secrets), only a task or program name.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

_setter: Callable[[str], None] | None = None


def _load_c_module() -> Callable[[str], None]:
    from importlib.machinery import (
        EXTENSION_SUFFIXES,
        ExtensionFileLoader,
        ModuleSpec,
        PathFinder,
    )

    package = PathFinder.find_spec("setproctitle")
    if package is None or not package.submodule_search_locations:
        raise ImportError("setproctitle is not installed")
    folder = next(iter(package.submodule_search_locations))
    for suffix in EXTENSION_SUFFIXES:
        path = os.path.join(folder, "_setproctitle" + suffix)
        if os.path.exists(path):
            loader = ExtensionFileLoader("setproctitle._setproctitle", path)
            module = loader.create_module(ModuleSpec(loader.name, loader, origin=path))
            loader.exec_module(module)
            setter: Callable[[str], None] = module.setproctitle
            return setter
    raise ImportError("setproctitle's C module was not found")


def _load() -> Callable[[str], None]:
    try:
        return _load_c_module()
    except (ImportError, OSError, AttributeError):
        try:
            from setproctitle import setproctitle
        except (ImportError, OSError):  # titles are cosmetic: never fail a run over one
            return lambda title: None
        return setproctitle


def set_title(title: str) -> None:
    """Set the title; quietly do nothing if it cannot be set (titles are cosmetic). A task
    or program name from outside may hold bytes that are not UTF-8 or control characters:
    they are escaped as in the log."""
    global _setter
    if _setter is None:
        _setter = _load()
    if not title.isprintable():
        from pwsup.util.log import escape

        title = escape(title)
    try:
        _setter(title)
    except (ValueError, OSError):
        pass
