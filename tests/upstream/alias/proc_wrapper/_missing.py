"""A stand-in for an upstream name pwsup does not provide.

Upstream's test modules import these names at the top, so each module must import for any
of its tests to run; a test that really uses one is marked skipped in the tier's table
(`tests/upstream/conftest.py`). Using a stand-in anyway fails loudly, naming it.
"""

from __future__ import annotations

from typing import Any, NoReturn


class NotProvided:
    """Any use raises: pwsup has no such name."""

    def __init__(self, name: str) -> None:
        self._name = name

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError(f"{self._name} is an upstream internal pwsup does not provide")

    __call__ = _refuse

    def __getattr__(self, attr: str) -> Any:
        self._refuse()

    def __iter__(self) -> Any:
        self._refuse()
