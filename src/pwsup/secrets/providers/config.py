"""CONFIG: a JSONPath expression over the configuration being resolved (`CONFIG:$.db`).

The selected value is passed on JSON-encoded with a JSON hint (as proc_wrapper did), so a
further `|JP:` can dig into it and the environment projection turns structures into JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from pwsup.secrets import jsonpath
from pwsup.secrets.providers.base import Fetched


class ConfigProvider:
    cacheable = False

    def __init__(self, configuration: Callable[[], Mapping[str, Any]]) -> None:
        self._configuration = configuration

    def fetch(self, address: str) -> Fetched:
        value = jsonpath.query(self._configuration(), address)
        return Fetched(json.dumps(value, default=str), "json")
