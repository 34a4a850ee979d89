"""PLAIN: the address is the value (`PLAIN:{"user": "app"}!json|JP:$.user`).

Useful for tests and for values that only need a format or JSONPath. The text is still
treated as a secret: it never appears in log lines (proc_wrapper logged it at INFO).
"""

from __future__ import annotations

from pwsup.secrets.providers.base import Fetched


class PlainProvider:
    cacheable = False  # nothing to save: the "fetch" is free, and keys would be secrets

    def fetch(self, address: str) -> Fetched:
        return Fetched(address)
